package dev.sdserve.scheduler;

import dev.sdserve.engine.LatentShape;
import dev.sdserve.engine.TokenMerging;
import dev.sdserve.job.GenerationRequest;
import dev.sdserve.job.Job;
import dev.sdserve.job.JobEvent;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Token merging in the scheduler (fake engine, 64×64 latents, denoise 40 ms + 1 ms per UNet sample): a merged step
 * costs the merged cost factor of the full one; requests with different ratios never share a UNet call, requests
 * with the same ratio do.
 */
class TokenMergingSchedulingTest {
    private static final LatentShape SHAPE = new LatentShape(4, 64, 64);

    @Test
    void aMergedStepCostsTheMeasuredFactor() throws Exception {
        GenerationRequest base = Harness.req("a red fox", 7, 4).withGuidance(7.5).withSize(512, 512);
        assertEquals(List.of(42.0, 42.0, 42.0, 42.0), GuidanceCutoffTest.stepMillis(base));
        assertEquals(GuidanceCutoffTest.stepMillis(base), GuidanceCutoffTest.stepMillis(base.withTokenMerging(0.0)));
        double f = TokenMerging.costFactor(0.5, SHAPE);
        assertTrue(f < 1 && f > 0, "ratio 0.5 at 4096 tokens is cheaper: " + f);
        for (double ms : GuidanceCutoffTest.stepMillis(base.withTokenMerging(0.5))) {
            assertEquals(42.0 * f, ms, 1e-6);
        }
        // the factor falls with the ratio and is 1 without merging
        assertEquals(1.0, TokenMerging.costFactor(0, SHAPE));
        assertTrue(TokenMerging.costFactor(0.3, SHAPE) >= f);
        assertEquals(1.0, TokenMerging.costFactor(0.5, new LatentShape(4, 16, 16)), "no saving claimed at 256 tokens");
        assertTrue(TokenMerging.costFactor(0.3, SHAPE) < 1);
    }

    @Test
    void differentRatiosRunInDifferentCallsAndEqualRatiosShare() {
        Harness h = new Harness();
        SchedulerService s = h.build();
        List<Job> jobs = new ArrayList<>();
        jobs.add(s.submit(Harness.req("a", 1, 5).withTokenMerging(0.5), false));
        jobs.add(s.submit(Harness.req("b", 2, 5).withTokenMerging(0.5), false));
        jobs.add(s.submit(Harness.req("c", 3, 5), false));
        jobs.add(s.submit(Harness.req("d", 4, 5).withTokenMerging(0.3), false));
        h.runAll();
        for (Job j : jobs) {
            assertEquals(JobEvent.Completed.class, Harness.terminal(j).getClass());
        }
        // three ratios (0.5, none, 0.3), 5 steps each: 15 calls; the two 0.5 requests share theirs
        assertEquals(15, h.engine.stats().denoiseCalls.get());
        assertEquals(20, h.engine.stats().denoiseItems.get());
    }
}
