package dev.sdserve.scheduler;

import dev.sdserve.engine.tf.TfEngine;
import dev.sdserve.job.GenerationRequest;
import org.junit.jupiter.api.Test;

import java.util.List;

import static dev.sdserve.scheduler.RealEngineServing.tinyRequest;
import static dev.sdserve.testutil.Floats.maxAbsDiff;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The real TensorFlow engine on the tiny golden model: six concurrent requests with different samplers, step counts
 * and guidance scales share UNet calls, and each image equals the image of the same request run alone.
 */
class RealEngineBatchingTest {

    @Test
    void sixConcurrentRequestsShareUnetCallsAndMatchTheirSoloImages() throws Exception {
        List<GenerationRequest> reqs = List.of(
                tinyRequest("a red fox in the snow", "euler_a", 6, 7.5, 1),
                tinyRequest("a lighthouse", "euler", 4, 3.0, 2),
                tinyRequest("a bowl of cherries", "dpmpp_2m_karras", 8, 1.0, 3),
                tinyRequest("an old map", "ddim", 5, 12.0, 4),
                tinyRequest("a cat on a sofa", "heun", 3, 5.0, 5),
                tinyRequest("a city at night", "dpmpp_2m_sde_karras", 7, 7.5, 6));
        try (TfEngine engine = RealEngineServing.tinyEngine();
             RealEngineServing s = new RealEngineServing(engine, "tiny")) {
            List<float[]> solo = s.alone(reqs);
            RealEngineServing.Together together = s.together(reqs);
            assertTrue(together.meanBatch() > 1, "mean UNet batch " + together.meanBatch());
            for (int i = 0; i < reqs.size(); i++) {
                double maxDiff = maxAbsDiff(solo.get(i), together.images().get(i));
                assertTrue(maxDiff < RealEngineServing.BATCHED_VS_SOLO, reqs.get(i).sampler() + ": batched image differs from solo by " + maxDiff);
            }
            System.out.printf("real engine: 6 concurrent requests, mean UNet batch %.2f jobs%n", together.meanBatch());
        }
    }
}
