package dev.sdserve.scheduler;

import dev.sdserve.engine.tf.TfEngine;
import dev.sdserve.job.GenerationRequest;
import org.junit.jupiter.api.Test;

import java.util.List;

import static dev.sdserve.scheduler.RealEngineServing.tinyRequest;
import static dev.sdserve.testutil.Floats.maxAbsDiff;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * DeepCache through the scheduler on the real engine (tiny golden model): requests with interval 2 and 3 share
 * batches with a request without the option (full steps in one call, shallow steps in another) and each image is
 * its solo run's; interval 1 is bit-identical to no option; the option changes the image (shallow steps ran).
 */
class DeepCacheServingTest {

    @Test
    void mixedBatchesGiveEachRequestItsSoloImage() throws Exception {
        GenerationRequest a = tinyRequest("a red fox in the snow", "dpmpp_2m", 6, 5.0, 1).withDeepCacheInterval(2);
        GenerationRequest b = tinyRequest("a lighthouse", "euler", 4, 3.0, 2);
        GenerationRequest c = tinyRequest("a bowl of cherries", "euler_a", 5, 1.0, 3).withDeepCacheInterval(3);
        List<GenerationRequest> reqs = List.of(a, b, c);
        try (TfEngine engine = RealEngineServing.tinyEngine();
             RealEngineServing s = new RealEngineServing(engine, "tiny")) {
            List<float[]> solo = s.alone(List.of(a, b, c, b.withDeepCacheInterval(1), a.withDeepCacheInterval(null)));
            assertArrayEquals(solo.get(1), solo.get(3), "deep_cache_interval 1 = off, bit for bit");
            double changed = maxAbsDiff(solo.get(0), solo.get(4));
            assertTrue(changed > 1e-3, "interval 2 ran shallow steps: the image moved by " + changed);

            RealEngineServing.Together together = s.together(reqs);
            double meanBatch = together.meanBatch();
            assertTrue(meanBatch > 1, "mean UNet batch " + meanBatch);
            for (int i = 0; i < reqs.size(); i++) {
                double d = maxAbsDiff(solo.get(i), together.images().get(i));
                // batching changes float32 rounding only (as RealEngineBatchingTest bounds it)
                assertTrue(d < RealEngineServing.BATCHED_VS_SOLO, reqs.get(i).sampler() + ": batched image differs from solo by " + d);
            }
            System.out.printf("DeepCache serving: 3 concurrent requests (intervals 2, off, 3), mean UNet batch %.2f"
                    + " jobs; interval 2 moved the image by %.4f (max abs, 0..1)%n", meanBatch, changed);
        }
    }
}
