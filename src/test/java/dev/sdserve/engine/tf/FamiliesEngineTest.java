package dev.sdserve.engine.tf;

import dev.sdserve.engine.AddedConditioning;
import dev.sdserve.engine.Conditioning;
import dev.sdserve.engine.DenoiseBatch;
import dev.sdserve.engine.DenoiseItem;
import dev.sdserve.engine.EncodeItem;
import dev.sdserve.engine.LatentShape;
import dev.sdserve.engine.SizeConditioning;
import dev.sdserve.job.ServeException;
import dev.sdserve.model.Checkpoint;
import dev.sdserve.model.DType;
import dev.sdserve.model.ModelConfig;
import dev.sdserve.model.ModelConfigs;
import dev.sdserve.model.ModelDetection;
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

import static org.junit.jupiter.api.Assertions.*;

/**
 * SDXL- and SD 2.x-shaped architectures unlike the golden sets' (other depths, widths, heads, levels), written as
 * random-weight single files, detected from their shapes and run through the engine: the family's conditioning
 * (two towers concatenated, pooled output, SDXL's zero empty negative; SD 2.x's penultimate layer), the UNet with
 * per-sample size conditioning independent of the batch, and clear errors.
 */
class FamiliesEngineTest {
    @TempDir
    Path tmp;

    static final ModelConfig XL = new ModelConfig(ModelConfig.SDXL,
            new UNetConfig(4, 4, List.of(32, 64, 64), 1, List.of(false, true, true), List.of(true, true, false), true,
                    List.of(2, 2, 4), 80, true, List.of(0, 1, 3), 2, List.of(3, 1, 0), 32, 1e-5, "epsilon", 8, 6, 76),
            List.of(new TextEncoderConfig(49408, 32, 64, 3, 2, 77, "quick_gelu", 1e-5, 49406, 49407, 49407,
                            TextEncoderConfig.CLIP, ModelDetection.SDXL_TEXT1, 0),
                    new TextEncoderConfig(49408, 48, 96, 3, 3, 77, "gelu", 1e-5, 49406, 49407, 0,
                            TextEncoderConfig.OPEN_CLIP, ModelDetection.SDXL_TEXT2, 40)),
            new VaeConfig(3, 3, 4, List.of(32, 32, 64), 1, 32, 0.13025));

    static final ModelConfig SD2 = new ModelConfig(ModelConfig.SD2,
            new UNetConfig(4, 4, List.of(32, 64), 1, List.of(true, true), List.of(true, true), true,
                    List.of(2, 4), 48, true, 1, 32, 1e-5, "v_prediction", 16),
            new TextEncoderConfig(49408, 48, 96, 3, 3, 77, "gelu", 1e-5, 49406, 49407, 0,
                    TextEncoderConfig.OPEN_CLIP, ModelDetection.SD2_TEXT, 48),
            new VaeConfig(3, 3, 4, List.of(32, 64), 1, 32, 0.18215));

    static double err(float[] a, float[] b) {
        return Conformance.err(a, b);
    }

    static float[] noise(int n, long seed) {
        Random r = new Random(seed);
        float[] x = new float[n];
        for (int i = 0; i < n; i++) {
            x[i] = (float) r.nextGaussian();
        }
        return x;
    }

    @Test
    void sdxlShapedModelConditionsAndDenoisesPerSample() throws Exception {
        Path file = RandomCheckpoint.ensure(tmp.resolve("xl.safetensors"), XL, DType.F16, 7);
        try (Checkpoint ck = Checkpoint.open(file)) {
            assertEquals(XL, ck.config(), "architecture read back");
        }
        try (TfEngine engine = new TfEngine(Map.of("xl", file))) {
            assertEquals("sdxl", engine.describe("xl").architecture());
            assertEquals(80, engine.describe("xl").contextDim());
            List<Conditioning> c = engine.encodeConditioning("xl", List.of(new EncodeItem("a red fox"),
                    EncodeItem.negative("", 1, List.of()), new EncodeItem(""), EncodeItem.negative("blurry", 1, List.of()),
                    new EncodeItem("a red fox", 2, List.of())));
            assertEquals(77 * 80, c.get(0).context().length);
            assertEquals(40, c.get(0).pooled().length);
            for (float v : c.get(1).context()) {
                assertEquals(0f, v, "an empty negative prompt is zeros");
            }
            for (float v : c.get(1).pooled()) {
                assertEquals(0f, v);
            }
            assertTrue(norm(c.get(2).context()) > 0, "an empty positive prompt is encoded");
            assertTrue(norm(c.get(3).pooled()) > 0, "a negative prompt is encoded");
            assertTrue(err(c.get(4).context(), c.get(0).context()) > 1e-3, "CLIP skip 2 goes one layer further back");
            assertTrue(err(c.get(4).pooled(), c.get(0).pooled()) < 1e-6, "the pooled output is the last layer's");
            // towers: the context is [CLIP-L penultimate | bigG penultimate] per token, unnormed
            int[] ids1 = dev.sdserve.model.ClipTokenizer.get().tokenize("a red fox", XL.textEncoders().get(0));
            int[] ids2 = dev.sdserve.model.ClipTokenizer.get().tokenize("a red fox", XL.textEncoders().get(1));
            assertEquals(0, ids2[76], "OpenCLIP pads with 0");
            float[] h1 = engine.encodeTower("xl", 0, new int[][]{ids1}, new ClipTextNet.Request(2, false, false),
                    List.of(List.of())).hidden()[0];
            TfModel.Encoded h2 = engine.encodeTower("xl", 1, new int[][]{ids2}, new ClipTextNet.Request(2, false, true),
                    List.of(List.of()));
            float[] ctx = c.get(0).context();
            for (int t = 0; t < 77; t += 19) {
                assertEquals(h1[t * 32 + 5], ctx[t * 80 + 5], 1e-6);
                assertEquals(h2.hidden()[0][t * 48 + 7], ctx[t * 80 + 32 + 7], 1e-6);
            }
            assertArrayEquals(h2.pooled()[0], c.get(0).pooled(), 1e-6f);

            LatentShape shape = new LatentShape(4, 8, 12);
            float[] x1 = noise(shape.size(), 1), x2 = noise(shape.size(), 2);
            AddedConditioning a = AddedConditioning.of(c.get(0), SizeConditioning.of(64, 96));
            AddedConditioning an = AddedConditioning.of(c.get(1), SizeConditioning.of(64, 96));
            AddedConditioning crop = AddedConditioning.of(c.get(0), new SizeConditioning(1024, 768, 32, 16, 64, 96));
            DenoiseItem guided = new DenoiseItem(x1, 900, c.get(0).context(), c.get(1).context(), 5.0, null, a, an);
            DenoiseItem plain = new DenoiseItem(x2, 20.5, c.get(0).context(), null, 1.0, null, crop, null);
            float[][] batch = engine.denoise(new DenoiseBatch("xl", shape, List.of(guided, plain)));
            float[] g1 = engine.denoise(new DenoiseBatch("xl", shape, List.of(guided)))[0];
            float[] p1 = engine.denoise(new DenoiseBatch("xl", shape, List.of(plain)))[0];
            assertTrue(err(batch[0], g1) < 1e-5, "guided sample independent of the batch: " + err(batch[0], g1));
            assertTrue(err(batch[1], p1) < 1e-5, "unguided sample independent of the batch: " + err(batch[1], p1));
            float[] other = engine.denoise(new DenoiseBatch("xl", shape, List.of(plain.withLatent(x2, 20.5)
                    .withAdded(a))))[0];
            assertTrue(err(other, p1) > 1e-4, "the size conditioning changes the prediction: " + err(other, p1));

            ServeException missing = assertThrows(ServeException.class, () -> engine.denoise(new DenoiseBatch("xl", shape,
                    List.of(new DenoiseItem(x1, 900, c.get(0).context(), null, 1.0, null)))));
            assertTrue(missing.getMessage().contains("pooled text embedding and size conditioning"), missing.getMessage());
            float[][] img = engine.decode("xl", shape, List.of(x1));
            assertEquals(32 * 48 * 3, img[0].length);
        }
    }

    @Test
    void sd2ShapedModelConditionsOnThePenultimateLayerThroughLnFinal() throws Exception {
        Path file = RandomCheckpoint.ensure(tmp.resolve("sd2.safetensors"), SD2, DType.F32, 9);
        try (TfEngine engine = new TfEngine(Map.of("sd2", file))) {
            assertEquals(SD2, engine.config("sd2"));
            int[] ids = dev.sdserve.model.ClipTokenizer.get().tokenize("a lighthouse at dusk", SD2.textEncoder());
            float[] ctx = engine.encode("sd2", List.of(new EncodeItem("a lighthouse at dusk")))[0];
            float[] pen = engine.encodeTower("sd2", 0, new int[][]{ids}, new ClipTextNet.Request(2, true, false),
                    List.of(List.of())).hidden()[0];
            float[] last = engine.encodeTower("sd2", 0, new int[][]{ids}, ClipTextNet.Request.clipSkip(1),
                    List.of(List.of())).hidden()[0];
            assertArrayEquals(pen, ctx, 1e-6f);
            assertTrue(err(last, ctx) > 1e-3, "not the last layer");
            float[] neg = engine.encode("sd2", List.of(EncodeItem.negative("", 1, List.of())))[0];
            assertTrue(norm(neg) > 0, "SD 2.x encodes an empty negative prompt");
            ServeException skip = assertThrows(ServeException.class, () ->
                    engine.encode("sd2", List.of(new EncodeItem("x", 3, List.of()))));
            assertTrue(skip.getMessage().contains("1..2"), skip.getMessage());
            LatentShape shape = new LatentShape(4, 6, 4);
            float[] v = engine.denoise(new DenoiseBatch("sd2", shape, List.of(
                    new DenoiseItem(noise(shape.size(), 3), 500, ctx, neg, 7.5, null))))[0];
            assertEquals(shape.size(), v.length);
        }
        assertEquals(96, ModelConfigs.sd21v().unet().sampleSize());
    }

    static double norm(float[] x) {
        double s = 0;
        for (float v : x) {
            s += v * v;
        }
        return Math.sqrt(s);
    }
}
