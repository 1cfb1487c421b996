package dev.sdserve.engine.tf;

import java.util.ArrayList;
import java.util.List;

import org.tensorflow.Operand;
import org.tensorflow.op.Ops;
import org.tensorflow.op.math.Mean;
import org.tensorflow.types.TFloat32;

/**
 * GroupNorm over NHWC activations (PyTorch {@code GroupNorm(groups, C, eps)} semantics: biased variance over
 * H·W·(C/groups) per sample and group), optionally followed by SiLU. The per-channel affine and the normalisation
 * are folded into one scale and one shift per (sample, channel), so the full-size tensor sees only
 * mean, squared-difference mean, one multiply and one add (plus sigmoid and multiply for SiLU). The two means are
 * two-pass (the variance of the centred values, as torch computes it), each a MatMul with a row of ones.
 *
 * <p>Input {@code [N, H, W, C]} (or {@code [N, T, C]}) with static spatial and channel sizes; gamma and beta
 * {@code [C]}.
 */
public final class GroupNorm {
    private GroupNorm() {
    }

    public static Operand<TFloat32> norm(Ops tf, Operand<TFloat32> x, Operand<TFloat32> gamma,
                                         Operand<TFloat32> beta, int groups, double eps, boolean silu) {
        return norm(tf, x, gamma, beta, groups, eps, silu, true);
    }

    /**
     * As above; {@code matmulSums} false computes the statistics with TF's {@code Mean} over axes {1, 3} instead of
     * {@link #groupMean} (the same values; kept for before/after timing: 1.3–1.8× slower on the UNet's sizes,
     * 4–6× on the VAE's 128² and 256² levels).
     */
    public static Operand<TFloat32> norm(Ops tf, Operand<TFloat32> x, Operand<TFloat32> gamma,
                                         Operand<TFloat32> beta, int groups, double eps, boolean silu,
                                         boolean matmulSums) {
        int rank = x.shape().numDimensions();
        if (rank < 3) {
            throw new IllegalArgumentException("group norm input must be [N, ..., C], shape " + x.shape());
        }
        long c = Shapes.dim(x, rank - 1, "group norm input");
        long spatial = 1;
        for (int i = 1; i < rank - 1; i++) {
            spatial *= Shapes.dim(x, i, "group norm input");
        }
        if (groups < 1 || c % groups != 0) {
            throw new IllegalArgumentException("group norm: " + c + " channels not divisible into " + groups
                    + " groups");
        }
        long cg = c / groups;
        if (Shapes.isHalf(x)) { // statistics in float32 (as torch's autocast), result back in half
            return Shapes.castTo(tf, norm(tf, Shapes.castTo(tf, x, false), Shapes.castTo(tf, gamma, false),
                    Shapes.castTo(tf, beta, false), groups, eps, silu, matmulSums), true);
        }
        Operand<TFloat32> xr = tf.reshape(x, tf.constant(new long[]{-1, spatial, groups, cg}));
        Operand<TFloat32> mean, var;
        if (matmulSums) {
            mean = groupMean(tf, xr, spatial, groups, cg);                                     // [N,1,G,1]
            var = groupMean(tf, tf.math.squaredDifference(xr, mean), spatial, groups, cg);
        } else {
            Operand<org.tensorflow.types.TInt32> axes = tf.constant(new int[]{1, 3});
            mean = tf.math.mean(xr, axes, Mean.keepDims(true));
            var = tf.math.mean(tf.math.squaredDifference(xr, mean), axes, Mean.keepDims(true));
        }
        return normalise(tf, List.of(xr), List.of(x), mean, var, gamma, beta, groups, cg, eps, silu).get(0);
    }

    /**
     * The affine normalisation of each part ({@code xrs} [N, S_i, G, Cg], reshaped from {@code xs}) with the
     * statistics {@code mean} and {@code var} [N, 1, G, 1]: the per-channel affine and the normalisation folded into
     * one scale and one shift per (sample, channel), then SiLU if asked, each part back in its input's shape.
     */
    private static List<Operand<TFloat32>> normalise(Ops tf, List<Operand<TFloat32>> xrs, List<Operand<TFloat32>> xs,
                                                     Operand<TFloat32> mean, Operand<TFloat32> var,
                                                     Operand<TFloat32> gamma, Operand<TFloat32> beta, int groups,
                                                     long cg, double eps, boolean silu) {
        Operand<TFloat32> inv = tf.math.rsqrt(tf.math.add(var, tf.constant((float) eps)));
        Operand<TFloat32> scale = tf.math.mul(inv, tf.reshape(gamma, tf.constant(new long[]{1, 1, groups, cg})));
        Operand<TFloat32> shift = tf.math.sub(tf.reshape(beta, tf.constant(new long[]{1, 1, groups, cg})),
                tf.math.mul(mean, scale));                                                     // [N,1,G,Cg]
        List<Operand<TFloat32>> out = new ArrayList<>(xrs.size());
        for (int i = 0; i < xrs.size(); i++) {
            Operand<TFloat32> y = tf.math.add(tf.math.mul(xrs.get(i), scale), shift);
            if (silu) {
                y = tf.math.mul(y, tf.math.sigmoid(y));
            }
            out.add(tf.reshape(y, tf.shape(xs.get(i))));
        }
        return out;
    }

    /**
     * GroupNorm of one activation held as parts along its rows ({@code [N, H_i, W, C]} each, the same N, W and C; a
     * row-split network's halves): the statistics are those of the whole (each part's sums added, then the mean over
     * every position), and each part is normalised with them. One part is {@link #norm} itself, op for op.
     */
    public static List<Operand<TFloat32>> normParts(Ops tf, List<Operand<TFloat32>> parts, Operand<TFloat32> gamma,
                                                    Operand<TFloat32> beta, int groups, double eps, boolean silu) {
        if (parts.size() == 1) {
            return List.of(norm(tf, parts.get(0), gamma, beta, groups, eps, silu));
        }
        long c = -1, spatial = 0;
        List<Operand<TFloat32>> xrs = new ArrayList<>();
        List<Long> sizes = new ArrayList<>();
        for (Operand<TFloat32> x : parts) {
            int rank = x.shape().numDimensions();
            if (rank != 4 || Shapes.isHalf(x)) {
                throw new IllegalArgumentException("group norm over parts takes float32 [N, H, W, C], shape "
                        + x.shape());
            }
            long ci = Shapes.dim(x, 3, "group norm input");
            if (c >= 0 && ci != c) {
                throw new IllegalArgumentException("group norm parts differ in channels: " + c + " and " + ci);
            }
            c = ci;
            long s = Shapes.dim(x, 1, "group norm input") * Shapes.dim(x, 2, "group norm input");
            sizes.add(s);
            spatial += s;
        }
        if (groups < 1 || c % groups != 0) {
            throw new IllegalArgumentException("group norm: " + c + " channels not divisible into " + groups
                    + " groups");
        }
        long cg = c / groups;
        for (int i = 0; i < parts.size(); i++) {
            xrs.add(tf.reshape(parts.get(i), tf.constant(new long[]{-1, sizes.get(i), groups, cg})));
        }
        Operand<TFloat32> inv = tf.constant((float) (1.0 / (spatial * cg))); // 1 / values per group
        List<Operand<TFloat32>> sums = new ArrayList<>();
        for (int i = 0; i < parts.size(); i++) {
            sums.add(groupSum(tf, xrs.get(i), sizes.get(i), groups, cg));
        }
        Operand<TFloat32> mean = tf.math.mul(tf.math.addN(sums), inv);                                // [N,1,G,1]
        List<Operand<TFloat32>> sq = new ArrayList<>();
        for (int i = 0; i < parts.size(); i++) {
            sq.add(groupSum(tf, tf.math.squaredDifference(xrs.get(i), mean), sizes.get(i), groups, cg));
        }
        Operand<TFloat32> var = tf.math.mul(tf.math.addN(sq), inv);
        return normalise(tf, xrs, parts, mean, var, gamma, beta, groups, cg, eps, silu);
    }

    /**
     * Mean over the spatial positions and the channels of each group of {@code xr} [N, S, G, Cg] → [N, 1, G, 1]:
     * per-channel sums over S as one batched MatMul with a row of ones (a streaming pass at memory speed; TF's
     * Mean over axes {1, 3} of this layout is several times slower), then the Cg channels of each group.
     */
    private static Operand<TFloat32> groupMean(Ops tf, Operand<TFloat32> xr, long spatial, long groups, long cg) {
        return tf.math.mul(groupSum(tf, xr, spatial, groups, cg), tf.constant((float) (1.0 / (spatial * cg))));
    }

    /** The sum {@link #groupMean} divides: over the spatial positions and each group's channels, [N, 1, G, 1]. */
    private static Operand<TFloat32> groupSum(Ops tf, Operand<TFloat32> xr, long spatial, long groups, long cg) {
        float[][][] ones = new float[1][1][(int) spatial];
        java.util.Arrays.fill(ones[0][0], 1f);
        Operand<TFloat32> sums = Shapes.batchMatMul(tf, tf.constant(ones),
                tf.reshape(xr, tf.constant(new long[]{-1, spatial, groups * cg})));                 // [N,1,C]
        return tf.reduceSum(tf.reshape(sums, tf.constant(new long[]{-1, 1, groups, cg})),
                tf.constant(new int[]{3}), org.tensorflow.op.core.ReduceSum.keepDims(true));          // [N,1,G,1]
    }

    /** SiLU (x·sigmoid(x)). */
    public static Operand<TFloat32> silu(Ops tf, Operand<TFloat32> x) {
        return tf.math.mul(x, tf.math.sigmoid(x));
    }
}
