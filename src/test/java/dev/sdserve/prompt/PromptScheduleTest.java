package dev.sdserve.prompt;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.sdserve.prompt.PromptSchedule.Entry;
import org.junit.jupiter.api.Test;

import java.io.InputStream;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** A1111's get_learned_conditioning_prompt_schedules: its doctests, its header example, and its outputs on 454 prompts. */
class PromptScheduleTest {
    private static List<Entry> g(String p) {
        return PromptSchedule.of(p, 10);
    }

    private static List<Entry> s(Object... endAndText) {
        List<Entry> r = new ArrayList<>();
        for (int i = 0; i < endAndText.length; i += 2) {
            r.add(new Entry((Integer) endAndText[i], (String) endAndText[i + 1]));
        }
        return r;
    }

    @Test
    void a1111Doctests() {
        assertEquals(s(10, "test"), g("test"));
        assertEquals(s(3, "a ", 10, "a b"), g("a [b:3]"));
        assertEquals(s(3, "a ", 10, "a b"), g("a [b: 3]"));
        assertEquals(s(2, "a ", 10, "a [[b]]"), g("a [[[b]]:2]"));
        assertEquals(s(3, "", 10, "(a:2)"), g("[(a:2):3]"));
        assertEquals(s(1, "a b  d", 10, "a  c  d"), g("a [b : c : 1] d"));
        assertEquals(s(1, "abe", 2, "ace", 10, "ade"), g("a[b:[c:d:2]:1]e"));
        assertEquals(s(10, "a [unbalanced"), g("a [unbalanced"));
        assertEquals(s(5, "a  c", 10, "a b c"), g("a [b:.5] c"));
        assertEquals(s(3, "((a][:b:c ", 10, "((a][:b:c d"), g("((a][:b:c [d:3]"));
        assertEquals(s(1, "a", 2, "(b:1.1)", 3, "a", 4, "(b:1.1)", 5, "a", 6, "(b:1.1)", 7, "a", 8, "(b:1.1)",
                9, "a", 10, "(b:1.1)"), g("[a|(b:1.1)]"));
        assertEquals(s(1, "female", 2, "male", 3, "female", 4, "male", 5, "female", 6, "male", 7, "female",
                8, "male", 9, "female", 10, "male"), g("[fe|]male"));
        assertEquals(s(1, "female", 2, "male", 3, "male", 4, "male", 5, "female", 6, "male", 7, "male",
                8, "male", 9, "female", 10, "male"), g("[fe|||]male"));
        // The doctest "a [{b|d{:.5] c" (marked "not handling this right now") expects a schedule, but A1111's
        // grammar cannot read '|' outside an alternation: at the commit the golden set names it keeps the text.
        assertEquals(s(10, "a [{b|d{:.5] c"), g("a [{b|d{:.5] c"));
    }

    @Test
    void a1111HeaderExample() {
        // prompt_parser.py's header comment, 100 steps
        assertEquals(s(25, "fantasy landscape with a mountain and an oak in foreground shoddy",
                        50, "fantasy landscape with a lake and an oak in foreground in background shoddy",
                        60, "fantasy landscape with a lake and an oak in foreground in background masterful",
                        75, "fantasy landscape with a lake and an oak in background masterful",
                        100, "fantasy landscape with a lake and a christmas tree in background masterful"),
                PromptSchedule.of("fantasy landscape with a [mountain:lake:0.25] and [an oak:a christmas tree:0.75]"
                        + "[ in foreground::0.6][ in background:0.25] [shoddy:masterful:0.5]", 100));
    }

    @Test
    void stepsAreLookedUpAsA1111sDenoiserDoes() {
        List<Entry> sch = g("a [b:3]");
        // steps 0..3 use entry 0 (end 3), 4..10 entry 1; past the end A1111 falls back to entry 0
        assertEquals(0, PromptSchedule.indexAt(sch, 0));
        assertEquals(0, PromptSchedule.indexAt(sch, 3));
        assertEquals(1, PromptSchedule.indexAt(sch, 4));
        assertEquals(1, PromptSchedule.indexAt(sch, 10));
        assertEquals(0, PromptSchedule.indexAt(sch, 11));
        assertTrue(PromptSchedule.isScheduled("a [b:c:0.5]"));
        assertTrue(PromptSchedule.isScheduled("[a|b]"));
        assertFalse(PromptSchedule.isScheduled("a (b:1.2) [c]"));
    }

    @Test
    void agreesWithA1111OnItsOwnOutputs() throws Exception {
        JsonNode root;
        try (InputStream in = getClass().getResourceAsStream("/prompt/a1111-schedules.json")) {
            root = new ObjectMapper().readTree(in);
        }
        int n = 0;
        for (JsonNode c : root.get("cases")) {
            List<Entry> want = new ArrayList<>();
            for (JsonNode e : c.get("schedule")) {
                want.add(new Entry(e.get(0).asInt(), e.get(1).asText()));
            }
            String p = c.get("prompt").asText();
            int steps = c.get("steps").asInt();
            assertEquals(want, PromptSchedule.of(p, steps), () -> "prompt '" + p + "', " + steps + " steps");
            n++;
        }
        assertTrue(n > 400, n + " cases");
    }
}
