package dev.sdserve.engine.tf;

import dev.sdserve.model.GoldenSet;

import dev.sdserve.engine.DenoiseBatch;
import dev.sdserve.engine.DenoiseItem;
import dev.sdserve.engine.LatentShape;
import dev.sdserve.engine.ModelInfo;
import dev.sdserve.job.ServeException;
import dev.sdserve.testutil.Shared;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class TfEngineTest {
    static GoldenSet g;
    static TfEngine engine;

    @BeforeAll
    static void open() throws Exception {
        Path dir = Shared.golden("sd15-tiny");
        g = GoldenSet.open(dir);
        // the tiny text encoder has 4 heads, which shapes cannot tell (no config JSON beside the file): golden.json's
        var cfg = g.config();
        engine = new TfEngine(Map.of("tiny", dir.resolve("tiny-sd15.safetensors")), p -> cfg);
    }

    @AfterAll
    static void close() {
        engine.close();
        g.close();
    }

    @Test
    void describeUnknownIsNotFound() {
        ServeException e = assertThrows(ServeException.class, () -> engine.describe("nope"));
        assertEquals(ServeException.Code.NOT_FOUND, e.code());
        assertTrue(e.getMessage().contains("nope"));
    }

    @Test
    void describeTiny() {
        ModelInfo i = engine.describe("tiny");
        assertEquals(4, i.latentChannels());
        assertEquals(8, i.vaeScale());
        assertEquals(77, i.contextTokens());
        assertEquals(32, i.contextDim());
        assertEquals(0.18215, i.scalingFactor(), 1e-12);
        assertEquals(128, i.defaultImageSize()); // sample_size 16 × 8
    }

    @Test
    void guidanceCombinesPerItemAndMatchesGolden() throws Exception {
        float[] x0 = g.row("unet.x", 0), x1 = g.row("unet.x", 1);
        float[] c0 = g.row("unet.ctx", 0), c1 = g.row("unet.ctx", 1);
        float[] ref0 = g.row("unet.eps", 0), ref1 = g.row("unet.eps", 1); // (x0, 999, c0), (x1, 250, c1)
        LatentShape shape = new LatentShape(4, 16, 16);
        // item A: x0 at 999 with cond c0 and uncond c1 (guided 7.5); item B: x1 at 250 with cond c1, unguided
        float[][] got = engine.denoise(new DenoiseBatch("tiny", shape, List.of(
                new DenoiseItem(x0, 999, c0, c1, 7.5, null),
                new DenoiseItem(x1, 250, c1, null, 1.0, null))));
        assertTrue(Conformance.err(got[1], ref1) < 1e-4, "unguided item = golden eps");
        // uncond prediction of item A, alone: (x0, 999, c1)
        float[] u = engine.denoise(new DenoiseBatch("tiny", shape, List.of(new DenoiseItem(x0, 999, c1, null, 1, null))))[0];
        float[] want = new float[ref0.length];
        for (int k = 0; k < want.length; k++) {
            want[k] = u[k] + 7.5f * (ref0[k] - u[k]);
        }
        assertTrue(Conformance.err(got[0], want) < 1e-4, "guided item = u + 7.5 (c − u) with c from the golden set");
        // guidance 1 with an uncond returns the conditional prediction
        float[] one = engine.denoise(new DenoiseBatch("tiny", shape, List.of(new DenoiseItem(x0, 999, c0, c1, 1.0, null))))[0];
        assertTrue(Conformance.err(one, ref0) < 1e-4);
        assertTrue(engine.stats().unetSamples.get() >= 5);
    }

    @Test
    void encodeTokenisesAndMatchesGolden() throws Exception {
        var cases = g.json().path("tokenizer");
        float[][] got = engine.encode("tiny", List.of(new dev.sdserve.engine.EncodeItem(cases.get(0).path("prompt").asText()),
                new dev.sdserve.engine.EncodeItem(cases.get(1).path("prompt").asText(), 2, List.of())));
        float[] last = g.tensor("te.last_hidden_state"), skip = g.tensor("te.penultimate_normed");
        int per = last.length / 2;
        assertTrue(Conformance.err(got[0], java.util.Arrays.copyOfRange(last, 0, per)) < 1e-4, "case 0, last layer");
        assertTrue(Conformance.err(got[1], java.util.Arrays.copyOfRange(skip, per, 2 * per)) < 1e-4, "case 1, clip skip 2");
    }

    @Test
    void guideFormula() {
        assertArrayEquals(new float[]{1 + 2 * (3 - 1), -1 + 2 * (1 - -1)},
                TfEngine.guide(new float[]{1, -1}, new float[]{3, 1}, 2), 0f);
    }

    @Test
    void decodeGivesImagesInUnitRange() throws Exception {
        float[][] img = engine.decode("tiny", new LatentShape(4, 16, 16), List.of(g.row("vae.z", 0)));
        float[] raw = g.tensor("vae.decoded"); // NCHW [1,3,128,128] in [-1, 1]
        assertEquals(128 * 128 * 3, img[0].length);
        double maxDiff = 0;
        for (int y = 0; y < 128; y++) {
            for (int x = 0; x < 128; x++) {
                for (int c = 0; c < 3; c++) {
                    float want = Math.min(1f, Math.max(0f, raw[(c * 128 + y) * 128 + x] / 2f + 0.5f));
                    maxDiff = Math.max(maxDiff, Math.abs(img[0][(y * 128 + x) * 3 + c] - want));
                }
            }
        }
        assertTrue(maxDiff < 1e-4, "max diff " + maxDiff);
    }

    @Test
    void encodeImageTakesHwcUnitRange() throws Exception {
        float[] nchw = g.row("vae.image", 0);
        float[] hwc = new float[nchw.length];
        for (int c = 0; c < 3; c++) {
            for (int y = 0; y < 128; y++) {
                for (int x = 0; x < 128; x++) {
                    hwc[(y * 128 + x) * 3 + c] = (nchw[(c * 128 + y) * 128 + x] + 1f) / 2f;
                }
            }
        }
        float[][] z = engine.encodeImage("tiny", new LatentShape(4, 16, 16), List.of(hwc));
        double e = Conformance.err(z, g.tensor("vae.encoded_mean_scaled"));
        assertTrue(e < 1e-4, "rel err " + e);
    }

    @Test
    void latentSizeNotMultipleOfEightIsRejected() {
        assertThrows(IllegalArgumentException.class, () -> engine.denoise(new DenoiseBatch("tiny",
                new LatentShape(4, 12, 16), List.of(new DenoiseItem(new float[4 * 12 * 16], 1, new float[77 * 32], null, 1, null)))));
    }
}
