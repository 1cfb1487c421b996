package dev.sdserve.engine.tf;

import dev.sdserve.testutil.Props;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.tensorflow.Operand;
import org.tensorflow.Result;
import org.tensorflow.ndarray.Shape;
import org.tensorflow.ndarray.buffer.DataBuffers;
import org.tensorflow.op.core.Placeholder;
import org.tensorflow.types.TFloat32;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;

/**
 * A text tower's q, k and v projections as one product ({@link Nn#projections}, {@link Nn#packedProjections}): the
 * weights stacked and held transposed with the attention's scale folded into q's rows
 * ({@link KernelTransformCache.Fused}). Against a naive loop: CLIP's three weights and OpenCLIP's one; the call
 * reads the held copies; a replaced part is stacked again; a run overriding one part (a LoRA merge) stacks in the
 * graph; LoRA terms scale with their output; without budget or with {@code sdserve.fusedProjections=off} the
 * separate products give the same values.
 */
class FusedProjectionsTest {
    private static final int IN = 12, OUT = 8, ROWS = 7;
    private static final float SCALE = 0.25f;
    private final Random random = new Random(5);
    private Weights w;
    private final float[][] weight = new float[3][], bias = new float[3][];
    private static final String[] NAMES = {"q", "k", "v"};

    private float[] rnd(int n) {
        return dev.sdserve.testutil.Floats.gaussian(random, n);
    }

    @BeforeEach
    void weights() {
        w = Weights.empty("fused-projections-test");
        float[] all = new float[3 * OUT * IN];
        float[] allBias = new float[3 * OUT];
        for (int i = 0; i < 3; i++) {
            weight[i] = rnd(OUT * IN);
            bias[i] = rnd(OUT);
            w.put(NAMES[i] + ".weight", new long[]{OUT, IN}, weight[i].clone());
            w.put(NAMES[i] + ".bias", new long[]{OUT}, bias[i].clone());
            System.arraycopy(weight[i], 0, all, i * OUT * IN, OUT * IN);
            System.arraycopy(bias[i], 0, allBias, i * OUT, OUT);
        }
        w.put("in_proj_weight", new long[]{3 * OUT, IN}, all); // OpenCLIP's fused layout of the same weights
        w.put("in_proj_bias", new long[]{3 * OUT}, allBias);
    }

    @AfterEach
    void close() {
        w.close();
    }

    private static final List<String> CLIP_W = List.of("q.weight", "k.weight", "v.weight");
    private static final List<String> CLIP_B = List.of("q.bias", "k.bias", "v.bias");

    /** Outputs q, k, v of the input [ROWS, IN] (OpenCLIP's layout when {@code open}), and "p" the packed form. */
    private TfGraph graph(boolean open, LinearHook hook) {
        return TfGraph.build("qkv", w, b -> {
            b.nn.textTower(true);
            b.nn.linearHook(hook);
            var in = b.input("x", b.tf.placeholder(TFloat32.class, Placeholder.shape(Shape.of(1, ROWS, IN))));
            List<String> ws = open ? List.of("in_proj_weight") : CLIP_W;
            List<String> bs = open ? List.of("in_proj_bias") : CLIP_B;
            List<Operand<TFloat32>> qkv = b.nn.projections(in, ws, bs, 3, SCALE);
            for (int i = 0; i < 3; i++) {
                b.output(NAMES[i], qkv.get(i));
            }
            Operand<TFloat32> packed = b.nn.packedProjections(in, ws, bs, 3, SCALE);
            b.output("p", packed != null ? packed : b.tf.concat(qkv, b.tf.constant(2)));
        });
    }

    private static float[][] run(TfGraph g, float[] x, Map<String, TFloat32> overrides) {
        try (TFloat32 t = TFloat32.tensorOf(Shape.of(1, ROWS, IN), d -> d.copyFrom(DataBuffers.of(x, true, false)));
             Result r = g.run(Map.of("x", t), List.of("q", "k", "v", "p"), overrides)) {
            float[][] out = new float[4][];
            for (int i = 0; i < 4; i++) {
                out[i] = TfModel.split((TFloat32) r.get(i), 1)[0];
            }
            return out;
        }
    }

    /** x · Wᵀ + b, times s, as a loop in double. */
    private static float[] naive(float[] x, float[] wt, float[] b, double s) {
        float[] y = new float[ROWS * OUT];
        for (int r = 0; r < ROWS; r++) {
            for (int o = 0; o < OUT; o++) {
                double acc = b[o];
                for (int i = 0; i < IN; i++) {
                    acc += (double) x[r * IN + i] * wt[o * IN + i];
                }
                y[r * OUT + o] = (float) (acc * s);
            }
        }
        return y;
    }

    private static void near(float[] want, float[] got) {
        assertEquals(want.length, got.length);
        for (int i = 0; i < want.length; i++) {
            assertEquals(want[i], got[i], 1e-5 * (1 + Math.abs(want[i])), "element " + i);
        }
    }

    /** q (scaled), k, v as the loop computes them, and the packed [ROWS, 3·OUT] form checked against them. */
    private void expect(float[] x, float[][] got, float[][] wts) {
        for (int i = 0; i < 3; i++) {
            near(naive(x, wts[i], bias[i], i == 0 ? SCALE : 1), got[i]);
        }
        for (int r = 0; r < ROWS; r++) {
            for (int i = 0; i < 3; i++) {
                for (int o = 0; o < OUT; o++) {
                    assertEquals(got[i][r * OUT + o], got[3][r * 3 * OUT + i * OUT + o], 1e-6,
                            "packed row " + r + " part " + i + " column " + o);
                }
            }
        }
    }

    @Test
    void clipsThreeWeightsBecomeOneHeldProductWithTheScaleFolded() {
        float[] x = rnd(ROWS * IN);
        try (TfGraph g = graph(false, null)) {
            assertEquals(4L * 3 * OUT * (IN + 1), w.transforms().transposed(KernelTransformCache.Pool.TEXT),
                    "the stacked weight and bias promised at build, nothing else");
            expect(x, run(g, x, Map.of()), weight);
            assertEquals(2, w.transforms().size(), "one stacked weight, one stacked bias");
            TFloat32 held = w.transforms().get(KernelTransformCache.Key.fused(
                    new KernelTransformCache.Fused(CLIP_W, OUT, SCALE), KernelTransformCache.Pool.TEXT), 1L << 30);
            assertNotNull(held);
            assertEquals(Shape.of(IN, 3 * OUT), held.shape(), "held [in, 3·out]");
            assertEquals(weight[0][3 * IN + 2] * SCALE, held.getFloat(2, 3), "q's W[3][2] scaled, at [2][3]");
            assertEquals(weight[1][3 * IN + 2], held.getFloat(2, OUT + 3), "k's W[3][2] at [2][out + 3]");
        }
    }

    @Test
    void openClipsFusedWeightSplitsTheSameWay() {
        float[] x = rnd(ROWS * IN);
        try (TfGraph g = graph(true, null)) {
            expect(x, run(g, x, Map.of()), weight);
            assertEquals(2, w.transforms().size());
        }
    }

    @Test
    void theCallReadsTheHeldCopyAndAReplacedPartIsStackedAgain() {
        float[] x = rnd(ROWS * IN);
        try (TfGraph g = graph(false, null)) {
            float[][] first = run(g, x, Map.of());
            TFloat32 held = w.transforms().get(KernelTransformCache.Key.fused(
                    new KernelTransformCache.Fused(CLIP_W, OUT, SCALE), KernelTransformCache.Pool.TEXT), 1L << 30);
            held.setFloat(held.getFloat(0, OUT) + 100f, 0, OUT); // poison one entry of k's part
            assertFalse(java.util.Arrays.equals(first[1], run(g, x, Map.of())[1]), "the call used the held copy");
            float[] k2 = rnd(OUT * IN);
            w.put("k.weight", new long[]{OUT, IN}, k2.clone());
            expect(x, run(g, x, Map.of()), new float[][]{weight[0], k2, weight[2]});
        }
    }

    @Test
    void aRunOverridingOnePartStacksInTheGraph() {
        float[] x = rnd(ROWS * IN);
        float[] v2 = rnd(OUT * IN);
        try (TfGraph g = graph(false, null);
             TFloat32 override = TFloat32.tensorOf(Shape.of(OUT, IN), d -> d.copyFrom(DataBuffers.of(v2, true, false)))) {
            expect(x, run(g, x, Map.of()), weight);
            expect(x, run(g, x, Map.of("v.weight", override)), new float[][]{weight[0], weight[1], v2});
            expect(x, run(g, x, Map.of()), weight);
        }
    }

    @Test
    void loraTermsAreAddedAndScaledWithTheirOutput() {
        float[] x = rnd(ROWS * IN);
        float[] e = rnd(OUT * IN);
        // a term x · Eᵀ on q and on v (what a low-rank LoRA adds before the bias)
        LinearHook hook = (nn, key, x2, dims, out) -> key.equals("q.weight") || key.equals("v.weight")
                ? nn.tf().linalg.matMul(x2, nn.tf().constant(to2d(e)), org.tensorflow.op.linalg.MatMul.transposeB(true)) : null;
        float[] qe = new float[OUT * IN], ve = new float[OUT * IN];
        for (int i = 0; i < qe.length; i++) {
            qe[i] = weight[0][i] + e[i];
            ve[i] = weight[2][i] + e[i];
        }
        try (TfGraph g = graph(false, hook)) {
            float[][] got = run(g, x, Map.of());
            for (int i = 0; i < 3; i++) {
                near(naive(x, new float[][]{qe, weight[1], ve}[i], bias[i], i == 0 ? SCALE : 1), got[i]);
            }
        }
    }

    private static float[][] to2d(float[] e) {
        float[][] m = new float[OUT][IN];
        for (int o = 0; o < OUT; o++) {
            System.arraycopy(e, o * IN, m[o], 0, IN);
        }
        return m;
    }

    @Test
    void withoutBudgetOrSwitchedOffTheSeparateProductsGiveTheSameValues() {
        float[] x = rnd(ROWS * IN);
        float[][] fused;
        try (TfGraph g = graph(false, null)) {
            fused = run(g, x, Map.of());
        }
        for (String[] setting : new String[][]{{"sdserve.textTransposeCacheMb", "0"},
                {"sdserve.fusedProjections", "off"}}) {
            w.transforms().close();
            for (boolean open : new boolean[]{false, true}) {
                float[][] got = Props.with(setting[0], setting[1], () -> {
                    try (TfGraph g = graph(open, null)) {
                        return run(g, x, Map.of());
                    }
                });
                expect(x, got, weight);
                for (int i = 0; i < 3; i++) {
                    near(fused[i], got[i]);
                }
            }
            assertNull(w.transforms().get(KernelTransformCache.Key.fused(
                    new KernelTransformCache.Fused(CLIP_W, OUT, SCALE), KernelTransformCache.Pool.TEXT), 0),
                    setting[0] + ": no stacked copy");
        }
    }

    @Test
    void outsideATextTowerTheProjectionsStaySeparate() {
        float[] x = rnd(ROWS * IN);
        try (TfGraph g = TfGraph.build("image", w, b -> {
            var in = b.input("x", b.tf.placeholder(TFloat32.class, Placeholder.shape(Shape.of(1, ROWS, IN))));
            assertNull(b.nn.packedProjections(in, CLIP_W, CLIP_B, 3, SCALE));
            List<Operand<TFloat32>> qkv = new ArrayList<>(b.nn.projections(in, CLIP_W, CLIP_B, 3, SCALE));
            for (int i = 0; i < 3; i++) {
                b.output(NAMES[i], qkv.get(i));
            }
            b.output("p", b.tf.concat(qkv, b.tf.constant(2)));
        })) {
            expect(x, run(g, x, Map.of()), weight);
            assertEquals(0, w.transforms().transposed(KernelTransformCache.Pool.TEXT));
        }
    }
}
