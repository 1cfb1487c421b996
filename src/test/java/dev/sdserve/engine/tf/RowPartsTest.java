package dev.sdserve.engine.tf;

import dev.sdserve.engine.AddedConditioning;
import dev.sdserve.engine.SizeConditioning;
import dev.sdserve.model.GoldenSet;
import dev.sdserve.model.UNetConfig;
import dev.sdserve.model.VaeConfig;
import dev.sdserve.testutil.Props;
import dev.sdserve.testutil.Shared;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.tensorflow.Graph;
import org.tensorflow.Operand;
import org.tensorflow.Result;
import org.tensorflow.Session;
import org.tensorflow.ndarray.Shape;
import org.tensorflow.ndarray.buffer.DataBuffers;
import org.tensorflow.op.Ops;
import org.tensorflow.op.core.Placeholder;
import org.tensorflow.types.TFloat32;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Networks in row parts ({@link VaeNet#rowParts}, {@link UNetNet#rowParts}): group norms over parts against the
 * whole, the choice of parts, whole VAE decodes in 2 and 4 parts against the plain graph on the tiny golden model at
 * latent sizes where the decoder's levels use im2col, Winograd F(2,3) and F(4,3), and the UNet (SD 1.5; SDXL's added
 * conditioning and deeper transformers) at batch 1 and 3.
 */
class RowPartsTest {
    static TinyThreadedModel tiny;
    static GoldenSet g;
    static TfModel model;

    @BeforeAll
    static void load() throws Exception {
        tiny = TinyThreadedModel.open("tiny-vae-rows", 4); // a thread per part, up to 4
        g = tiny.golden;
        model = tiny.model;
    }

    @AfterAll
    static void close() {
        if (tiny != null) {
            tiny.close();
        }
    }

    @Test
    void unetInRowPartsComputesWhatTheWholeGraphComputes() throws Exception {
        // SD 2.x differs from SD 1.5 here only in its projections' layout, which both store as [out, in]; SDXL adds
        // the added conditioning, no attention at the first level and deeper transformers
        for (String set : new String[]{"sd15-tiny", "sdxl-tiny"}) {
            Path dir = Shared.golden(set);
            try (GoldenSet gs = GoldenSet.open(dir);
                 TfModel m = TfModel.load("rows-" + set, dir.resolve(set.equals("sd15-tiny") ? "tiny-sd15.safetensors"
                         : "tiny-sdxl.safetensors"), gs.config())) {
                UNetConfig u = gs.config().unet();
                Random rnd = new Random(set.hashCode());
                int unit = 4 << (u.levels() - 1); // 4 parts, each at least 2 rows at the deepest level
                int tokens = 77;
                boolean first = set.equals("sd15-tiny"); // the other families: one size, 2 parts (test time)
                for (int[] size : first ? new int[][]{{2 * unit, 2 * unit}, {2 * unit, unit + unit / 2}}
                        : new int[][]{{2 * unit, unit + unit / 2}}) {
                    int h = size[0], w = size[1];
                    int before = m.graphCount();
                    for (int batch : new int[]{1, 3}) {
                        List<float[]> x = new ArrayList<>(), ctx = new ArrayList<>();
                        List<AddedConditioning> added = u.hasAddedConditioning() ? new ArrayList<>() : null;
                        float[] t = new float[batch];
                        for (int b = 0; b < batch; b++) {
                            x.add(gaussian(rnd, u.inChannels() * h * w, 1));
                            ctx.add(gaussian(rnd, tokens * u.crossAttentionDim(), 1));
                            t[b] = 999 - 400 * b;
                            if (added != null) {
                                added.add(new AddedConditioning(gaussian(rnd, u.pooledDim(), 1),
                                        new SizeConditioning(h * 8, w * 8, 0, 0, h * 8, w * 8)));
                            }
                        }
                        float[][] whole = Props.with("sdserve.unet.rowParts", "1",
                                () -> m.unet(x, t, ctx, null, added, h, w, Map.of(), null));
                        for (String parts : first ? new String[]{"2", "4"} : new String[]{"2"}) {
                            float[][] got = Props.with("sdserve.unet.rowParts", parts,
                                    () -> m.unet(x, t, ctx, null, added, h, w, Map.of(), null));
                            assertClose(whole, got, set + " UNet " + h + "x" + w + " batch " + batch + " in " + parts
                                    + " row parts");
                        }
                    }
                    assertEquals(before + (first ? 3 : 2), m.graphCount(),
                            set + ": one graph per number of parts (any batch)");
                }
            }
        }
    }

    @Test
    void unetRowPartsOnlyWhenAskedForThePlainGraphWhereTheyDivide() {
        UNetConfig u = g.config().unet();
        int unit = 2 << (u.levels() - 1);
        assertEquals(1, UNetNet.rowParts(u, 2 * unit, 2 * unit, 1, true, false), "off by default");
        Props.with("sdserve.unet.rowParts", "2", () -> {
            assertEquals(2, UNetNet.rowParts(u, 2 * unit, 2 * unit, 1, true, false));
            assertEquals(1, UNetNet.rowParts(u, 2 * unit, 2 * unit, 2, true, false), "lanes take the batch");
            assertEquals(1, UNetNet.rowParts(u, 2 * unit, 2 * unit, 1, false, false), "DeepCache, merging, LoRA terms");
            assertEquals(1, UNetNet.rowParts(u, 2 * unit, 2 * unit, 1, true, true), "half precision");
            assertEquals(1, UNetNet.rowParts(u, unit, 2 * unit, 1, true, false), "one row per part at the deepest level");
            assertEquals(1, UNetNet.rowParts(u, 2 * unit + 2, 2 * unit, 1, true, false), "height not divisible");
            assertEquals(1, Props.with("sdserve.lanes.anySize", "false", () -> UNetNet.rowParts(u, 2 * unit, 2 * unit,
                    1, true, false)), "a tiny UNet is below the work that pays");
            return null;
        });
    }

    private static float[] gaussian(Random rnd, int n, double sd) {
        float[] out = new float[n];
        for (int i = 0; i < n; i++) {
            out[i] = (float) (rnd.nextGaussian() * sd);
        }
        return out;
    }

    @Test
    void groupNormOverPartsIsTheGroupNormOfTheWhole() {
        Random rnd = new Random(7);
        int n = 2, h = 12, w = 5, c = 32, groups = 8;
        float[] data = new float[n * h * w * c];
        for (int i = 0; i < data.length; i++) {
            data[i] = (float) (rnd.nextGaussian() * 3 + 1.5); // an offset mean: a one-pass variance would lose digits
        }
        float[] gamma = new float[c], beta = new float[c];
        for (int i = 0; i < c; i++) {
            gamma[i] = 0.5f + rnd.nextFloat();
            beta[i] = rnd.nextFloat() - 0.5f;
        }
        for (boolean silu : new boolean[]{false, true}) {
            for (int[] cuts : new int[][]{{5, 7}, {3, 3, 6}}) { // unequal parts too
                try (Graph graph = new Graph(); Session s = new Session(graph, SessionConfigs.cpu(1));
                     TFloat32 fed = TFloat32.tensorOf(Shape.of(n, h, w, c), DataBuffers.of(data, true, false))) {
                    Ops tf = Ops.create(graph);
                    Placeholder<TFloat32> x = tf.placeholder(TFloat32.class, Placeholder.shape(Shape.of(n, h, w, c)));
                    Operand<TFloat32> ga = tf.constant(gamma), be = tf.constant(beta);
                    Operand<TFloat32> whole = GroupNorm.norm(tf, x, ga, be, groups, 1e-6, silu);
                    List<Operand<TFloat32>> parts = new ArrayList<>();
                    int r0 = 0;
                    for (int rows : cuts) {
                        parts.add(tf.slice(x, tf.constant(new int[]{0, r0, 0, 0}), tf.constant(new int[]{n, rows, w, c})));
                        r0 += rows;
                    }
                    Operand<TFloat32> joined = tf.concat(GroupNorm.normParts(tf, parts, ga, be, groups, 1e-6, silu),
                            tf.constant(1));
                    try (Result r = s.runner().feed(x, fed).fetch(whole).fetch(joined).run()) {
                        float[] a = values((TFloat32) r.get(0)), b = values((TFloat32) r.get(1));
                        assertEquals(a.length, b.length);
                        double worst = 0;
                        for (int i = 0; i < a.length; i++) {
                            worst = Math.max(worst, Math.abs(a[i] - b[i]));
                        }
                        assertTrue(worst < 2e-6, "silu " + silu + ", parts " + java.util.Arrays.toString(cuts)
                                + ": largest difference " + worst);
                    }
                }
            }
        }
    }

    @Test
    void vaeRowPartsOnlyWhereTheyCanSplitAndPay() {
        VaeConfig sd = new VaeConfig(3, 3, 4, List.of(128, 256, 512, 512), 2, 32, 0.18215);
        assertEquals(2, VaeNet.rowParts(sd, 64, 64, false), "SD's VAE at a 512² image");
        assertEquals(1, VaeNet.rowParts(sd, 65, 64, false), "an odd latent height stays whole");
        assertEquals(1, VaeNet.rowParts(sd, 64, 64, true), "half precision stays whole");
        assertEquals(1, Props.with("sdserve.vae.rowParts", "1", () -> VaeNet.rowParts(sd, 64, 64, false)),
                "-Dsdserve.vae.rowParts=1 turns them off");
        assertEquals(1, Props.with("sdserve.threads", "1", () -> VaeNet.rowParts(sd, 64, 64, false)),
                "one thread: no parts");
        Props.with("sdserve.lanes.anySize", "false", () -> {
            assertEquals(2, VaeNet.rowParts(sd, 64, 64, false), "512²: the work pays");
            assertEquals(2, VaeNet.rowParts(sd, 128, 128, false), "1024²");
            assertEquals(1, VaeNet.rowParts(sd, 32, 32, false), "256²: below the work that pays");
            return null;
        });
        VaeConfig small = new VaeConfig(3, 3, 4, List.of(32, 64, 64), 1, 32, 0.18215);
        assertEquals(2, VaeNet.rowParts(small, 16, 16, false), "anySize (this test's setting)");
    }

    @Test
    void decodeInRowPartsComputesWhatTheWholeGraphComputes() {
        Random rnd = new Random(11);
        int lc = g.config().vae().latentChannels();
        // 8×8: every level im2col; 16×12: F(2,3) from the first upsampling; 32×32: F(4,3) there (the tiny VAE's
        // top level is 4× the latent side)
        for (int[] size : new int[][]{{8, 8}, {16, 12}, {32, 32}}) {
            int lh = size[0], lw = size[1];
            List<float[]> z = new ArrayList<>();
            for (int b = 0; b < 2; b++) {
                float[] zi = new float[lc * lh * lw];
                for (int i = 0; i < zi.length; i++) {
                    zi[i] = (float) rnd.nextGaussian();
                }
                z.add(zi);
            }
            int before = model.graphCount();
            float[][] whole = Props.with("sdserve.vae.rowParts", "1", () -> model.decodeRaw(z, lh, lw));
            for (String parts : new String[]{"2", "4"}) {
                if (lh % Integer.parseInt(parts) != 0 || lh / Integer.parseInt(parts) < 2) {
                    continue;
                }
                float[][] got = Props.with("sdserve.vae.rowParts", parts, () -> model.decodeRaw(z, lh, lw));
                assertClose(whole, got, lh + "x" + lw + " in " + parts + " row parts");
            }
            assertEquals(before + (lh / 4 >= 2 ? 3 : 2), model.graphCount(), "one graph per number of parts");
        }
    }

    private static void assertClose(float[][] ref, float[][] got, String what) {
        assertEquals(ref.length, got.length, what + ": images");
        for (int b = 0; b < ref.length; b++) {
            assertEquals(ref[b].length, got[b].length, what + ": image " + b + " size");
            double num = 0, den = 0, worst = 0;
            for (int i = 0; i < ref[b].length; i++) {
                double d = ref[b][i] - got[b][i];
                num += d * d;
                den += (double) ref[b][i] * ref[b][i];
                worst = Math.max(worst, Math.abs(d));
            }
            double rel = Math.sqrt(num / Math.max(den, 1e-30));
            assertTrue(rel < 1e-5, what + ": image " + b + " relative difference " + rel + " (largest " + worst + ")");
        }
    }

    private static float[] values(TFloat32 t) {
        float[] out = new float[Math.toIntExact(t.shape().size())];
        t.asRawTensor().data().asFloats().read(out);
        return out;
    }
}
