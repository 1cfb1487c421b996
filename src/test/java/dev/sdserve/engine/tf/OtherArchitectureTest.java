package dev.sdserve.engine.tf;

import dev.sdserve.engine.DenoiseBatch;
import dev.sdserve.engine.DenoiseItem;
import dev.sdserve.engine.EncodeItem;
import dev.sdserve.engine.LatentShape;
import dev.sdserve.engine.ModelInfo;
import dev.sdserve.model.DType;
import dev.sdserve.model.ModelConfig;
import dev.sdserve.model.RandomCheckpoint;
import dev.sdserve.model.TextEncoderConfig;
import dev.sdserve.model.UNetConfig;
import dev.sdserve.model.VaeConfig;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * An architecture unlike sd15-tiny (3 levels, 1 res block per level, attention only at levels 0 and 2, no mid
 * attention, per-level heads, linear projections, 2 transformer blocks, a 2-layer gelu text encoder, a 3-level VAE)
 * written as a random-weight civitai-layout checkpoint with its config JSON, loaded by shape detection: every network
 * runs at a non-square size, and batching does not change any sample's result.
 */
class OtherArchitectureTest {
    @TempDir
    Path tmp;

    static double err(float[] a, float[] b) {
        return Conformance.err(a, b);
    }

    @Test
    void runsAndBatchesConsistently() throws Exception {
        UNetConfig u = new UNetConfig(4, 4, List.of(32, 64, 64), 1, List.of(true, false, true),
                List.of(true, false, true), false, List.of(2, 4, 4), 48, true, 2, 32, 1e-5, "epsilon", 8);
        TextEncoderConfig te = new TextEncoderConfig(49408, 48, 96, 2, 3, 77, "gelu", 1e-5, 49406, 49407, 49407);
        VaeConfig vae = new VaeConfig(3, 3, 4, List.of(32, 32, 64), 1, 32, 0.13025);
        ModelConfig cfg = new ModelConfig("sd1", u, te, vae);
        Path file = RandomCheckpoint.ensure(tmp.resolve("other.safetensors"), cfg, DType.F16, 5);
        try (TfEngine engine = new TfEngine(Map.of("other", file))) {
            assertEquals(cfg.unet(), engine.config("other").unet(), "architecture read back");
            ModelInfo info = engine.describe("other");
            assertEquals(4, info.vaeScale());
            assertEquals(48, info.contextDim());

            float[][] ctx = engine.encode("other", List.of(new EncodeItem("a red fox"), new EncodeItem("", 2, List.of())));
            assertEquals(77 * 48, ctx[0].length);
            float[] alone = engine.encode("other", List.of(new EncodeItem("a red fox")))[0];
            assertTrue(err(alone, ctx[0]) < 1e-6, "text encoding independent of the batch");

            LatentShape shape = new LatentShape(4, 12, 8); // multiples of 4 for 2 downsamplings, non-square
            Random r = new Random(3);
            float[] x1 = new float[shape.size()], x2 = new float[shape.size()];
            for (int i = 0; i < x1.length; i++) {
                x1[i] = (float) r.nextGaussian();
                x2[i] = (float) r.nextGaussian();
            }
            float[][] batch = engine.denoise(new DenoiseBatch("other", shape, List.of(
                    new DenoiseItem(x1, 900, ctx[0], ctx[1], 5.0, null),
                    new DenoiseItem(x2, 20.5, ctx[1], null, 1.0, null))));
            float[] a = engine.denoise(new DenoiseBatch("other", shape, List.of(new DenoiseItem(x1, 900, ctx[0], ctx[1], 5.0, null))))[0];
            float[] b = engine.denoise(new DenoiseBatch("other", shape, List.of(new DenoiseItem(x2, 20.5, ctx[1], null, 1.0, null))))[0];
            assertTrue(err(batch[0], a) < 1e-5, "guided sample independent of the batch: " + err(batch[0], a));
            assertTrue(err(batch[1], b) < 1e-5, "unguided sample independent of the batch: " + err(batch[1], b));
            float[] c = engine.denoise(new DenoiseBatch("other", shape, List.of(new DenoiseItem(x1, 100, ctx[0], null, 1.0, null))))[0];
            assertTrue(err(c, a) > 1e-3, "timestep and guidance change the prediction");

            float[][] img = engine.decode("other", shape, List.of(x1, x2));
            assertEquals(48 * 32 * 3, img[0].length);
            for (float v : img[0]) {
                assertTrue(v >= 0 && v <= 1);
            }
            float[][] z = engine.encodeImage("other", shape, List.of(img[0]));
            assertEquals(shape.size(), z[0].length);
            for (float v : z[0]) {
                assertTrue(Float.isFinite(v));
            }
        }
    }
}
