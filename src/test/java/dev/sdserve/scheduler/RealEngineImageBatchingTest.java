package dev.sdserve.scheduler;

import dev.sdserve.engine.tf.TfEngine;
import dev.sdserve.job.GenerationRequest;
import org.junit.jupiter.api.Test;

import java.util.List;

import static dev.sdserve.testutil.Floats.maxAbsDiff;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The real TensorFlow engine on the tiny golden model: txt2img, img2img and inpainting requests run together share
 * UNet calls, and each image equals the image of the same request run alone. About 10 s.
 */
class RealEngineImageBatchingTest {

    private static GenerationRequest req(String prompt, String sampler, int steps, long seed) {
        return RealEngineServing.tinyRequest(prompt, sampler, steps, 5.0, seed).withSize(64, 64);
    }

    @Test
    void txt2imgImg2imgAndInpaintingShareUnetCallsAndMatchTheirSoloImages() throws Exception {
        byte[] init = ImageServingTest.picture(64, 64);
        byte[] mask = ImageServingTest.squareMask(64, 64, 16, 16, 48, 48);
        List<GenerationRequest> reqs = List.of(
                req("a red fox in the snow", "euler_a", 6, 1),
                req("a lighthouse", "ddim", 8, 2).withImage(ImageServingTest.img2img(init, 0.6)),
                req("a bowl of cherries", "dpmpp_2m", 8, 3).withImage(ImageServingTest.inpaint(init, mask, 0.8, 4)),
                req("an old map", "euler", 6, 4).withImage(ImageServingTest.img2img(init, 1.0)));
        try (TfEngine engine = RealEngineServing.tinyEngine();
             RealEngineServing s = new RealEngineServing(engine, "tiny")) {
            List<float[]> solo = s.alone(reqs);
            long enc0 = engine.stats().imageEncodeCalls.get();
            RealEngineServing.Together together = s.together(reqs);
            assertTrue(together.meanBatch() > 1, "mean UNet batch " + together.meanBatch());
            assertEquals(1, engine.stats().imageEncodeCalls.get() - enc0, "the three image encodes in one VAE call");
            for (int i = 0; i < reqs.size(); i++) {
                double maxDiff = maxAbsDiff(solo.get(i), together.images().get(i));
                // the inpainting result is 8-bit (A1111's overlay composes bytes): a float difference far below
                // 1e-4 may round one byte the other way
                double tol = reqs.get(i).image() != null && reqs.get(i).image().hasMask() ? 1.01 / 255
                        : RealEngineServing.BATCHED_VS_SOLO;
                assertTrue(maxDiff < tol, reqs.get(i).sampler() + ": batched image differs from solo by " + maxDiff);
            }
            System.out.printf("real engine: txt2img + 2 img2img + inpainting together, mean UNet batch %.2f jobs%n",
                    together.meanBatch());
        }
    }
}
