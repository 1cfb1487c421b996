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

import static org.junit.jupiter.api.Assertions.*;

/**
 * The real TensorFlow engine on the tiny golden model: six concurrent requests with different samplers, step counts
 * and guidance scales share UNet calls, and each image equals the image of the same request run alone.
 */
class RealEngineBatchingTest {

    private static GenerationRequest req(String prompt, String sampler, int steps, double guidance, long seed) {
        return GenerationRequest.ofPrompt(prompt).withModel("tiny").withSampler(sampler).withSteps(steps)
                .withGuidance(guidance).withSeed(seed).withPreview(PreviewOptions.OFF);
    }

    @Test
    void sixConcurrentRequestsShareUnetCallsAndMatchTheirSoloImages() throws Exception {
        Path dir = Shared.golden("sd15-tiny");
        Path file = dir.resolve("tiny-sd15.safetensors");
        ModelConfig cfg;
        try (Checkpoint c = Checkpoint.open(file)) {
            cfg = c.config();
        }
        ClipTokenizer tok = ClipTokenizer.get();
        List<GenerationRequest> reqs = List.of(
                req("a red fox in the snow", "euler_a", 6, 7.5, 1),
                req("a lighthouse", "euler", 4, 3.0, 2),
                req("a bowl of cherries", "dpmpp_2m_karras", 8, 1.0, 3),
                req("an old map", "ddim", 5, 12.0, 4),
                req("a cat on a sofa", "heun", 3, 5.0, 5),
                req("a city at night", "dpmpp_2m_sde_karras", 7, 7.5, 6));
        try (TfEngine engine = new TfEngine(Map.of("tiny", file), p -> cfg, tok)) {
            Map<Job, List<float[]>> images = new IdentityHashMap<>();
            ServiceConfig sc = new ServiceConfig();
            sc.publishExecutor = Runnable::run;
            sc.imageListener = images::put;
            sc.admission.defaultModel = "tiny";
            engine.ensureLoaded("tiny"); // models load off the scheduler thread: runOnce() plans nothing until then
            try (SchedulerService s = new SchedulerService(engine, sc, Clock.system())) {
                // alone, one after the other
                List<float[]> solo = new ArrayList<>();
                for (GenerationRequest r : reqs) {
                    Job j = s.submit(r, false);
                    while (s.runOnce()) {
                        // run to the end
                    }
                    assertInstanceOf(JobEvent.Completed.class, j.terminalEvent(), () -> String.valueOf(j.terminalEvent()));
                    solo.add(images.get(j).get(0));
                }
                long calls0 = engine.stats().denoiseCalls.get();
                long items0 = engine.stats().denoiseItems.get();
                // together
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
                    float[] a = solo.get(i);
                    float[] b = images.get(j).get(0);
                    assertEquals(a.length, b.length);
                    double maxDiff = 0;
                    for (int k = 0; k < a.length; k++) {
                        maxDiff = Math.max(maxDiff, Math.abs(a[k] - b[k]));
                    }
                    assertTrue(maxDiff < 1e-4, reqs.get(i).sampler() + ": batched image differs from solo by " + maxDiff);
                }
                System.out.printf("real engine: 6 concurrent requests, mean UNet batch %.2f jobs%n", meanBatch);
            }
        }
    }
}
