package dev.sdserve.engine.tf;

import dev.sdserve.testutil.Props;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.tensorflow.Result;
import org.tensorflow.ndarray.Shape;
import org.tensorflow.ndarray.buffer.DataBuffers;
import org.tensorflow.op.core.Placeholder;
import org.tensorflow.types.TFloat32;

import java.util.List;
import java.util.Map;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Linears whose weight is held transposed ({@code [in, out]}, {@link WeightBinder#transposed}): they compute
 * {@code x · Wᵀ + b} as a naive loop does and as the {@code [out, in]} forms do; the call really reads the held copy;
 * a replaced weight is transposed again; a weight override (a LoRA merge) is transposed in the graph; which linears
 * take the form (narrowing ones, every one after {@link Nn#textTower}); the budget is respected, promised
 * at graph build.
 */
class TransposedLinearTest {
    /** A narrowing linear (in &gt; out) and a widening one. */
    private static final int IN = 12, OUT = 5, WIDE = 20, ROWS = 7;
    private final Random random = new Random(11);
    private Weights w;
    private float[] narrow, narrowBias, wide, wideBias;

    private float[] rnd(int n) {
        return dev.sdserve.testutil.Floats.gaussian(random, n);
    }

    @BeforeEach
    void weights() {
        w = Weights.empty("transposed-linear-test");
        narrow = rnd(OUT * IN);
        narrowBias = rnd(OUT);
        wide = rnd(WIDE * IN);
        wideBias = rnd(WIDE);
        w.put("n.weight", new long[]{OUT, IN}, narrow.clone());
        w.put("n.bias", new long[]{OUT}, narrowBias.clone());
        w.put("u.weight", new long[]{WIDE, IN}, wide.clone());
        w.put("u.bias", new long[]{WIDE}, wideBias.clone());
    }

    @AfterEach
    void close() {
        w.close();
    }

    /** y = linear "n" (narrowing) and z = linear "u" (widening) of the same input [ROWS, IN]. */
    private TfGraph graph(boolean textTower) {
        return TfGraph.build("linears", w, b -> {
            b.nn.textTower(textTower);
            var in = b.input("x", b.tf.placeholder(TFloat32.class, Placeholder.shape(Shape.of(ROWS, IN))));
            b.output("y", b.nn.linear(in, "n", true));
            b.output("z", b.nn.linear(in, "u", true));
        });
    }

    private static float[][] run(TfGraph g, float[] x, Map<String, TFloat32> overrides) {
        try (TFloat32 t = TFloat32.tensorOf(Shape.of(ROWS, IN), d -> d.copyFrom(DataBuffers.of(x, true, false)));
             Result r = g.run(Map.of("x", t), List.of("y", "z"), overrides)) {
            return new float[][]{TfModel.split((TFloat32) r.get(0), 1)[0], TfModel.split((TFloat32) r.get(1), 1)[0]};
        }
    }

    /** x [ROWS, IN] · Wᵀ + b with W [out, IN], as a loop in double. */
    private static float[] naive(float[] x, float[] weight, float[] bias, int out) {
        float[] y = new float[ROWS * out];
        for (int r = 0; r < ROWS; r++) {
            for (int o = 0; o < out; o++) {
                double s = bias[o];
                for (int i = 0; i < IN; i++) {
                    s += (double) x[r * IN + i] * weight[o * IN + i];
                }
                y[r * out + o] = (float) s;
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

    private long transposedBytes() {
        return w.transforms().transposedBytes();
    }

    @Test
    void aNarrowingLinearTakesItsWeightTransposedAndComputesTheSameProduct() {
        float[] x = rnd(ROWS * IN);
        float[][] old = Props.with("sdserve.linearWt", "none", () -> {
            try (TfGraph g = graph(false)) {
                return run(g, x, Map.of());
            }
        });
        assertEquals(0, transposedBytes(), "linearWt=none: no copy");
        try (TfGraph g = graph(false)) {
            assertEquals(4L * IN * OUT, transposedBytes(), "the narrowing weight's copy is promised at build");
            float[][] got = run(g, x, Map.of());
            near(naive(x, narrow, narrowBias, OUT), got[0]);
            near(naive(x, wide, wideBias, WIDE), got[1]);
            near(old[0], got[0]);
            near(old[1], got[1]);
            assertEquals(1, w.transforms().size(), "only the narrowing linear's weight is held transposed");
            assertEquals(4L * IN * OUT, transposedBytes());
        }
    }

    @Test
    void everyLinearOfATextTowerInItsOwnPoolAndTheLinearWtSetting() {
        float[] x = rnd(ROWS * IN);
        try (TfGraph g = graph(true)) {
            float[][] got = run(g, x, Map.of());
            near(naive(x, narrow, narrowBias, OUT), got[0]);
            near(naive(x, wide, wideBias, WIDE), got[1]);
            assertEquals(2, w.transforms().size());
            assertEquals(4L * IN * (OUT + WIDE), w.transforms().transposed(KernelTransformCache.Pool.TEXT));
            assertEquals(0, w.transforms().transposed(KernelTransformCache.Pool.IMAGE));
        }
        w.transforms().close();
        Props.with("sdserve.textTransposeCacheMb", "0", () -> {
            try (TfGraph text = graph(true); TfGraph image = graph(false)) {
                near(naive(x, narrow, narrowBias, OUT), run(text, x, Map.of())[0]);
                near(naive(x, narrow, narrowBias, OUT), run(image, x, Map.of())[0]);
                assertEquals(0, w.transforms().transposed(KernelTransformCache.Pool.TEXT), "no text budget");
                assertEquals(4L * IN * OUT, w.transforms().transposed(KernelTransformCache.Pool.IMAGE),
                        "the image networks' budget is their own");
            }
            return null;
        });
        w.transforms().close();
        Props.with("sdserve.linearWt", "narrowing", () -> {
            try (TfGraph g = graph(true)) {
                near(naive(x, wide, wideBias, WIDE), run(g, x, Map.of())[1]);
                assertEquals(4L * IN * OUT, transposedBytes(), "narrowing: the text tower's other linears are not transposed");
            }
            return null;
        });
        w.transforms().close();
        Props.with("sdserve.linearWt", "all", () -> {
            try (TfGraph g = graph(false)) {
                near(naive(x, wide, wideBias, WIDE), run(g, x, Map.of())[1]);
                assertEquals(4L * IN * (OUT + WIDE), transposedBytes(), "all: the widening weight too");
            }
            return null;
        });
    }

    @Test
    void theCallReadsTheHeldCopyAndAReplacedWeightIsTransposedAgain() {
        float[] x = rnd(ROWS * IN);
        try (TfGraph g = graph(false)) {
            float[] first = run(g, x, Map.of())[0];
            TFloat32 wt = w.transforms().get(KernelTransformCache.Key.transposed("n.weight", KernelTransformCache.Pool.IMAGE), 1L << 30);
            assertNotNull(wt);
            assertEquals(Shape.of(IN, OUT), wt.shape(), "held [in, out]");
            assertEquals(narrow[3 * IN + 2], wt.getFloat(2, 3), "W[3][2] at [2][3]");
            wt.setFloat(wt.getFloat(0, 0) + 100f, 0, 0); // poison one entry
            assertFalse(java.util.Arrays.equals(first, run(g, x, Map.of())[0]), "the call used the held copy");
            float[] n2 = rnd(narrow.length);
            w.put("n.weight", new long[]{OUT, IN}, n2.clone());
            assertEquals(4L * IN * OUT, transposedBytes(), "still promised to the graph");
            near(naive(x, n2, narrowBias, OUT), run(g, x, Map.of())[0]);
        }
    }

    @Test
    void aWeightOverrideIsTransposedInTheGraph() {
        float[] x = rnd(ROWS * IN);
        float[] n2 = rnd(narrow.length);
        try (TfGraph g = graph(false);
             TFloat32 override = TFloat32.tensorOf(Shape.of(OUT, IN),
                     d -> d.copyFrom(DataBuffers.of(n2, true, false)))) {
            near(naive(x, narrow, narrowBias, OUT), run(g, x, Map.of())[0]);
            near(naive(x, n2, narrowBias, OUT), run(g, x, Map.of("n.weight", override))[0]);
            near(naive(x, narrow, narrowBias, OUT), run(g, x, Map.of())[0]);
        }
    }

    @Test
    void theBudgetIsPromisedAtBuildAndRespected() {
        float[] x = rnd(ROWS * IN);
        var key = KernelTransformCache.Key.transposed("n.weight", KernelTransformCache.Pool.IMAGE);
        assertFalse(w.transforms().reserve(key, 4L * IN * OUT - 1), "does not fit");
        assertNull(w.transforms().get(key, 4L * IN * OUT - 1));
        assertEquals(0, transposedBytes());
        w.transforms().close();
        Props.with("sdserve.linearTransposeCacheMb", "0", () -> {
            try (TfGraph g = graph(false)) {
                float[][] got = run(g, x, Map.of());
                near(naive(x, narrow, narrowBias, OUT), got[0]);
                near(naive(x, wide, wideBias, WIDE), got[1]);
            }
            return null;
        });
        assertEquals(0, w.transforms().size(), "budget 0: nothing held");
        assertEquals(0, transposedBytes());
        assertTrue(w.transforms().reserve(key, 1L << 20));
        assertTrue(w.transforms().reserve(key, 1L << 20), "a second promise of the same copy");
        assertEquals(4L * IN * OUT, transposedBytes(), "counted once");
        assertEquals(4L * IN * OUT, w.transforms().bytes(), "and in the model's resident transforms");
    }

    @Test
    void halfPrecisionComputeKeepsTheOldForms() {
        float[] x = rnd(ROWS * IN);
        try (TfGraph g = TfGraph.build("fp16", w, ComputeDType.FP16, b -> {
            var in = b.input("x", b.tf.placeholder(TFloat32.class, Placeholder.shape(Shape.of(ROWS, IN))));
            b.output("y", b.nn.toFloat32(b.nn.linear(b.nn.toCompute(in), "n", true)));
        })) {
            try (TFloat32 t = TFloat32.tensorOf(Shape.of(ROWS, IN), d -> d.copyFrom(DataBuffers.of(x, true, false)));
                 Result r = g.run(Map.of("x", t), List.of("y"))) {
                float[] got = TfModel.split((TFloat32) r.get(0), 1)[0];
                float[] want = naive(x, narrow, narrowBias, OUT);
                for (int i = 0; i < want.length; i++) {
                    assertEquals(want[i], got[i], 1e-2 * (1 + Math.abs(want[i])), "element " + i);
                }
            }
        }
        assertEquals(0, transposedBytes(), "no copy for half-precision compute");
    }
}
