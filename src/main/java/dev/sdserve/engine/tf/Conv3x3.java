package dev.sdserve.engine.tf;

import java.util.ArrayList;
import java.util.List;

import org.tensorflow.Operand;
import org.tensorflow.op.Ops;
import org.tensorflow.types.TFloat32;

/**
 * 3×3 convolution, padding 1 on every side (PyTorch {@code Conv2d(k=3, padding=1)}), stride 1 or 2, as graph
 * builders that replace TF's {@code Conv2D} (which reaches about a third of the CPU's FMA peak here).
 *
 * <p>Conventions: activations NHWC with static H, W, C (the batch may be dynamic); kernel HWIO
 * {@code [3, 3, Cin, Cout]} (TF's Conv2D layout; a PyTorch OIHW kernel is {@code transpose(2, 3, 1, 0)}); bias
 * {@code [Cout]} or {@code null}. With stride 2 the input is padded by 1 on both sides (not TF's asymmetric SAME),
 * output {@code floor((H - 1) / 2) + 1}, as in PyTorch/diffusers downsamplers.
 */
public final class Conv3x3 {
    /** How the convolution is built. */
    public enum Method {
        /** TF's own Conv2D on the explicitly padded input (the reference). */
        NATIVE,
        /** ExtractImagePatches (one op builds the [N·H·W, 9·Cin] matrix) + one MatMul. */
        IM2COL,
        /** The 9 shifted windows concatenated on the channel axis + one MatMul. */
        IM2COL_CONCAT
    }

    /** The method {@link #conv} uses. */
    public static final Method DEFAULT = Method.IM2COL;

    private Conv3x3() {
    }

    public static Operand<TFloat32> conv(Ops tf, Operand<TFloat32> x, Operand<TFloat32> kernel,
                                         Operand<TFloat32> bias, int stride) {
        return conv(tf, x, kernel, bias, stride, DEFAULT);
    }

    public static Operand<TFloat32> conv(Ops tf, Operand<TFloat32> x, Operand<TFloat32> kernel,
                                         Operand<TFloat32> bias, int stride, Method method) {
        Shapes.rank(x, 4, "conv3x3 input");
        Operand<TFloat32> xp = tf.pad(x, tf.constant(new int[][]{{0, 0}, {1, 1}, {1, 1}, {0, 0}}),
                tf.constant(0f));
        return convValid(tf, xp, kernel, bias, stride, method);
    }

    /**
     * 3×3 convolution without padding ("VALID") on an input the caller has already padded as it needs (e.g. the
     * VAE encoder's asymmetric (0, 1) padding): output {@code floor((Hp − 3) / stride) + 1}.
     */
    public static Operand<TFloat32> convValid(Ops tf, Operand<TFloat32> xp, Operand<TFloat32> kernel,
                                              Operand<TFloat32> bias, int stride, Method method) {
        Shapes.rank(xp, 4, "conv3x3 input");
        Shapes.rank(kernel, 4, "conv3x3 kernel");
        if (stride != 1 && stride != 2) {
            throw new IllegalArgumentException("conv3x3 stride must be 1 or 2, got " + stride);
        }
        long hp = Shapes.dim(xp, 1, "conv3x3 input"), wp = Shapes.dim(xp, 2, "conv3x3 input");
        long cin = Shapes.dim(xp, 3, "conv3x3 input");
        if (hp < 3 || wp < 3) {
            throw new IllegalArgumentException("conv3x3: padded input " + xp.shape() + " smaller than the kernel");
        }
        if (Shapes.dim(kernel, 0, "conv3x3 kernel") != 3 || Shapes.dim(kernel, 1, "conv3x3 kernel") != 3
                || Shapes.dim(kernel, 2, "conv3x3 kernel") != cin) {
            throw new IllegalArgumentException("conv3x3 kernel must be [3, 3, " + cin + ", Cout], got "
                    + kernel.shape());
        }
        long cout = Shapes.dim(kernel, 3, "conv3x3 kernel");
        long ho = (hp - 3) / stride + 1, wo = (wp - 3) / stride + 1;
        Operand<TFloat32> y;
        switch (method) {
            case NATIVE -> y = tf.nn.conv2d(xp, kernel, List.of(1L, (long) stride, (long) stride, 1L), "VALID");
            case IM2COL, IM2COL_CONCAT -> {
                Operand<TFloat32> cols;
                if (method == Method.IM2COL) {
                    cols = tf.image.extractImagePatches(xp, List.of(1L, 3L, 3L, 1L),
                            List.of(1L, (long) stride, (long) stride, 1L), List.of(1L, 1L, 1L, 1L), "VALID");
                } else {
                    List<Operand<TFloat32>> parts = new ArrayList<>(9);
                    for (int dy = 0; dy < 3; dy++) {
                        for (int dx = 0; dx < 3; dx++) {
                            parts.add(tf.stridedSlice(xp, tf.constant(new int[]{0, dy, dx, 0}),
                                    tf.constant(new int[]{0, dy + (int) ((ho - 1) * stride + 1),
                                            dx + (int) ((wo - 1) * stride + 1), 0}),
                                    tf.constant(new int[]{1, stride, stride, 1}),
                                    org.tensorflow.op.core.StridedSlice.beginMask(9L).endMask(9L)));
                        }
                    }
                    cols = tf.concat(parts, tf.constant(3));
                }
                Operand<TFloat32> m = tf.reshape(cols, tf.constant(new long[]{-1, 9 * cin}));
                Operand<TFloat32> k2 = tf.reshape(kernel, tf.constant(new long[]{9 * cin, cout}));
                y = tf.linalg.matMul(m, k2);
                if (bias != null) {
                    y = tf.nn.biasAdd(y, bias);
                    bias = null;
                }
                y = tf.reshape(y, tf.constant(new long[]{-1, ho, wo, cout}));
            }
            default -> throw new IllegalStateException();
        }
        if (bias != null) {
            y = tf.nn.biasAdd(y, bias);
        }
        return y;
    }

    /** Dense multiply-add FLOPs of one call (2 per MAC), independent of the method. */
    public static double flops(long n, long h, long w, long cin, long cout, int stride) {
        long ho = (h - 1) / stride + 1, wo = (w - 1) / stride + 1;
        return 2.0 * n * ho * wo * 9 * cin * cout;
    }
}
