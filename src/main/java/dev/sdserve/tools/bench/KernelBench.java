package dev.sdserve.tools.bench;

import java.io.PrintStream;
import java.util.List;
import java.util.function.Function;

import org.tensorflow.Operand;
import org.tensorflow.ndarray.Shape;
import org.tensorflow.op.Ops;
import org.tensorflow.proto.ConfigProto;
import org.tensorflow.types.TFloat32;

import dev.sdserve.engine.tf.Attention;
import dev.sdserve.engine.tf.Conv3x3;
import dev.sdserve.engine.tf.GroupNorm;
import dev.sdserve.engine.tf.SessionConfigs;

/**
 * Microbenchmarks of the kernels on SD 1.5 shapes, TF's own op (or the plain formulation) beside ours, each with
 * ms, GFLOP/s and % of the FMA peak measured just before. Run:
 * {@code java -cp … dev.sdserve.tools.bench.KernelBench [threads] [conv|conv-b2|conv32|conv32-b2|attn|norm|gemm|gemmt|lanes|tp|profile|all]}
 * ({@code conv32}: the stride-1 levels of a 32×32 latent, i.e. a 256² image: 32×32×320, 16×16×640, 8×8 and 4×4×1280;
 * {@code gemmt}: the engine's linear forms against the weight stored {@code [in, out]}; {@code tp}: a text encoder's
 * product chain in per-sample lanes, plain, and split by output features between two lanes).
 */
public final class KernelBench {
    private KernelBench() {
    }

    /** One core's FLOP per CPU-second, from the peak measurement. */
    private static double core = Double.NaN;

    public static void main(String[] args) {
        int threads = args.length > 0 ? Integer.parseInt(args[0]) : 2;
        String which = args.length > 1 ? args[1] : "all";
        run(threads, which, System.out);
    }

    static void run(int threads, String which, PrintStream out) {
        ConfigProto cfg = SessionConfigs.cpu(threads);
        FmaPeak.Peak peak = FmaPeak.measure(threads, 150);
        out.println("peak: " + peak);
        double p = peak.gflops();
        core = peak.perCoreCpuGflops();
        out.printf("%-40s %9s %7s %5s %6s | %9s %7s %5s %6s | %s%n", "case", "base ms", "GF/s", "%pk", "%pkcpu",
                "ours ms", "GF/s", "%pk", "%pkcpu", "speedup wall/cpu");
        if (which.equals("all") || which.startsWith("conv")) {
            long batch = which.endsWith("-b2") ? 2 : 1;
            long[][] convs = which.startsWith("conv32")
                    ? new long[][]{{32, 320, 320, 1}, {16, 640, 640, 1}, {8, 1280, 1280, 1}, {4, 1280, 1280, 1}}
                    : new long[][]{{64, 320, 320, 1}, {64, 960, 320, 1}, {64, 640, 640, 1}, {32, 640, 640, 1},
                    {32, 1920, 640, 1}, {16, 1280, 1280, 1}, {8, 1280, 1280, 1}, {128, 512, 512, 1},
                    {256, 256, 256, 1}, {64, 320, 320, 2}, {16, 1280, 1280, 2}};
            for (long[] c : convs) {
                long hw = c[0], cin = c[1], cout = c[2];
                int stride = (int) c[3];
                double fl = Conv3x3.flops(batch, hw, hw, cin, cout, stride);
                List<Shape> shapes = List.of(Shape.of(batch, hw, hw, cin), Shape.of(3, 3, cin, cout),
                        Shape.of(cout));
                String name = String.format("conv3x3 b%d %dx%dx%d->%d s%d", batch, hw, hw, cin, cout, stride);
                for (Conv3x3.Method m : stride == 1
                        ? new Conv3x3.Method[]{Conv3x3.Method.IM2COL, Conv3x3.Method.WINOGRAD2,
                        Conv3x3.Method.WINOGRAD4}
                        : new Conv3x3.Method[]{Conv3x3.Method.IM2COL}) {
                    line(out, name + " " + m.name().toLowerCase(), fl, p, cfg, shapes,
                            in -> Conv3x3.conv(Ops.create(in.get(0).env()), in.get(0), in.get(1), in.get(2), stride,
                                    Conv3x3.Method.NATIVE),
                            in -> Conv3x3.conv(Ops.create(in.get(0).env()), in.get(0), in.get(1), in.get(2), stride,
                                    m));
                }
            }
        }
        if (which.equals("profile")) {
            // {side, Cin, Cout, batch}
            long[][] convs = {{64, 320, 320, 1}, {32, 640, 640, 1}, {128, 512, 512, 1}, {32, 320, 320, 2},
                    {16, 640, 640, 2}};
            for (long[] c : convs) {
                for (Conv3x3.Method m : new Conv3x3.Method[]{Conv3x3.Method.WINOGRAD4, Conv3x3.Method.WINOGRAD2}) {
                    List<Shape> shapes = List.of(Shape.of(c[3], c[0], c[0], c[1]), Shape.of(3, 3, c[1], c[2]),
                            Shape.of(c[2]));
                    try (GraphTimer g = new GraphTimer(cfg, shapes, in -> Conv3x3.conv(Ops.create(in.get(0).env()),
                            in.get(0), in.get(1), in.get(2), 1, m), 1)) {
                        out.printf("profile conv3x3 b%d %dx%dx%d->%d %s (ms per op type, both threads summed): %s%n",
                                c[3], c[0], c[0], c[1], c[2], m, g.profile(2).entrySet().stream().limit(12)
                                        .map(e -> String.format("%s %.2f", e.getKey(), e.getValue()))
                                        .collect(java.util.stream.Collectors.joining(", ")));
                    }
                }
            }
        }
        if (which.equals("all") || which.equals("attn")) {
            // {queries, keys, channels, batch}; the 1024-token batch-2 rows are a 256² image's guided step
            long[][] attn = {{4096, 4096, 320, 1}, {4096, 77, 320, 1}, {1024, 1024, 640, 1}, {256, 256, 1280, 1},
                    {1024, 1024, 320, 2}, {256, 256, 640, 2}, {4096, 4096, 320, 2}};
            for (long[] a : attn) {
                long tq = a[0], tk = a[1], c = a[2], b = a[3];
                double fl = Attention.flops(b, tq, tk, c);
                List<Shape> shapes = List.of(Shape.of(b, tq, c), Shape.of(b, tk, c), Shape.of(b, tk, c));
                for (int chunk : new int[]{1024, 512, 256}) {
                    if (tq <= chunk) {
                        continue;
                    }
                    line(out, String.format("attn b%d %dx%d c%d h8 chunk%d", b, tq, tk, c, chunk), fl, p, cfg, shapes,
                            in -> Attention.attend(Ops.create(in.get(0).env()), in.get(0), in.get(1), in.get(2), 8, 0),
                            in -> Attention.attend(Ops.create(in.get(0).env()), in.get(0), in.get(1), in.get(2), 8,
                                    chunk));
                }
                if (tq <= 1024) {
                    line(out, String.format("attn b%d %dx%d c%d h8", b, tq, tk, c), fl, p, cfg, shapes,
                            in -> Attention.attend(Ops.create(in.get(0).env()), in.get(0), in.get(1), in.get(2), 8, 0),
                            in -> Attention.attend(Ops.create(in.get(0).env()), in.get(0), in.get(1), in.get(2), 8, 0));
                }
            }
        }
        if (which.equals("all") || which.equals("gemm")) {
            // {rows, in, out}: the ceiling (a large square product), then the UNet's and the text encoder's linears.
            long[][] gemms = {{2048, 2048, 2048}, {8192, 320, 320}, {8192, 320, 2560}, {2048, 640, 640},
                    {2048, 640, 5120}, {512, 1280, 1280}, {154, 768, 768}, {154, 768, 3072}, {154, 3072, 768}};
            for (long[] g : gemms) {
                long m = g[0], k = g[1], n = g[2];
                List<Shape> shapes = List.of(Shape.of(m, k), Shape.of(n, k), Shape.of(n));
                line(out, String.format("matmul %dx%d . %dx%d  x.Wt+b vs x.Wt", m, k, k, n), 2.0 * m * k * n, p,
                        cfg, shapes,
                        in -> {
                            Ops tf = Ops.create(in.get(0).env());
                            return tf.nn.biasAdd(tf.linalg.matMul(in.get(0), in.get(1),
                                    org.tensorflow.op.linalg.MatMul.transposeB(true)), in.get(2));
                        },
                        in -> Ops.create(in.get(0).env()).linalg.matMul(in.get(0), in.get(1),
                                org.tensorflow.op.linalg.MatMul.transposeB(true)));
                line(out, String.format("matmul %dx%d . %dx%d  x.Wt vs (W.xt)t", m, k, k, n), 2.0 * m * k * n, p,
                        cfg, shapes,
                        in -> Ops.create(in.get(0).env()).linalg.matMul(in.get(0), in.get(1),
                                org.tensorflow.op.linalg.MatMul.transposeB(true)),
                        in -> {
                            Ops tf = Ops.create(in.get(0).env());
                            return tf.linalg.transpose(tf.linalg.matMul(in.get(1), in.get(0),
                                    org.tensorflow.op.linalg.MatMul.transposeB(true)), tf.constant(new int[]{1, 0}));
                        });
            }
        }
        if (which.equals("all") || which.equals("lanes")) {
            // A text encoder's product chain (12 × fc1 + fc2) over 154 rows (batch 2 × 77 tokens) and 77 (batch 1):
            // one chain with `threads` intra-op threads inside every op, against two independent chains (the batch's
            // halves, as Lanes builds them) in a session of 2 inter-op threads with threads/2 intra-op threads each.
            for (long rows : new long[]{154, 77}) {
                List<Shape> shapes = List.of(Shape.of(rows, 768), Shape.of(3072, 768), Shape.of(768, 3072));
                double fl = 12 * 2 * 2.0 * rows * 768 * 3072;
                Function<List<Operand<TFloat32>>, Operand<TFloat32>> chain = in -> chain(Ops.create(in.get(0).env()),
                        in.get(0), in.get(1), in.get(2));
                Function<List<Operand<TFloat32>>, Operand<TFloat32>> lanes = in -> {
                    Ops tf = Ops.create(in.get(0).env());
                    return twoLanes(tf, in.get(0), rows, x -> chain(tf, x, in.get(1), in.get(2)));
                };
                ConfigProto laneCfg = SessionConfigs.cpu(Math.max(1, threads / 2), 2).toBuilder()
                        .setUsePerSessionThreads(true).build();
                line2(out, String.format("chain %dx768->3072->768 x12: 1 vs 2 lanes", rows), fl, p, cfg, laneCfg,
                        shapes, chain, lanes);
            }
        }
        if (which.equals("all") || which.equals("gemmt")) {
            // The engine's linear (x . W^T + b; (W . x^T)^T + b at <= 200 rows) against the weight stored [in, out]:
            // x . Wt + b, no transposed operand.
            long[][] gemms = {{8192, 320, 320}, {8192, 320, 2560}, {8192, 1280, 320}, {2048, 640, 640},
                    {2048, 640, 5120}, {2048, 2560, 640}, {512, 1280, 1280}, {512, 5120, 1280}, {128, 1280, 1280},
                    {77, 768, 768}, {77, 768, 3072}, {77, 3072, 768}, {154, 768, 3072}, {154, 3072, 768},
                    {1024, 768, 320}, {77, 768, 320}};
            for (long[] g : gemms) {
                long m = g[0], k = g[1], n = g[2];
                List<Shape> shapes = List.of(Shape.of(m, k), Shape.of(n, k), Shape.of(k, n), Shape.of(n));
                line(out, String.format("linear %dx%d->%d now vs x.Wt", m, k, n), 2.0 * m * k * n, p, cfg, shapes,
                        in -> {
                            Ops tf = Ops.create(in.get(0).env());
                            Operand<TFloat32> y = m <= 200
                                    ? tf.linalg.transpose(tf.linalg.matMul(in.get(1), in.get(0),
                                    org.tensorflow.op.linalg.MatMul.transposeB(true)), tf.constant(new int[]{1, 0}))
                                    : tf.linalg.matMul(in.get(0), in.get(1),
                                    org.tensorflow.op.linalg.MatMul.transposeB(true));
                            return tf.nn.biasAdd(y, in.get(3));
                        },
                        in -> {
                            Ops tf = Ops.create(in.get(0).env());
                            return tf.nn.biasAdd(tf.linalg.matMul(in.get(0), in.get(2)), in.get(3));
                        });
            }
        }
        if (which.equals("tp")) {
            // Tensor-parallel lanes: each lane computes half of every product's output features (fc1's rows of W1,
            // fc2's rows of W2 transposed = its input features), the two partial fc2 outputs summed: one sync per
            // layer, every product over all rows, one thread each. Against the per-sample lanes (154 rows) and the
            // plain 2-thread chain.
            for (long rows : new long[]{154, 77}) {
                List<Shape> shapes = List.of(Shape.of(rows, 768), Shape.of(3072, 768), Shape.of(3072, 768));
                double fl = 12 * 2 * 2.0 * rows * 768 * 3072;
                Function<List<Operand<TFloat32>>, Operand<TFloat32>> plain = in -> chainT(Ops.create(in.get(0).env()),
                        in.get(0), in.get(1), in.get(2));
                Function<List<Operand<TFloat32>>, Operand<TFloat32>> lanes = in -> {
                    Ops tf = Ops.create(in.get(0).env());
                    return twoLanes(tf, in.get(0), rows, x -> chainT(tf, x, in.get(1), in.get(2)));
                };
                Function<List<Operand<TFloat32>>, Operand<TFloat32>> tp = in -> {
                    Ops tf = Ops.create(in.get(0).env());
                    Operand<TFloat32> x = in.get(0);
                    var w1 = tf.split(tf.constant(0), in.get(1), 2L);
                    var w2 = tf.split(tf.constant(0), in.get(2), 2L);
                    for (int l = 0; l < 12; l++) {
                        Operand<TFloat32> sum = null;
                        for (int i = 0; i < 2; i++) {
                            var h = tf.linalg.matMul(x, w1.output().get(i),
                                    org.tensorflow.op.linalg.MatMul.transposeB(true));
                            Operand<TFloat32> y = tf.linalg.matMul(h, w2.output().get(i));
                            sum = sum == null ? y : tf.math.add(sum, y);
                        }
                        x = sum;
                    }
                    return x;
                };
                ConfigProto laneCfg = SessionConfigs.cpu(Math.max(1, threads / 2), 2).toBuilder()
                        .setUsePerSessionThreads(true).build();
                if (rows % 2 == 0) {
                    line2(out, String.format("chain %dx768->3072->768 x12: lanes vs tp", rows), fl, p, laneCfg,
                            laneCfg, shapes, lanes, tp);
                }
                line2(out, String.format("chain %dx768->3072->768 x12: plain vs tp", rows), fl, p, cfg, laneCfg,
                        shapes, plain, tp);
            }
        }
        if (which.equals("all") || which.equals("norm")) {
            long[][] norms = {{64, 320}, {32, 640}, {16, 1280}, {128, 512}, {256, 256}};
            for (long[] nrm : norms) {
                long hw = nrm[0], c = nrm[1];
                List<Shape> shapes = List.of(Shape.of(1, hw, hw, c), Shape.of(c), Shape.of(c));
                line(out, String.format("groupnorm+silu %dx%dx%d mean vs matmul", hw, hw, c), 0, p, cfg, shapes,
                        in -> GroupNorm.norm(Ops.create(in.get(0).env()), in.get(0), in.get(1), in.get(2), 32,
                                1e-5, true, false),
                        in -> GroupNorm.norm(Ops.create(in.get(0).env()), in.get(0), in.get(1), in.get(2), 32,
                                1e-5, true, true));
            }
        }
        out.println("peak after: " + FmaPeak.measure(threads, 150));
    }

    private static Operand<TFloat32> chain(Ops tf, Operand<TFloat32> x, Operand<TFloat32> w1, Operand<TFloat32> w2) {
        for (int l = 0; l < 12; l++) {
            var h = tf.linalg.matMul(x, w1, org.tensorflow.op.linalg.MatMul.transposeB(true));
            x = tf.linalg.matMul(h, w2, org.tensorflow.op.linalg.MatMul.transposeB(true));
        }
        return x;
    }

    /** The rows of {@code x} cut in two halves, each through its own copy of {@code body}, joined back in order. */
    private static Operand<TFloat32> twoLanes(Ops tf, Operand<TFloat32> x, long rows,
                                              java.util.function.UnaryOperator<Operand<TFloat32>> body) {
        long h = rows / 2;
        var a = tf.slice(x, tf.constant(new long[]{0, 0}), tf.constant(new long[]{h, -1}));
        var b = tf.slice(x, tf.constant(new long[]{h, 0}), tf.constant(new long[]{-1, -1}));
        return tf.concat(List.of(body.apply(a), body.apply(b)), tf.constant(0));
    }

    /** {@link #chain} with the second weight stored transposed ([in, out]). */
    private static Operand<TFloat32> chainT(Ops tf, Operand<TFloat32> x, Operand<TFloat32> w1, Operand<TFloat32> w2t) {
        for (int l = 0; l < 12; l++) {
            var h = tf.linalg.matMul(x, w1, org.tensorflow.op.linalg.MatMul.transposeB(true));
            x = tf.linalg.matMul(h, w2t);
        }
        return x;
    }

    /** The textbook formulation (normalise, then affine, then SiLU) for comparison. */
    static Operand<TFloat32> naiveGroupNorm(Ops tf, Operand<TFloat32> x, Operand<TFloat32> g, Operand<TFloat32> b,
                                            int groups) {
        long h = x.shape().size(1), w = x.shape().size(2), c = x.shape().size(3);
        var xr = tf.reshape(x, tf.constant(new long[]{-1, h, w, groups, c / groups}));
        var axes = tf.constant(new int[]{1, 2, 4});
        var mean = tf.math.mean(xr, axes, org.tensorflow.op.math.Mean.keepDims(true));
        var d = tf.math.sub(xr, mean);
        var var = tf.math.mean(tf.math.square(d), axes, org.tensorflow.op.math.Mean.keepDims(true));
        var y = tf.math.div(d, tf.math.sqrt(tf.math.add(var, tf.constant(1e-5f))));
        return tf.math.add(tf.math.mul(tf.reshape(y, tf.shape(x)), g), b);
    }

    /** As {@link #line} with each side in its own session settings, alternated 3 times (median of 5 runs each). */
    private static void line2(PrintStream out, String name, double flops, double peak, ConfigProto cfgA,
                              ConfigProto cfgB, List<Shape> shapes,
                              Function<List<Operand<TFloat32>>, Operand<TFloat32>> base,
                              Function<List<Operand<TFloat32>>, Operand<TFloat32>> ours) {
        try (GraphTimer a = new GraphTimer(cfgA, shapes, base, 1); GraphTimer b = new GraphTimer(cfgB, shapes, ours, 1)) {
            for (int r = 0; r < 3; r++) {
                double ta = a.medianMillis(1, 5), tb = b.medianMillis(1, 5);
                out.printf("%-40s %9.2f %7.1f %4.0f%% | %9.2f %7.1f %4.0f%% | %.2fx%n", name, ta, flops / ta / 1e6,
                        100 * flops / ta / 1e6 / peak, tb, flops / tb / 1e6, 100 * flops / tb / 1e6 / peak, ta / tb);
            }
        }
    }

    private static void line(PrintStream out, String name, double flops, double peak, ConfigProto cfg,
                             List<Shape> shapes, Function<List<Operand<TFloat32>>, Operand<TFloat32>> base,
                             Function<List<Operand<TFloat32>>, Operand<TFloat32>> ours) {
        double tb, to, cb, co;
        try (GraphTimer g = new GraphTimer(cfg, shapes, base, 1)) {
            tb = g.medianMillis(2, 5);
            cb = g.cpuSecondsPerRun();
        }
        try (GraphTimer g = new GraphTimer(cfg, shapes, ours, 1)) {
            to = g.medianMillis(2, 5);
            co = g.cpuSecondsPerRun();
        }
        double gb = flops / tb / 1e6, go = flops / to / 1e6;
        // %pkcpu: FLOP per process CPU-second against one core's FLOP per CPU-second (robust to shared cores).
        out.printf("%-40s %9.2f %7.1f %4.0f%% %5.0f%% | %9.2f %7.1f %4.0f%% %5.0f%% | %.2fx / %.2fx%n", name, tb, gb,
                100 * gb / peak, 100 * flops / cb / 1e9 / core, to, go, 100 * go / peak,
                100 * flops / co / 1e9 / core, tb / to, cb / co);
    }
}
