package dev.sdserve.engine.tf;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;

import org.junit.jupiter.api.Test;
import org.tensorflow.Graph;
import org.tensorflow.ndarray.Shape;
import org.tensorflow.op.Ops;
import org.tensorflow.op.core.Placeholder;
import org.tensorflow.types.TFloat32;

import dev.sdserve.testutil.Props;
import dev.sdserve.tools.bench.GraphTimer;

/** Each kernel against a naive double-precision Java implementation on small shapes (and TF's Conv2D). */
class KernelsTest {
    private static final double TOL = 1e-5;

    /** ||a − b|| / ||b||. */
    static double relErr(float[] a, double[] b) {
        assertEquals(b.length, a.length, "output size");
        double num = 0, den = 0;
        for (int i = 0; i < a.length; i++) {
            num += (a[i] - b[i]) * (a[i] - b[i]);
            den += b[i] * b[i];
        }
        assertTrue(den > 0, "reference is all zeros");
        return Math.sqrt(num / den);
    }

    /** Naive 3×3 conv, padding 1, NHWC / HWIO. */
    static double[] naiveConv3x3(float[] x, float[] k, float[] bias, int n, int h, int w, int cin, int cout,
                                 int stride) {
        int ho = (h - 1) / stride + 1, wo = (w - 1) / stride + 1;
        double[] y = new double[n * ho * wo * cout];
        for (int b = 0; b < n; b++) {
            for (int oy = 0; oy < ho; oy++) {
                for (int ox = 0; ox < wo; ox++) {
                    for (int o = 0; o < cout; o++) {
                        double s = bias == null ? 0 : bias[o];
                        for (int dy = 0; dy < 3; dy++) {
                            int iy = oy * stride + dy - 1;
                            if (iy < 0 || iy >= h) {
                                continue;
                            }
                            for (int dx = 0; dx < 3; dx++) {
                                int ix = ox * stride + dx - 1;
                                if (ix < 0 || ix >= w) {
                                    continue;
                                }
                                for (int c = 0; c < cin; c++) {
                                    s += (double) x[((b * h + iy) * w + ix) * cin + c]
                                            * k[((dy * 3 + dx) * cin + c) * cout + o];
                                }
                            }
                        }
                        y[((b * ho + oy) * wo + ox) * cout + o] = s;
                    }
                }
            }
        }
        return y;
    }

    @Test
    void conv3x3MatchesNaiveForAllMethodsStridesAndOddSizes() {
        int[][] cases = {{2, 6, 5, 7, 9, 1}, {2, 6, 5, 7, 9, 2}, {1, 8, 8, 16, 12, 2}, {1, 7, 7, 4, 3, 2},
                {1, 1, 1, 3, 2, 1}};
        for (int[] c : cases) {
            int n = c[0], h = c[1], w = c[2], cin = c[3], cout = c[4], stride = c[5];
            for (Conv3x3.Method m : Conv3x3.Method.values()) {
                try (GraphTimer g = new GraphTimer(SessionConfigs.cpu(1), List.of(Shape.of(n, h, w, cin),
                        Shape.of(3, 3, cin, cout), Shape.of(cout)),
                        in -> Conv3x3.conv(Ops.create(in.get(0).env()), in.get(0), in.get(1), in.get(2), stride, m),
                        7)) {
                    double[] ref = naiveConv3x3(g.input(0), g.input(1), g.input(2), n, h, w, cin, cout, stride);
                    double e = relErr(g.runOnce(), ref);
                    assertTrue(e < TOL, m + " " + java.util.Arrays.toString(c) + " rel err " + e);
                }
            }
        }
    }

    @Test
    void conv3x3ValidOnAsymmetricallyPaddedInputMatchesNaive() {
        // VAE-encoder downsampler: pad (0, 1) on each spatial axis, 3×3 stride 2, no further padding.
        int n = 1, h = 6, w = 8, cin = 5, cout = 4;
        for (Conv3x3.Method m : Conv3x3.Method.values()) {
            try (GraphTimer g = new GraphTimer(SessionConfigs.cpu(1), List.of(Shape.of(n, h, w, cin),
                    Shape.of(3, 3, cin, cout), Shape.of(cout)), in -> {
                Ops tf = Ops.create(in.get(0).env());
                var p = tf.pad(in.get(0), tf.constant(new int[][]{{0, 0}, {0, 1}, {0, 1}, {0, 0}}), tf.constant(0f));
                return Conv3x3.convValid(tf, p, in.get(1), in.get(2), 2, m);
            }, 9)) {
                float[] x = g.input(0), k = g.input(1), b = g.input(2);
                int hp = h + 1, wp = w + 1, ho = (hp - 3) / 2 + 1, wo = (wp - 3) / 2 + 1;
                double[] ref = new double[n * ho * wo * cout];
                for (int oy = 0; oy < ho; oy++) {
                    for (int ox = 0; ox < wo; ox++) {
                        for (int o = 0; o < cout; o++) {
                            double s = b[o];
                            for (int dy = 0; dy < 3; dy++) {
                                for (int dx = 0; dx < 3; dx++) {
                                    int iy = oy * 2 + dy, ix = ox * 2 + dx; // padded coordinates = input ones
                                    if (iy >= h || ix >= w) {
                                        continue;
                                    }
                                    for (int c = 0; c < cin; c++) {
                                        s += (double) x[(iy * w + ix) * cin + c] * k[((dy * 3 + dx) * cin + c) * cout + o];
                                    }
                                }
                            }
                            ref[(oy * wo + ox) * cout + o] = s;
                        }
                    }
                }
                double e = relErr(g.runOnce(), ref);
                assertTrue(e < TOL, m + " rel err " + e);
            }
        }
    }

    @Test
    void conv3x3InRowBandsMatchesNaive() {
        // 16 rows × 8 cols × 8 ch: one im2col row is 8·9·8·4 = 2304 B; limit the band to 3 rows (uneven split).
        String prop = "sdserve.im2colMaxBytes";
        assertEquals(128L << 20, Conv3x3.MAX_IM2COL_BYTES, "run without " + prop);
        for (int stride : new int[]{1, 2}) {
            int n = 2, h = 16, w = 8, cin = 8, cout = 5;
            try (GraphTimer g = new GraphTimer(SessionConfigs.cpu(1), List.of(Shape.of(n, h, w, cin),
                    Shape.of(3, 3, cin, cout), Shape.of(cout)), in -> {
                Ops tf = Ops.create(in.get(0).env());
                var xp = tf.pad(in.get(0), tf.constant(new int[][]{{0, 0}, {1, 1}, {1, 1}, {0, 0}}), tf.constant(0f));
                return Conv3x3.bandedValid(tf, xp, in.get(1), in.get(2), stride, Conv3x3.Method.IM2COL, 3 * 2304);
            }, 13)) {
                double[] ref = naiveConv3x3(g.input(0), g.input(1), g.input(2), n, h, w, cin, cout, stride);
                double e = relErr(g.runOnce(), ref);
                assertTrue(e < TOL, "stride " + stride + " rel err " + e);
            }
        }
    }

    @Test
    void winogradMatricesComputeTheOneDimensionalCorrelation() {
        // y_i = Σ_k d_{i+k} g_k for i < m, from Aᵀ[(G g) ⊙ (Bᵀ d)]: checks every matrix entry of each variant
        java.util.Random r = new java.util.Random(3);
        for (Winograd.Variant v : Winograd.Variant.values()) {
            for (int trial = 0; trial < 20; trial++) {
                double[] d = new double[v.a], g = new double[3];
                for (int i = 0; i < v.a; i++) {
                    d[i] = r.nextGaussian();
                }
                for (int k = 0; k < 3; k++) {
                    g[k] = r.nextGaussian();
                }
                double[] prod = new double[v.a];
                for (int i = 0; i < v.a; i++) {
                    double gi = 0, di = 0;
                    for (int k = 0; k < 3; k++) {
                        gi += v.g[i][k] * g[k];
                    }
                    for (int k = 0; k < v.a; k++) {
                        di += v.bt[i][k] * d[k];
                    }
                    prod[i] = gi * di;
                }
                for (int i = 0; i < v.m; i++) {
                    double y = 0, ref = 0;
                    for (int k = 0; k < v.a; k++) {
                        y += v.at[i][k] * prod[k];
                    }
                    for (int k = 0; k < 3; k++) {
                        ref += d[i + k] * g[k];
                    }
                    assertEquals(ref, y, 1e-12, v + " output " + i);
                }
            }
        }
    }

    @Test
    void winogradInRowBandsOnOddNonSquareSizesMatchesNaive() {
        // heights/widths that are not multiples of the tile (2 or 4), a batch of 2, bands of whole tile rows
        int[][] cases = {{2, 11, 7, 6, 5}, {1, 5, 13, 3, 8}, {2, 2, 3, 4, 4}};
        for (int[] c : cases) {
            int n = c[0], h = c[1], w = c[2], cin = c[3], cout = c[4];
            for (Conv3x3.Method m : new Conv3x3.Method[]{Conv3x3.Method.WINOGRAD2, Conv3x3.Method.WINOGRAD4}) {
                for (long maxBytes : new long[]{Long.MAX_VALUE, 1}) { // 1 byte: one tile row per band
                    try (GraphTimer g = new GraphTimer(SessionConfigs.cpu(1), List.of(Shape.of(n, h, w, cin),
                            Shape.of(3, 3, cin, cout), Shape.of(cout)), in -> {
                        Ops tf = Ops.create(in.get(0).env());
                        var xp = tf.pad(in.get(0), tf.constant(new int[][]{{0, 0}, {1, 1}, {1, 1}, {0, 0}}),
                                tf.constant(0f));
                        return Conv3x3.bandedValid(tf, xp, in.get(1), in.get(2), 1, m, maxBytes);
                    }, 17)) {
                        double[] ref = naiveConv3x3(g.input(0), g.input(1), g.input(2), n, h, w, cin, cout, 1);
                        double e = relErr(g.runOnce(), ref);
                        assertTrue(e < TOL, m + " " + java.util.Arrays.toString(c) + " band limit " + maxBytes
                                + " rel err " + e);
                    }
                }
            }
        }
    }

    @Test
    void winogradProductsPerPositionAndBatchedBothMatchNaive() {
        // the default (one 2-D MatMul per transform position, unstacked and stacked back) and the batched form
        int n = 2, h = 9, w = 12, cin = 24, cout = 40;
        for (Conv3x3.Method m : new Conv3x3.Method[]{Conv3x3.Method.WINOGRAD2, Conv3x3.Method.WINOGRAD4}) {
            float[][] outs = new float[2][];
            double[] ref = null;
            for (int form = 0; form < 2; form++) {
                double[][] refOut = new double[1][];
                outs[form] = Props.with("sdserve.winograd.products", form == 1 ? "batched" : null, () -> {
                    try (GraphTimer g = new GraphTimer(SessionConfigs.cpu(2), List.of(Shape.of(n, h, w, cin),
                            Shape.of(3, 3, cin, cout), Shape.of(cout)), in -> Conv3x3.conv(Ops.create(in.get(0).env()),
                            in.get(0), in.get(1), in.get(2), 1, m), 23)) {
                        refOut[0] = naiveConv3x3(g.input(0), g.input(1), g.input(2), n, h, w, cin, cout, 1);
                        return g.runOnce();
                    }
                });
                ref = refOut[0];
                double e = relErr(outs[form], ref);
                assertTrue(e < TOL, m + (form == 0 ? " per position" : " batched") + " rel err " + e);
            }
            double[] batched = new double[outs[1].length];
            for (int i = 0; i < batched.length; i++) {
                batched[i] = outs[1][i];
            }
            assertTrue(relErr(outs[0], batched) < 1e-6, m + ": the two forms differ");
        }
    }

    @Test
    void winogradOnSdSizedChannelsStaysNearTheDirectSum() {
        // 320 → 320 channels over 16×16 (a 64×64-level layer's channel count): rounding grows with the sum's length
        int n = 1, h = 16, w = 16, cin = 320, cout = 320;
        for (Conv3x3.Method m : new Conv3x3.Method[]{Conv3x3.Method.IM2COL, Conv3x3.Method.WINOGRAD2,
                Conv3x3.Method.WINOGRAD4}) {
            try (GraphTimer g = new GraphTimer(SessionConfigs.cpu(2), List.of(Shape.of(n, h, w, cin),
                    Shape.of(3, 3, cin, cout), Shape.of(cout)),
                    in -> Conv3x3.conv(Ops.create(in.get(0).env()), in.get(0), in.get(1), in.get(2), 1, m), 19)) {
                double[] ref = naiveConv3x3(g.input(0), g.input(1), g.input(2), n, h, w, cin, cout, 1);
                double e = relErr(g.runOnce(), ref);
                System.out.printf("conv3x3 16x16x320->320 %s: rel err %.2e%n", m, e);
                // direct sums ~3e-7; F(4,3) ~4e-6: ten times under the UNet's conformance tolerance (1e-4) per layer
                assertTrue(e < (m == Conv3x3.Method.WINOGRAD4 ? 1e-5 : 2e-6), m + " rel err " + e);
            }
        }
    }

    @Test
    void autoPicksWinogradForLargeStrideOneLayersOnly() {
        assertEquals(Conv3x3.Method.WINOGRAD4, Conv3x3.auto(64 * 64, 1, false));
        assertEquals(Conv3x3.Method.WINOGRAD4, Conv3x3.auto(32 * 32, 1, false));
        assertEquals(Conv3x3.Method.WINOGRAD2, Conv3x3.auto(16 * 16, 1, false));
        assertEquals(Conv3x3.Method.IM2COL, Conv3x3.auto(8 * 8, 1, false));
        assertEquals(Conv3x3.Method.WINOGRAD2, Conv3x3.auto(64 * 64, 1, true), "half: F(2,3) only");
        assertEquals(Conv3x3.Method.IM2COL, Conv3x3.auto(8 * 8, 2, false));
        assertEquals(Conv3x3.Method.IM2COL, Conv3x3.auto(16 * 16, 2, false));
        assertEquals(Conv3x3.Method.NATIVE, Conv3x3.auto(32 * 32, 2, false));
    }

    @Test
    void conv3x3WithDynamicBatch() {
        // Batch unknown at graph-build time (the engine builds one graph per batch bucket, but must not need it).
        try (Graph graph = new Graph()) {
            Ops tf = Ops.create(graph);
            var x = tf.placeholder(TFloat32.class, Placeholder.shape(Shape.of(-1, 4, 4, 3)));
            var k = tf.placeholder(TFloat32.class, Placeholder.shape(Shape.of(3, 3, 3, 5)));
            for (Conv3x3.Method m : Conv3x3.Method.values()) {
                var y = Conv3x3.conv(tf, x, k, null, 1, m);
                org.junit.jupiter.api.Assertions.assertArrayEquals(new long[]{-1, 4, 4, 5}, y.shape().asArray(),
                        m.name());
            }
        }
    }

    @Test
    void conv3x3RejectsWrongKernel() {
        try (Graph graph = new Graph()) {
            Ops tf = Ops.create(graph);
            var x = tf.placeholder(TFloat32.class, Placeholder.shape(Shape.of(1, 4, 4, 3)));
            var k = tf.placeholder(TFloat32.class, Placeholder.shape(Shape.of(3, 3, 4, 5)));
            var ex = assertThrows(IllegalArgumentException.class, () -> Conv3x3.conv(tf, x, k, null, 1));
            assertTrue(ex.getMessage().contains("[3, 3, 3, Cout]"), ex.getMessage());
            assertThrows(IllegalArgumentException.class, () -> Conv3x3.conv(tf, x,
                    tf.placeholder(TFloat32.class, Placeholder.shape(Shape.of(3, 3, 3, 5))), null, 3));
        }
    }

    @Test
    void conv1x1MatchesNaive() {
        int n = 2, h = 3, w = 5, cin = 6, cout = 4;
        for (boolean hwio : new boolean[]{false, true}) {
            Shape ks = hwio ? Shape.of(1, 1, cin, cout) : Shape.of(cin, cout);
            try (GraphTimer g = new GraphTimer(SessionConfigs.cpu(1), List.of(Shape.of(n, h, w, cin), ks,
                    Shape.of(cout)), in -> Conv1x1.conv(Ops.create(in.get(0).env()), in.get(0), in.get(1), in.get(2)),
                    3)) {
                float[] x = g.input(0), k = g.input(1), b = g.input(2);
                double[] ref = new double[n * h * w * cout];
                for (int p = 0; p < n * h * w; p++) {
                    for (int o = 0; o < cout; o++) {
                        double s = b[o];
                        for (int c = 0; c < cin; c++) {
                            s += (double) x[p * cin + c] * k[c * cout + o];
                        }
                        ref[p * cout + o] = s;
                    }
                }
                double e = relErr(g.runOnce(), ref);
                assertTrue(e < TOL, "rel err " + e);
            }
        }
    }

    @Test
    void nearestResizeToAnySizeFollowsPyTorchsRule() {
        // The UNet's up path resizes to the skip's size: 2x, or 2x - 1 where a stride-2 conv rounded an odd size up.
        int[][] cases = {{3, 2, 5, 3}, {2, 2, 4, 4}, {5, 3, 9, 6}, {1, 1, 2, 1}};
        int n = 2, c = 3;
        for (int[] cs : cases) {
            int h = cs[0], w = cs[1], ho = cs[2], wo = cs[3];
            try (GraphTimer g = new GraphTimer(SessionConfigs.cpu(1), List.of(Shape.of(n, h, w, c)),
                    in -> Nn.resizeNearest(Ops.create(in.get(0).env()), in.get(0), ho, wo), 1)) {
                float[] x = g.input(0);
                double[] ref = new double[n * ho * wo * c];
                for (int b = 0; b < n; b++) {
                    for (int i = 0; i < ho; i++) {
                        int si = (int) Math.floor(i * (double) h / ho); // torch.nn.functional.interpolate, "nearest"
                        for (int j = 0; j < wo; j++) {
                            int sj = (int) Math.floor(j * (double) w / wo);
                            for (int k = 0; k < c; k++) {
                                ref[((b * ho + i) * wo + j) * c + k] = x[((b * h + si) * w + sj) * c + k];
                            }
                        }
                    }
                }
                assertEquals(0.0, relErr(g.runOnce(), ref), 0.0, h + "x" + w + " -> " + ho + "x" + wo);
            }
        }
    }

    static double[] naiveAttention(float[] q, float[] k, float[] v, int b, int tq, int tk, int c, int heads) {
        int d = c / heads;
        double[] out = new double[b * tq * c];
        double[] s = new double[tk];
        for (int bb = 0; bb < b; bb++) {
            for (int h = 0; h < heads; h++) {
                for (int i = 0; i < tq; i++) {
                    double max = Double.NEGATIVE_INFINITY;
                    for (int j = 0; j < tk; j++) {
                        double dot = 0;
                        for (int e = 0; e < d; e++) {
                            dot += (double) q[(bb * tq + i) * c + h * d + e] * k[(bb * tk + j) * c + h * d + e];
                        }
                        s[j] = dot / Math.sqrt(d);
                        max = Math.max(max, s[j]);
                    }
                    double sum = 0;
                    for (int j = 0; j < tk; j++) {
                        s[j] = Math.exp(s[j] - max);
                        sum += s[j];
                    }
                    for (int e = 0; e < d; e++) {
                        double o = 0;
                        for (int j = 0; j < tk; j++) {
                            o += s[j] / sum * v[(bb * tk + j) * c + h * d + e];
                        }
                        out[(bb * tq + i) * c + h * d + e] = o;
                    }
                }
            }
        }
        return out;
    }

    @Test
    void attentionMatchesNaiveWholeAndChunked() {
        int b = 2, tq = 13, tk = 7, c = 12, heads = 3;
        for (int chunk : new int[]{0, 5, 13, 4}) {
            for (int tkk : new int[]{tk, tq}) {
                try (GraphTimer g = new GraphTimer(SessionConfigs.cpu(1), List.of(Shape.of(b, tq, c),
                        Shape.of(b, tkk, c), Shape.of(b, tkk, c)),
                        in -> Attention.attend(Ops.create(in.get(0).env()), in.get(0), in.get(1), in.get(2), heads,
                                chunk), 11)) {
                    double[] ref = naiveAttention(g.input(0), g.input(1), g.input(2), b, tq, tkk, c, heads);
                    double e = relErr(g.runOnce(), ref);
                    assertTrue(e < TOL, "chunk " + chunk + " tk " + tkk + " rel err " + e);
                }
            }
        }
    }

    @Test
    void attentionOneHeadAtATimeMatchesNaiveWholeAndChunked() {
        // the per-head path (large query × key counts in the UNet) with the threshold lowered to these sizes
        int b = 2, tq = 13, tk = 9, c = 12, heads = 3;
        for (int chunk : new int[]{0, 5, 13}) {
            double e = Props.with("sdserve.attention.perHeadMin", "1", () -> {
                try (GraphTimer g = new GraphTimer(SessionConfigs.cpu(2), List.of(Shape.of(b, tq, c),
                        Shape.of(b, tk, c), Shape.of(b, tk, c)),
                        in -> Attention.attend(Ops.create(in.get(0).env()), in.get(0), in.get(1), in.get(2), heads,
                                chunk), 29)) {
                    double[] ref = naiveAttention(g.input(0), g.input(1), g.input(2), b, tq, tk, c, heads);
                    return relErr(g.runOnce(), ref);
                }
            });
            assertTrue(e < TOL, "per head, chunk " + chunk + " rel err " + e);
        }
    }

    @Test
    void groupNormMatchesNaiveWithAndWithoutSiluBothWaysOfSumming() {
        // small and VAE-like spatial sizes; the input is shifted by +3 so the mean is far from zero (a one-pass
        // E[x²] − E[x]² would lose digits there)
        int[][] cases = {{2, 3, 4, 12, 4}, {2, 64, 48, 64, 32}};
        double eps = 1e-5;
        float shift = 3f;
        for (int[] cs : cases) {
            int n = cs[0], h = cs[1], w = cs[2], c = cs[3], groups = cs[4];
            for (boolean matmulSums : new boolean[]{true, false}) {
                for (boolean silu : new boolean[]{false, true}) {
                    try (GraphTimer g = new GraphTimer(SessionConfigs.cpu(1), List.of(Shape.of(n, h, w, c),
                            Shape.of(c), Shape.of(c)), in -> {
                        Ops tf = Ops.create(in.get(0).env());
                        return GroupNorm.norm(tf, tf.math.add(in.get(0), tf.constant(shift)), in.get(1), in.get(2),
                                groups, eps, silu, matmulSums);
                    }, 5)) {
                        float[] x0 = g.input(0), gam = g.input(1), bet = g.input(2);
                        double[] x = new double[x0.length];
                        for (int i = 0; i < x.length; i++) {
                            x[i] = (double) (x0[i] + shift); // the float sum the graph normalises
                        }
                        double[] ref = new double[x.length];
                        int cg = c / groups;
                        for (int b = 0; b < n; b++) {
                            for (int gr = 0; gr < groups; gr++) {
                                double sum = 0, sq = 0;
                                int cnt = h * w * cg;
                                for (int p = 0; p < h * w; p++) {
                                    for (int j = 0; j < cg; j++) {
                                        sum += x[(b * h * w + p) * c + gr * cg + j];
                                    }
                                }
                                double mean = sum / cnt;
                                for (int p = 0; p < h * w; p++) {
                                    for (int j = 0; j < cg; j++) {
                                        double d = x[(b * h * w + p) * c + gr * cg + j] - mean;
                                        sq += d * d;
                                    }
                                }
                                double inv = 1 / Math.sqrt(sq / cnt + eps);
                                for (int p = 0; p < h * w; p++) {
                                    for (int j = 0; j < cg; j++) {
                                        int i = (b * h * w + p) * c + gr * cg + j;
                                        double y = (x[i] - mean) * inv * gam[gr * cg + j] + bet[gr * cg + j];
                                        ref[i] = silu ? y / (1 + Math.exp(-y)) : y;
                                    }
                                }
                            }
                        }
                        double e = relErr(g.runOnce(), ref);
                        assertTrue(e < TOL, java.util.Arrays.toString(cs) + " matmul sums " + matmulSums + " silu "
                                + silu + " rel err " + e);
                    }
                }
            }
        }
    }
}
