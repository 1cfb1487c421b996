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
 * Token merging on the real TensorFlow engine through the scheduler (tiny golden model, 16×16 latents): ratio 0 is
 * bit-identical to a request without the option; a ratio changes the image; requests with different ratios submitted
 * together (some without the option) each get their solo image.
 */
class TokenMergingEngineTest {

    private static GenerationRequest req(String prompt, long seed) {
        return GenerationRequest.ofPrompt(prompt).withModel("tiny").withSampler("dpmpp_2m").withSteps(5)
                .withGuidance(5.0).withSeed(seed).withPreview(PreviewOptions.OFF);
    }

    private static double maxDiff(float[] a, float[] b) {
        double m = 0;
        for (int i = 0; i < a.length; i++) {
            m = Math.max(m, Math.abs(a[i] - b[i]));
        }
        return m;
    }

    @Test
    void offIsBitIdenticalAndAMixedBatchGivesEachItsSoloImage() throws Exception {
        Path file = Shared.golden("sd15-tiny").resolve("tiny-sd15.safetensors");
        ModelConfig cfg;
        try (Checkpoint c = Checkpoint.open(file)) {
            cfg = c.config();
        }
        try (TfEngine engine = new TfEngine(Map.of("tiny", file), p -> cfg, ClipTokenizer.get())) {
            Map<Job, List<float[]>> images = new IdentityHashMap<>();
            ServiceConfig sc = new ServiceConfig();
            sc.publishExecutor = Runnable::run;
            sc.imageListener = images::put;
            sc.admission.defaultModel = "tiny";
            engine.ensureLoaded("tiny");
            List<GenerationRequest> reqs = List.of(
                    req("a red fox in the snow", 11),
                    req("a red fox in the snow", 11).withTokenMerging(0.5),
                    req("a lighthouse", 12).withTokenMerging(0.5),
                    req("a bowl of cherries", 13).withTokenMerging(0.3),
                    req("an old map", 14));
            try (SchedulerService s = new SchedulerService(engine, sc, Clock.system())) {
                List<float[]> solo = new ArrayList<>();
                for (GenerationRequest r : reqs) {
                    Job j = s.submit(r, false);
                    while (s.runOnce()) {
                        // run to the end
                    }
                    assertInstanceOf(JobEvent.Completed.class, j.terminalEvent(), () -> String.valueOf(j.terminalEvent()));
                    solo.add(images.get(j).get(0));
                }
                Job zero = s.submit(reqs.get(0).withTokenMerging(0.0), false);
                while (s.runOnce()) {
                    // run to the end
                }
                assertArrayEquals(solo.get(0), images.get(zero).get(0), "token_merging_ratio 0 = off, bit for bit");
                double changed = maxDiff(solo.get(0), solo.get(1));
                assertTrue(changed > 1e-3, "ratio 0.5 changes the image (max diff " + changed + ")");

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
                assertTrue(meanBatch > 1, "requests with the same ratio share UNet calls: mean batch " + meanBatch);
                for (int i = 0; i < reqs.size(); i++) {
                    Job j = together.get(i);
                    assertInstanceOf(JobEvent.Completed.class, j.terminalEvent(), () -> String.valueOf(j.terminalEvent()));
                    double d = maxDiff(solo.get(i), images.get(j).get(0));
                    assertTrue(d < 1e-4, "request " + i + ": batched image differs from solo by " + d);
                }
            }
        }
    }
}
