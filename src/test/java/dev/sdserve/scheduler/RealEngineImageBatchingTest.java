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
 * The real TensorFlow engine on the tiny golden model: txt2img, img2img and inpainting requests run together share
 * UNet calls, and each image equals the image of the same request run alone. About 10 s.
 */
class RealEngineImageBatchingTest {

    private static GenerationRequest req(String prompt, String sampler, int steps, long seed) {
        return GenerationRequest.ofPrompt(prompt).withModel("tiny").withSampler(sampler).withSteps(steps)
                .withGuidance(5.0).withSeed(seed).withPreview(PreviewOptions.OFF).withSize(64, 64);
    }

    @Test
    void txt2imgImg2imgAndInpaintingShareUnetCallsAndMatchTheirSoloImages() throws Exception {
        Path file = Shared.golden("sd15-tiny").resolve("tiny-sd15.safetensors");
        ModelConfig cfg;
        try (Checkpoint c = Checkpoint.open(file)) {
            cfg = c.config();
        }
        byte[] init = ImageServingTest.picture(64, 64);
        byte[] mask = ImageServingTest.squareMask(64, 64, 16, 16, 48, 48);
        List<GenerationRequest> reqs = List.of(
                req("a red fox in the snow", "euler_a", 6, 1),
                req("a lighthouse", "ddim", 8, 2).withImage(ImageServingTest.img2img(init, 0.6)),
                req("a bowl of cherries", "dpmpp_2m", 8, 3).withImage(ImageServingTest.inpaint(init, mask, 0.8, 4)),
                req("an old map", "euler", 6, 4).withImage(ImageServingTest.img2img(init, 1.0)));
        try (TfEngine engine = new TfEngine(Map.of("tiny", file), p -> cfg, ClipTokenizer.get())) {
            Map<Job, List<float[]>> images = new IdentityHashMap<>();
            ServiceConfig sc = new ServiceConfig();
            sc.publishExecutor = Runnable::run;
            sc.imageListener = images::put;
            sc.admission.defaultModel = "tiny";
            engine.ensureLoaded("tiny");
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
                long calls0 = engine.stats().denoiseCalls.get();
                long items0 = engine.stats().denoiseItems.get();
                long enc0 = engine.stats().imageEncodeCalls.get();
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
                assertEquals(1, engine.stats().imageEncodeCalls.get() - enc0, "the three image encodes in one VAE call");
                for (int i = 0; i < reqs.size(); i++) {
                    Job j = together.get(i);
                    assertInstanceOf(JobEvent.Completed.class, j.terminalEvent(), () -> String.valueOf(j.terminalEvent()));
                    float[] a = solo.get(i), b = images.get(j).get(0);
                    double maxDiff = 0;
                    for (int k = 0; k < a.length; k++) {
                        maxDiff = Math.max(maxDiff, Math.abs(a[k] - b[k]));
                    }
                    // the inpainting result is 8-bit (A1111's overlay composes bytes): a float difference far below
                    // 1e-4 may round one byte the other way
                    double tol = reqs.get(i).image() != null && reqs.get(i).image().hasMask() ? 1.01 / 255 : 1e-4;
                    assertTrue(maxDiff < tol, reqs.get(i).sampler() + ": batched image differs from solo by " + maxDiff);
                }
                System.out.printf("real engine: txt2img + 2 img2img + inpainting together, mean UNet batch %.2f jobs%n", meanBatch);
            }
        }
    }
}
