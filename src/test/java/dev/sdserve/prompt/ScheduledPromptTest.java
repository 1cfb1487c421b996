package dev.sdserve.prompt;

import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

class ScheduledPromptTest {
    @Test
    void switchesAfterItsStepAsA1111sDenoiserCounts() {
        ScheduledPrompt p = ScheduledPrompt.of("a [cat:dog:4] <lora:film:0.8>", 10);
        assertEquals(List.of("a cat ", "a dog "), p.distinctTexts());
        assertTrue(p.changes());
        for (int e = 0; e <= 4; e++) {
            assertEquals("a cat ", p.textAt(e), "evaluation " + e);
        }
        for (int e = 5; e < 10; e++) {
            assertEquals("a dog ", p.textAt(e), "evaluation " + e);
        }
    }

    @Test
    void alternationSwitchesEveryStep() {
        ScheduledPrompt p = ScheduledPrompt.of("[red|blue] ball", 6);
        assertEquals(6, p.group().size());
        // A1111 looks up schedule entries (end steps 1..6) with its call counter from 0: calls 0 and 1 use entry 1
        assertEquals(List.of("red ball", "red ball", "blue ball", "red ball", "blue ball", "red ball"),
                List.of(p.textAt(0), p.textAt(1), p.textAt(2), p.textAt(3), p.textAt(4), p.textAt(5)));
    }

    @Test
    void secondOrderSamplersCountTwiceTheSteps() {
        assertEquals(20, ScheduledPrompt.scheduleSteps(10, 19)); // Heun: 19 calls for 10 steps
        assertEquals(10, ScheduledPrompt.scheduleSteps(10, 10));
        assertEquals(10, ScheduledPrompt.scheduleSteps(10, 11)); // PLMS' extra call
        assertFalse(ScheduledPrompt.of("a (b:1.2) c", 10).changes());
    }
}
