package dev.sdserve.engine.tf;

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

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Precomputed Winograd kernel transforms: a 3×3 convolution served from the cache computes what the graph computes
 * without it and what a naive convolution computes; the cached value is really what the call uses; a LoRA-merged
 * kernel (a weight override) bypasses it; the budget is respected.
 */
class KernelTransformCacheTest {
    private static final int CIN = 6, COUT = 8;
    private final Random random = new Random(7);
    private Weights w;
    private float[] kernel, bias;

    private float[] rnd(int n) {
        return dev.sdserve.testutil.Floats.gaussian(random, n);
    }

    @BeforeEach
    void weights() {
        w = Weights.empty("cache-test");
        kernel = rnd(COUT * CIN * 9);
        bias = rnd(COUT);
        w.put("c.weight", new long[]{COUT, CIN, 3, 3}, kernel.clone());
        w.put("c.bias", new long[]{COUT}, bias.clone());
    }

    @AfterEach
    void close() {
        w.close();
        System.clearProperty("sdserve.winograd.kernelCacheMb");
    }

    private TfGraph convGraph(int side) {
        return TfGraph.build("conv", w, b -> {
            var in = b.input("x", b.tf.placeholder(TFloat32.class, Placeholder.shape(Shape.of(2, side, side, CIN))));
            b.output("y", b.nn.conv(in, "c"));
        });
    }

    private static float[] run(TfGraph g, float[] x, int side, Map<String, TFloat32> overrides) {
        try (TFloat32 t = TFloat32.tensorOf(Shape.of(2, side, side, CIN),
                d -> d.copyFrom(DataBuffers.of(x, true, false)));
             Result r = g.run(Map.of("x", t), List.of("y"), overrides)) {
            return TfModel.split((TFloat32) r.get(0), 1)[0];
        }
    }

    private float[] naive(float[] x, int side, float[] k) {
        float[] out = new float[2 * side * side * COUT];
        int per = side * side;
        for (int n = 0; n < 2; n++) {
            float[] xn = new float[per * CIN];
            System.arraycopy(x, n * per * CIN, xn, 0, xn.length);
            float[] yn = NnTest.naiveConv(xn, side, side, CIN, k, bias, COUT, 3, 1, 1, 1, side, side);
            System.arraycopy(yn, 0, out, n * per * COUT, yn.length);
        }
        return out;
    }

    private static void near(float[] want, float[] got, double tol) {
        assertEquals(want.length, got.length);
        for (int i = 0; i < want.length; i++) {
            assertEquals(want[i], got[i], tol * (1 + Math.abs(want[i])), "element " + i);
        }
    }

    @Test
    void cachedTransformsGiveTheGraphsOwnResultsAtBothVariants() {
        // 32×32 output pixels: F(4,3); 16×16: F(2,3)
        for (int side : new int[]{32, 16}) {
            float[] x = rnd(2 * side * side * CIN);
            System.setProperty("sdserve.winograd.kernelCacheMb", "0");
            float[] inGraph;
            try (TfGraph g = convGraph(side)) {
                inGraph = run(g, x, side, Map.of());
            }
            int before = w.transforms().size();
            System.clearProperty("sdserve.winograd.kernelCacheMb");
            try (TfGraph g = convGraph(side)) {
                float[] cached = run(g, x, side, Map.of());
                assertEquals(before + 1, w.transforms().size(), "the transform is held after the first call");
                assertArrayEquals(inGraph, cached, "same values as the transform computed in the graph");
                near(naive(x, side, kernel), cached, 1e-4);
                assertArrayEquals(cached, run(g, x, side, Map.of()), "second call from the cache");
            }
        }
        int a4 = 36, a2 = 16;
        assertEquals(4L * (a4 + a2) * CIN * COUT, w.transforms().bytes());
    }

    @Test
    void theCallReallyReadsTheCachedValueAndAReplacedWeightIsRecomputed() {
        int side = 16;
        float[] x = rnd(2 * side * side * CIN);
        try (TfGraph g = convGraph(side)) {
            float[] first = run(g, x, side, Map.of());
            TFloat32 u = w.transforms().get(new KernelTransformCache.Key("c.weight", Winograd.Variant.F2), 1L << 30);
            assertNotNull(u);
            u.setFloat(u.getFloat(0, 0, 0) + 100f, 0, 0, 0); // poison one transformed entry
            float[] poisoned = run(g, x, side, Map.of());
            assertFalse(java.util.Arrays.equals(first, poisoned), "the call used the held transform");
            // replacing the weight drops its transforms: the next call recomputes them from the new tensor
            float[] k2 = rnd(kernel.length);
            w.put("c.weight", new long[]{COUT, CIN, 3, 3}, k2.clone());
            assertEquals(0, w.transforms().size());
            near(naive(x, side, k2), run(g, x, side, Map.of()), 1e-4);
        }
    }

    @Test
    void aWeightOverrideIsTransformedInTheGraphNotTakenFromTheCache() {
        int side = 32;
        float[] x = rnd(2 * side * side * CIN);
        float[] k2 = rnd(kernel.length);
        try (TfGraph g = convGraph(side);
             TFloat32 override = TFloat32.tensorOf(Shape.of(3, 3, CIN, COUT), d -> d.copyFrom(
                     DataBuffers.of(Weights.oihwToHwio(k2, COUT, CIN, 3, 3), true, false)))) {
            near(naive(x, side, kernel), run(g, x, side, Map.of()), 1e-4);
            assertEquals(1, w.transforms().size());
            near(naive(x, side, k2), run(g, x, side, Map.of("c.weight", override)), 1e-4);
            near(naive(x, side, kernel), run(g, x, side, Map.of()), 1e-4);
        }
    }

    @Test
    void theBudgetIsRespected() {
        var key = new KernelTransformCache.Key("c.weight", Winograd.Variant.F4);
        long size = 4L * 36 * CIN * COUT;
        assertNull(w.transforms().get(key, size - 1), "does not fit");
        assertEquals(0, w.transforms().bytes());
        System.setProperty("sdserve.winograd.kernelCacheMb", "0");
        int side = 32;
        float[] x = rnd(2 * side * side * CIN);
        try (TfGraph g = convGraph(side)) {
            near(naive(x, side, kernel), run(g, x, side, Map.of()), 1e-4);
        }
        assertEquals(0, w.transforms().size(), "budget 0: nothing held");
        assertTrue(w.transforms().get(new KernelTransformCache.Key("c.weight", Winograd.Variant.F2), 1L << 20) != null);
    }
}
