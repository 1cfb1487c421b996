package dev.sdserve.engine.tf;

import dev.sdserve.engine.DenoiseBatch;
import dev.sdserve.engine.DenoiseItem;
import dev.sdserve.engine.LatentShape;
import dev.sdserve.engine.ModelInfo;
import dev.sdserve.job.ServeException;
import dev.sdserve.model.Checkpoint;
import dev.sdserve.model.GoldenSet;
import dev.sdserve.testutil.Shared;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The engine's image inputs: an inpainting checkpoint (9 UNet input channels, read from the first convolution) takes
 * its mask and masked-image latent through {@link DenoiseItem#extraChannels()}, and the VAE encoder's posterior
 * sample is (mean + std·noise)·scale. The numbers against diffusers are in {@code conformance} (img2img.*, inpaint.*).
 */
class InpaintingEngineTest {
    static GoldenSet g;
    static TfEngine engine;

    @BeforeAll
    static void open() throws Exception {
        Path dir = Shared.golden("sd15-tiny");
        g = GoldenSet.open(dir);
        Path inpaint = dir.resolve("ext/tiny-sd15-inpainting.safetensors");
        var cfg9 = Checkpoint.open(inpaint, g.json()).config();
        var cfg4 = g.config();
        engine = new TfEngine(Map.of("tiny", dir.resolve("tiny-sd15.safetensors"), "inpaint", inpaint),
                p -> p.equals(inpaint) ? cfg9 : cfg4);
    }

    @AfterAll
    static void close() {
        engine.close();
        g.close();
    }

    @Test
    void inpaintingCheckpointIsDetectedFromItsFirstConvolution() {
        ModelInfo i = engine.describe("inpaint");
        assertEquals(4, i.latentChannels());
        assertEquals(9, i.unetInChannels());
        assertTrue(i.inpainting());
        assertEquals(5, i.extraChannels());
        ModelInfo plain = engine.describe("tiny");
        assertEquals(4, plain.unetInChannels());
        assertFalse(plain.inpainting());
    }

    @Test
    void extraChannelsReachTheUnetAndAreRequired() throws Exception {
        LatentShape shape = new LatentShape(4, 16, 16);
        float[] x = g.row("unet.x", 0);
        float[] ctx = g.row("unet.ctx", 0);
        DenoiseItem plain = new DenoiseItem(x, 500, ctx, null, 1.0, null);
        ServeException e = assertThrows(ServeException.class,
                () -> engine.denoise(new DenoiseBatch("inpaint", shape, List.of(plain))));
        assertEquals("mask", e.field());
        float[] a = new float[5 * 16 * 16];
        float[] b = a.clone();
        java.util.Arrays.fill(b, 0, 256, 1f); // mask of ones
        float[][] out = engine.denoise(new DenoiseBatch("inpaint", shape, List.of(plain.withExtraChannels(a), plain.withExtraChannels(b))));
        assertEquals(shape.size(), out[0].length);
        assertNotEquals(out[0][0], out[1][0], "the mask channel changes the prediction");
        // the same item alone gives the same output as in the batch
        float[] alone = engine.denoise(new DenoiseBatch("inpaint", shape, List.of(plain.withExtraChannels(b))))[0];
        assertArrayEquals(out[1], alone, 1e-5f);
        ServeException e2 = assertThrows(ServeException.class,
                () -> engine.denoise(new DenoiseBatch("tiny", shape, List.of(plain.withExtraChannels(a)))));
        assertEquals("mask", e2.field());
    }

    @Test
    void posteriorSampleIsMeanPlusStdTimesNoiseScaled() throws Exception {
        LatentShape shape = new LatentShape(4, 16, 16);
        float[] img = new float[128 * 128 * 3];
        for (int i = 0; i < img.length; i++) {
            img[i] = (i % 251) / 250f;
        }
        float[] n = new float[shape.size()];
        new dev.sdserve.sampler.TorchGenerator(7).fill(n);
        float[] neg = n.clone();
        for (int i = 0; i < neg.length; i++) {
            neg[i] = -neg[i];
        }
        float[][] z = engine.encodeImage("tiny", shape, List.of(img, img, img),
                java.util.Arrays.asList(null, n, neg));
        float[] mean = engine.encodeImage("tiny", shape, List.of(img))[0];
        assertArrayEquals(mean, z[0], 1e-6f);
        for (int i = 0; i < mean.length; i++) {
            assertEquals(mean[i], (z[1][i] + z[2][i]) / 2, 1e-5, "antithetic noise averages to the mean");
            if (Math.abs(n[i]) > 0.1) {
                assertTrue((z[1][i] - mean[i]) / n[i] > 0, "std > 0");
            }
        }
    }
}
