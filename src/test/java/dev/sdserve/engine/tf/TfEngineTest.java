package dev.sdserve.engine.tf;


import dev.sdserve.engine.DenoiseBatch;
import dev.sdserve.engine.DenoiseItem;
import dev.sdserve.engine.LatentShape;
import dev.sdserve.engine.ModelInfo;
import dev.sdserve.job.ServeException;
import org.junit.jupiter.api.Test;

import dev.sdserve.engine.EncodeItem;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import java.util.ArrayList;
import java.util.SplittableRandom;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class TfEngineTest extends TinyGoldenEngine {
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
    void latentSizesNotDivisibleByTheUNetsDownsamplingRun() {
        // 12x16 halves to 6x8, 3x4, then 2x2 (stride-2 convs round up); the up path resizes back to each skip's size,
        // as diffusers does (an A1111 width of 520 gives such a latent, 65).
        LatentShape shape = new LatentShape(4, 12, 20);
        java.util.Random rnd = new java.util.Random(3);
        float[] x = new float[4 * 12 * 20];
        float[] c = new float[77 * 32];
        for (int i = 0; i < x.length; i++) {
            x[i] = (float) rnd.nextGaussian();
        }
        for (int i = 0; i < c.length; i++) {
            c[i] = (float) rnd.nextGaussian();
        }
        float[][] eps = engine.denoise(new DenoiseBatch("tiny", shape, List.of(new DenoiseItem(x, 500, c, null, 1, null),
                new DenoiseItem(x, 10, c, null, 1, null))));
        assertEquals(x.length, eps[0].length);
        double diff = 0;
        for (int i = 0; i < x.length; i++) {
            assertTrue(Float.isFinite(eps[0][i]), "finite at " + i);
            diff += Math.abs(eps[0][i] - eps[1][i]);
        }
        assertTrue(diff > 0, "the timestep changes the output");
        assertThrows(IllegalArgumentException.class, () -> engine.denoise(new DenoiseBatch("tiny",
                new LatentShape(4, 0, 16), List.of(new DenoiseItem(new float[0], 1, c, null, 1, null)))));
    }


    /** The texts of one schedule are encoded together: padded to one chunk count, emphasis means shared. */
    @Test
    void aGroupOfTextsSharesItsChunkCount() {
        String longText = words(100);
        List<String> group = List.of("a red house", longText, longText);
        float[][] r = engine.encode("tiny", List.of(new EncodeItem("a red house", 1, List.of(), group),
                new EncodeItem(longText, 1, List.of(), group), new EncodeItem("a red house"), new EncodeItem(longText)));
        assertEquals(154 * 32, r[0].length); // padded to the group's two chunks
        assertEquals(77 * 32, r[2].length);  // alone: one chunk
        // no weights in the group: its first chunk is the text's own encoding, its second the empty prompt's
        assertTrue(Conformance.err(java.util.Arrays.copyOf(r[0], 77 * 32), r[2]) < 1e-6);
        float[] empty = engine.encode("tiny", List.of(new EncodeItem("")))[0];
        assertTrue(Conformance.err(java.util.Arrays.copyOfRange(r[0], 77 * 32, 154 * 32), empty) < 1e-6);
        assertTrue(Conformance.err(r[1], r[3]) < 1e-6);
        // with a weight in the group, the shared mean changes the other text's chunk too (A1111's batch mean)
        List<String> weighted = List.of("a red house", "a (blue:1.8) house");
        float[] shared = engine.encode("tiny", List.of(new EncodeItem("a red house", 1, List.of(), weighted)))[0];
        assertTrue(Conformance.err(shared, r[2]) > 1e-6);
    }

    // ---------------------------------------------------------------- long prompts in shared batches

    static String words(int n) {
        String[] w = {"red", "house", "tree", "river", "stone", "cloud", "light", "dark"};
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < n; i++) {
            sb.append(w[i % w.length]).append(i % 7 == 6 ? ", " : " ");
        }
        return sb.toString().strip();
    }

    /** Samples with 77-, 154- and 231-token contexts in one UNet batch give their solo results. */
    @ParameterizedTest
    @EnumSource(MixedContexts.Mode.class)
    void mixedLengthsInOneBatchEqualTheirSoloRuns(MixedContexts.Mode mode) {
        engine.mixedContexts(mode.name());
        float[][] te = engine.encode("tiny", List.of(new EncodeItem("a (red:1.2) house"), new EncodeItem(words(100)),
                new EncodeItem("a cat BREAK a dog BREAK a (bird:0.8)"), new EncodeItem("")));
        assertEquals(77 * 32, te[0].length);
        assertEquals(154 * 32, te[1].length);
        assertEquals(231 * 32, te[2].length);
        LatentShape shape = new LatentShape(4, 16, 16);
        SplittableRandom rnd = new SplittableRandom(7);
        List<DenoiseItem> items = new ArrayList<>();
        float[][] pairs = {te[0], te[3], te[1], te[3], te[3], te[1], te[2], te[0], te[1], null};
        for (int i = 0; i < pairs.length; i += 2) {
            float[] x = new float[shape.size()];
            for (int k = 0; k < x.length; k++) {
                x[k] = (float) rnd.nextGaussian();
            }
            items.add(new DenoiseItem(x, 100 + 200 * i, pairs[i], pairs[i + 1], 7.5, null));
        }
        long calls0 = engine.stats().denoiseCalls.get();
        float[][] together = engine.denoise(new DenoiseBatch("tiny", shape, items));
        assertEquals(1, engine.stats().denoiseCalls.get() - calls0);
        for (int i = 0; i < items.size(); i++) {
            float[] solo = engine.denoise(new DenoiseBatch("tiny", shape, List.of(items.get(i))))[0];
            double err = Conformance.err(together[i], solo);
            assertTrue(err < 1e-4, mode + " item " + i + ": relative error " + err);
        }
        engine.mixedContexts(MixedContexts.DEFAULT.name());
    }
}
