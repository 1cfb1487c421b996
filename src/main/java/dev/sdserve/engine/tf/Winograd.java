package dev.sdserve.engine.tf;

import java.util.ArrayList;
import java.util.List;
import java.util.function.Consumer;

import org.tensorflow.Operand;
import org.tensorflow.Output;
import org.tensorflow.op.Ops;
import org.tensorflow.types.TFloat32;

/**
 * Stride-1 3×3 convolution by Winograd's minimal filtering F(m×m, 3×3) (Lavin and Gray, 2015), as TF graph ops.
 *
 * <p>The output is cut into m×m tiles; each reads an (m+2)×(m+2) input tile {@code d}. With the fixed matrices
 * B, G, A of the chosen m, a tile's output is {@code Aᵀ [(G g Gᵀ) ⊙ (Bᵀ d B)] A}: the element-wise product becomes,
 * over all tiles and channels, one MatMul per transform position — {@code a² = (m+2)²} MatMuls of
 * {@code [tiles, Cin] × [Cin, Cout]} — which costs {@code a²/m²} multiplies per output pixel and channel pair
 * instead of 9 (F(2,3): 4, F(4,3): 2.25). The three transforms are MatMuls with the Kronecker products of the 1-D
 * matrices ({@code kron(Bᵀ, Bᵀ)} etc.), memory-bound and small beside the main product:
 * <ol>
 *   <li>kernel: {@code U = kron(G, G) · g} on {@code [9, Cin·Cout]} → {@code [a², Cin, Cout]}, built into the graph
 *   (weights are fed, not constants); {@link KernelTransformCache} holds the transforms of the layers a model's
 *   calls use, up to a memory budget, and runs feed them there so the graph skips this MatMul (holding every
 *   transform would take 16/9 or 4 times the kernels' memory: 3×3 kernels are 541M of SD 1.5's 860M UNet
 *   parameters);</li>
 *   <li>input: {@code ExtractImagePatches} (a×a, stride m) → {@code [P, a², Cin]}, transposed to
 *   {@code [a², P·Cin]}, times {@code kron(Bᵀ, Bᵀ)};</li>
 *   <li>output: {@code kron(Aᵀ, Aᵀ)} times {@code [a², P·Cout]} → {@code [m, m, N, th, tw, Cout]}, transposed into
 *   the image.</li>
 * </ol>
 * Rounding: F(2,3)'s matrices hold only 0, ±1 and ±½ (errors like the direct sum's); F(4,3)'s larger constants
 * lose a few more bits in float32 (relative error 3.7e-6 on a 320 → 320-channel layer against 3.5e-7 for a direct
 * sum; 3e-6 to 2e-5 over the whole SD 1.5 UNet, far inside the conformance tolerances; {@code KernelsTest} checks
 * both against a naive double-precision convolution). In half precision only F(2,3) is used.
 */
final class Winograd {
    /** One F(m, 3) variant: its 1-D matrices (row-major). */
    enum Variant {
        F2(2,
                new double[][]{{1, 0, -1, 0}, {0, 1, 1, 0}, {0, -1, 1, 0}, {0, 1, 0, -1}},
                new double[][]{{1, 0, 0}, {0.5, 0.5, 0.5}, {0.5, -0.5, 0.5}, {0, 0, 1}},
                new double[][]{{1, 1, 1, 0}, {0, 1, -1, -1}}),
        F4(4,
                new double[][]{{4, 0, -5, 0, 1, 0}, {0, -4, -4, 1, 1, 0}, {0, 4, -4, -1, 1, 0},
                        {0, -2, -1, 2, 1, 0}, {0, 2, -1, -2, 1, 0}, {0, 4, 0, -5, 0, 1}},
                new double[][]{{1.0 / 4, 0, 0}, {-1.0 / 6, -1.0 / 6, -1.0 / 6}, {-1.0 / 6, 1.0 / 6, -1.0 / 6},
                        {1.0 / 24, 1.0 / 12, 1.0 / 6}, {1.0 / 24, -1.0 / 12, 1.0 / 6}, {0, 0, 1}},
                new double[][]{{1, 1, 1, 1, 1, 0}, {0, 1, -1, 2, -2, 0}, {0, 1, 1, 4, 4, 0}, {0, 1, -1, 8, -8, 1}});

        /** Output tile side m; input tile side a = m + 2. */
        final int m, a;
        /** Bᵀ [a, a], G [a, 3], Aᵀ [m, a]. */
        final double[][] bt, g, at;

        Variant(int m, double[][] bt, double[][] g, double[][] at) {
            this.m = m;
            this.a = m + 2;
            this.bt = bt;
            this.g = g;
            this.at = at;
        }
    }

    private Winograd() {
    }

    /** {@code kron(x, x)} as a float matrix: row (i·r + j), column (k·c + l) = x[i][k]·x[j][l]. */
    static float[][] kron(double[][] x) {
        int r = x.length, c = x[0].length;
        float[][] out = new float[r * r][c * c];
        for (int i = 0; i < r; i++) {
            for (int j = 0; j < r; j++) {
                for (int k = 0; k < c; k++) {
                    for (int l = 0; l < c; l++) {
                        out[i * r + j][k * c + l] = (float) (x[i][k] * x[j][l]);
                    }
                }
            }
        }
        return out;
    }

    /** A constant matrix in the dtype of {@code like}. */
    private static Operand<TFloat32> matrix(Ops tf, float[][] v, Operand<?> like) {
        return Shapes.castTo(tf, tf.constant(v), Shapes.isHalf(like));
    }

    /**
     * VALID stride-1 3×3 convolution of the padded input {@code xp} [N, Hp, Wp, Cin] with kernel {@code [3, 3, Cin,
     * Cout]}, output {@code [N, Hp − 2, Wp − 2, Cout]} (no bias).
     */
    static Operand<TFloat32> convValid(Ops tf, Operand<TFloat32> xp, Operand<TFloat32> kernel, Variant v) {
        return convValid(tf, xp, kernel, v, null);
    }

    /** As {@link #convValid(Ops, Operand, Operand, Variant)}, telling {@code onTransform} (or null) the transform. */
    static Operand<TFloat32> convValid(Ops tf, Operand<TFloat32> xp, Operand<TFloat32> kernel, Variant v,
                                       Consumer<Transformed> onTransform) {
        Operand<TFloat32> u = transformKernel(tf, kernel, v, xp);
        if (onTransform != null) {
            onTransform.accept(new Transformed(v, u));
        }
        return convValidTransformed(tf, xp, u, v);
    }

    /**
     * A kernel transform built into a graph: {@code u} is the {@code [a², Cin, Cout]} value of {@link
     * #transformKernel}, a pure function of the kernel, so a caller holding that value precomputed may feed it
     * there instead (TF then skips the transform; see {@link WeightBinder#transformed}).
     */
    record Transformed(Variant variant, Operand<TFloat32> u) {
    }

    /**
     * The kernel transform: kron(G, G) [a², 9] · g [9, Cin·Cout] → {@code [a², Cin, Cout]}. It waits for
     * {@code after} (the layer's input) when that is not null: the weights are ready when the call starts, and
     * without the wait TF's executor transforms every layer's kernel at once and holds them all (+2.6 GB measured on
     * the SD 1.5 UNet) instead of one layer's at a time.
     */
    static Operand<TFloat32> transformKernel(Ops tf, Operand<TFloat32> kernel, Variant v, Operand<?> after) {
        long cin = Shapes.dim(kernel, 2, "winograd kernel"), cout = Shapes.dim(kernel, 3, "winograd kernel");
        Ops t = after == null ? tf : tf.withControlDependencies(List.<org.tensorflow.op.Op>of(after));
        Operand<TFloat32> g9 = t.reshape(kernel, tf.constant(new long[]{9, cin * cout}));
        return tf.reshape(tf.linalg.matMul(matrix(tf, kron(v.g), kernel), g9),
                tf.constant(new long[]{(long) v.a * v.a, cin, cout}));
    }

    /** {@link #convValid} with the kernel already transformed by {@link #transformKernel} (shared by row bands). */
    static Operand<TFloat32> convValidTransformed(Ops tf, Operand<TFloat32> xp, Operand<TFloat32> u, Variant v) {
        long hp = Shapes.dim(xp, 1, "winograd input"), wp = Shapes.dim(xp, 2, "winograd input");
        long cin = Shapes.dim(xp, 3, "winograd input"), cout = Shapes.dim(u, 2, "winograd kernel");
        if (Shapes.dim(u, 1, "winograd kernel") != cin) {
            throw new IllegalArgumentException("winograd: kernel " + u.shape() + " does not take " + cin + " channels");
        }
        long ho = hp - 2, wo = wp - 2;
        int m = v.m, a = v.a;
        long th = (ho + m - 1) / m, tw = (wo + m - 1) / m;
        // the tiles cover th·m + 2 rows and tw·m + 2 columns: pad the bottom and right edges with zeros
        long extraH = th * m + 2 - hp, extraW = tw * m + 2 - wp;
        Operand<TFloat32> x = xp;
        if (extraH > 0 || extraW > 0) {
            x = tf.pad(xp, tf.constant(new long[][]{{0, 0}, {0, extraH}, {0, extraW}, {0, 0}}),
                    Shapes.scalar(tf, 0f, xp));
        }
        long aa = (long) a * a;
        // input transform: [N, th, tw, a·a·Cin] → [P, a², Cin] → [a², P·Cin] → kron(Bᵀ, Bᵀ) · that
        Operand<TFloat32> patches = tf.image.extractImagePatches(x, List.of(1L, (long) a, (long) a, 1L),
                List.of(1L, (long) m, (long) m, 1L), List.of(1L, 1L, 1L, 1L), "VALID");
        Operand<TFloat32> d = tf.reshape(patches, tf.constant(new long[]{-1, aa, cin}));
        d = tf.linalg.transpose(d, tf.constant(new int[]{1, 0, 2}));
        d = tf.reshape(d, tf.constant(new long[]{aa, -1}));
        Operand<TFloat32> vIn = tf.linalg.matMul(matrix(tf, kron(v.bt), xp), d);
        vIn = tf.reshape(vIn, tf.constant(new long[]{aa, -1, cin}));
        // the a² products of every tile with every output channel
        Operand<TFloat32> prod = products(tf, vIn, u, aa); // [a², P, Cout]
        // output transform: kron(Aᵀ, Aᵀ) [m², a²] · [a², P·Cout] → [m, m, N, th, tw, Cout] → image
        Operand<TFloat32> y = tf.linalg.matMul(matrix(tf, kron(v.at), xp),
                tf.reshape(prod, tf.constant(new long[]{aa, -1})));
        y = tf.reshape(y, tf.constant(new long[]{m, m, -1, th, tw, cout}));
        y = tf.linalg.transpose(y, tf.constant(new int[]{2, 3, 0, 4, 1, 5}));
        y = tf.reshape(y, tf.constant(new long[]{-1, th * m, tw * m, cout}));
        if (th * m != ho || tw * m != wo) {
            y = tf.stridedSlice(y, tf.constant(new long[]{0, 0, 0, 0}), tf.constant(new long[]{0, ho, wo, 0}),
                    tf.constant(new long[]{1, 1, 1, 1}),
                    org.tensorflow.op.core.StridedSlice.beginMask(9L).endMask(9L));
        }
        return y;
    }

    /**
     * The a² products {@code [a², P, Cin] × [a², Cin, Cout] → [a², P, Cout]}. In float32 each transform position is
     * its own 2-D MatMul (an unstack along the first axis shares the input's buffer; the a² results are stacked
     * back), so oneDNN runs each product with both threads inside it. One batched MatMul instead
     * ({@code -Dsdserve.winograd.products=batched}, read at graph build, the form before #20's last round) goes
     * through TF's per-batch sgemm blocks: against it, whole UNet calls took 0.83–0.92× the time at batch 1 and
     * 0.93–1.01× at batch 2 (README). Half precision keeps the batched form (the per-position form was measured in
     * float32 only).
     */
    static Operand<TFloat32> products(Ops tf, Operand<TFloat32> vIn, Operand<TFloat32> u, long aa) {
        if (Shapes.isHalf(vIn) || "batched".equals(System.getProperty("sdserve.winograd.products"))) {
            return Shapes.batchMatMul(tf, vIn, u);
        }
        List<Output<TFloat32>> xs = tf.unstack(vIn, aa).output();
        List<Output<TFloat32>> us = tf.unstack(u, aa).output();
        List<Operand<TFloat32>> ys = new ArrayList<>((int) aa);
        for (int i = 0; i < aa; i++) {
            ys.add(tf.linalg.matMul(xs.get(i), us.get(i)));
        }
        return tf.stack(ys);
    }
}
