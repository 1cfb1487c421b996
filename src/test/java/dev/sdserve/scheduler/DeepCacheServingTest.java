package dev.sdserve.scheduler;

import dev.sdserve.clock.Clock;
import dev.sdserve.engine.tf.TfEngine;
import dev.sdserve.job.GenerationRequest;
import dev.sdserve.job.Job;
import dev.sdserve.job.JobEvent;
import dev.sdserve.job.PreviewOptions;
import dev.sdserve.model.Checkpoint;
import dev.sdserve.model.ClipTokenizer;
import dev.sdserve.model.ModelConfig;
import dev.sdserve.testutil.Shared;
import org.junit.jupiter.api.Test;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * DeepCache through the scheduler on the real engine (tiny golden model): requests with interval 2 and 3 share
 * batches with a request without the option (full steps in one call, shallow steps in another) and each image is
 * its solo run's; interval 1 is bit-identical to no option; the option changes the image (shallow steps ran).
 */
class DeepCacheServingTest {

    private static GenerationRequest req(String prompt, String sampler, int steps, double guidance, long seed) {
        return GenerationRequest.ofPrompt(prompt).withModel("tiny").withSampler(sampler).withSteps(steps)
                .withGuidance(guidance).withSeed(seed).withPreview(PreviewOptions.OFF);
    }

    private static double maxAbs(float[] a, float[] b) {
        double m = 0;
        for (int i = 0; i < a.length; i++) {
            m = Math.max(m, Math.abs(a[i] - b[i]));
        }
        return m;
    }

    @Test
    void mixedBatchesGiveEachRequestItsSoloImage() throws Exception {
        Path file = Shared.golden("sd15-tiny").resolve("tiny-sd15.safetensors");
        ModelConfig cfg;
        try (Checkpoint c = Checkpoint.open(file)) {
            cfg = c.config();
        }
        GenerationRequest a = req("a red fox in the snow", "dpmpp_2m", 6, 5.0, 1).withDeepCacheInterval(2);
        GenerationRequest b = req("a lighthouse", "euler", 4, 3.0, 2);
        GenerationRequest c = req("a bowl of cherries", "euler_a", 5, 1.0, 3).withDeepCacheInterval(3);
        List<GenerationRequest> reqs = List.of(a, b, c);
        try (TfEngine engine = new TfEngine(Map.of("tiny", file), p -> cfg, ClipTokenizer.get())) {
            Map<Job, List<float[]>> images = new IdentityHashMap<>();
            ServiceConfig sc = new ServiceConfig();
            sc.publishExecutor = Runnable::run;
            sc.imageListener = images::put;
            sc.admission.defaultModel = "tiny";
            engine.ensureLoaded("tiny");
            try (SchedulerService s = new SchedulerService(engine, sc, Clock.system())) {
                List<float[]> solo = new ArrayList<>();
                for (GenerationRequest r : List.of(a, b, c, b.withDeepCacheInterval(1), a.withDeepCacheInterval(null))) {
                    Job j = s.submit(r, false);
                    while (s.runOnce()) {
                        // run to the end
                    }
                    assertInstanceOf(JobEvent.Completed.class, j.terminalEvent(), () -> String.valueOf(j.terminalEvent()));
                    solo.add(images.get(j).get(0));
                }
                assertArrayEquals(solo.get(1), solo.get(3), "deep_cache_interval 1 = off, bit for bit");
                double changed = maxAbs(solo.get(0), solo.get(4));
                assertTrue(changed > 1e-3, "interval 2 ran shallow steps: the image moved by " + changed);

                long calls0 = engine.stats().denoiseCalls.get();
                long items0 = engine.stats().denoiseItems.get();
                List<Job> together = new ArrayList<>();
                for (GenerationRequest r : reqs) {
                    together.add(s.submit(r, false));
                }
                while (s.runOnce()) {
                    // run to the end
                }
                double meanBatch = (engine.stats().denoiseItems.get() - items0)
                        / (double) (engine.stats().denoiseCalls.get() - calls0);
                assertTrue(meanBatch > 1, "mean UNet batch " + meanBatch);
                for (int i = 0; i < reqs.size(); i++) {
                    Job j = together.get(i);
                    assertInstanceOf(JobEvent.Completed.class, j.terminalEvent(), () -> String.valueOf(j.terminalEvent()));
                    double d = maxAbs(solo.get(i), images.get(j).get(0));
                    // batching changes float32 rounding only (as RealEngineBatchingTest bounds it)
                    assertTrue(d < 1e-4, reqs.get(i).sampler() + ": batched image differs from solo by " + d);
                }
                System.out.printf("DeepCache serving: 3 concurrent requests (intervals 2, off, 3), mean UNet batch %.2f"
                        + " jobs; interval 2 moved the image by %.4f (max abs, 0..1)%n", meanBatch, changed);
            }
        }
    }
}
