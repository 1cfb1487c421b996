package dev.sdserve.scheduler;

import dev.sdserve.engine.tf.TfEngine;
import dev.sdserve.job.GenerationRequest;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Guidance truncation on the real TensorFlow engine (tiny golden model): off is bit-identical to a request without
 * the option, on changes the image, and less than dropping guidance altogether does.
 */
class GuidanceCutoffEngineTest {

    private static GenerationRequest req(double guidance) {
        return RealEngineServing.tinyRequest("a red fox in the snow", "dpmpp_2m", 8, guidance, 11L);
    }

    private static double meanAbs(float[] a, float[] b) {
        double s = 0;
        for (int i = 0; i < a.length; i++) {
            s += Math.abs(a[i] - b[i]);
        }
        return s / a.length;
    }

    @Test
    void offIsBitIdenticalAndOnMovesTowardsTheUnguidedImage() throws Exception {
        try (TfEngine engine = RealEngineServing.tinyEngine();
             RealEngineServing s = new RealEngineServing(engine, "tiny")) {
            List<float[]> out = s.alone(List.of(req(7.5), req(7.5).withGuidanceCutoff(1.0),
                    req(7.5).withGuidanceCutoff(0.5), req(1.0)));
            float[] full = out.get(0), off = out.get(1), half = out.get(2), unguided = out.get(3);
            assertArrayEquals(full, off, "guidance_cutoff 1 = no truncation, bit for bit");
            double dHalf = meanAbs(full, half), dNone = meanAbs(full, unguided);
            assertTrue(dHalf > 0, "truncation changes the image");
            assertTrue(dHalf < dNone, "half the steps guided is closer to full guidance (" + dHalf
                    + ") than none (" + dNone + ")");
        }
    }
}
