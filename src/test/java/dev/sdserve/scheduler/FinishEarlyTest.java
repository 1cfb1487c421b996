package dev.sdserve.scheduler;

import dev.sdserve.engine.LatentShape;
import dev.sdserve.engine.ModelInfo;
import dev.sdserve.engine.fake.FakeEngine;
import dev.sdserve.image.InfoText;
import dev.sdserve.image.PngText;
import dev.sdserve.job.Job;
import dev.sdserve.job.JobEvent;
import dev.sdserve.job.JobState;
import dev.sdserve.job.ResolvedRequest;
import dev.sdserve.preview.Png;
import dev.sdserve.sampler.SamplerState;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.*;

/**
 * "Finish early" (A1111's interrupt and skip): a job stops denoising where it stands and completes with its latest
 * step's denoised estimate x̂0, decoded; the jobs batched with it go on untouched.
 */
class FinishEarlyTest {
    /** Runs iterations until the job has done {@code evals} model evaluations. */
    private static void runUntilStep(Harness h, Job j, int evals) {
        for (int i = 0; i < 10_000; i++) {
            JobEvent.Step s = j.lastStep();
            if (s != null && s.index() >= evals) {
                assertEquals(evals, s.index(), "one step per iteration");
                return;
            }
            h.service.runOnce();
        }
        fail("job never reached evaluation " + evals);
    }

    private static byte[] decoded(ResolvedRequest r, ModelInfo info, float[] latent) {
        return Png.encode(FakeEngine.image(info, LatentShape.forImage(info, r.width(), r.height()), latent), r.width(), r.height());
    }

    @Test
    void aJobStoppedAtStepFiveDecodesItsDenoisedEstimateAndItsBatchmateFinishes() {
        Harness h = new Harness();
        SchedulerService s = h.build();
        Job a = s.submit(Harness.req("a red circle", 7, 20).withSampler("euler").withGuidance(7.5), false);
        Job b = s.submit(Harness.req("a blue square", 8, 20).withSampler("euler_a").withGuidance(5.0), false);
        runUntilStep(h, a, 5);
        assertTrue(s.finishEarly(a.id()));
        h.runAll();

        ModelInfo info = h.engine.describe("embedded");
        JobEvent.Completed done = Harness.completed(a);
        SamplerState alone = EventsAndIsolationTest.naiveState(a.request(), 0, info, 5);
        assertEquals(5, alone.evaluation());
        assertArrayEquals(Harness.pixels(decoded(a.request(), info, alone.denoised())), Harness.pixels(done.images().get(0)),
                "the image is x̂0 of step 5, decoded");
        assertFalse(java.util.Arrays.equals(Harness.pixels(decoded(a.request(), info, alone.latents())),
                Harness.pixels(done.images().get(0))), "not the noisy sample of step 5");
        InfoText.Parsed text = InfoText.parse(PngText.get(done.images().get(0), InfoText.KEYWORD).orElseThrow());
        assertEquals("20", text.parameters().get("Steps"));
        assertEquals("5/20", text.parameters().get(InfoText.STEPS_DONE));
        assertEquals(5, a.lastStep().index(), "no step after the stop");

        JobEvent.Completed other = Harness.completed(b);
        assertArrayEquals(Harness.pixels(EventsAndIsolationTest.naive(b.request(), 0, info)), Harness.pixels(other.images().get(0)),
                "the batchmate runs all its steps, as alone");
        assertNull(InfoText.parse(PngText.get(other.images().get(0), InfoText.KEYWORD).orElseThrow()).parameters()
                .get(InfoText.STEPS_DONE));
        assertFalse(s.finishEarly(a.id()), "already ended");
    }

    @Test
    void aJobWithNoStepYetIsCancelled() {
        Harness h = new Harness();
        SchedulerService s = h.build();
        Job a = s.submit(Harness.req("a red circle", 7, 20), false);
        assertTrue(s.finishEarly(a.id()));
        h.runAll();
        JobEvent.Ended end = assertInstanceOf(JobEvent.Ended.class, Harness.terminal(a));
        assertEquals(JobState.CANCELLED, end.state());
    }
}
