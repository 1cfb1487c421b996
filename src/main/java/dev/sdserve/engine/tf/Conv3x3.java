package dev.sdserve.engine.tf;

import java.util.ArrayList;
import java.util.List;
import java.util.function.Consumer;

import org.tensorflow.Operand;
import org.tensorflow.op.Ops;
import org.tensorflow.types.TFloat32;

/**
 * 3×3 convolution, padding 1 on every side (PyTorch {@code Conv2d(k=3, padding=1)}), stride 1 or 2, as graph
 * builders that replace TF's {@code Conv2D} (which reaches about a third of the CPU's FMA peak here): im2col +
 * MatMul, or Winograd's minimal filtering ({@link Winograd}), chosen per layer by {@link Method#AUTO}.
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
        IM2COL_CONCAT,
        /** Winograd F(2×2, 3×3) ({@link Winograd}): 4 multiplies per output instead of 9; stride 2 uses IM2COL. */
        WINOGRAD2,
        /** Winograd F(4×4, 3×3): 2.25 multiplies per output; stride 2 uses IM2COL. */
        WINOGRAD4,
        /**
         * By output pixels per sample, from {@code KernelBench} on SD shapes (2 threads, AVX-512): stride 1 uses
         * WINOGRAD4 from {@link #AUTO_WINOGRAD4_PIXELS} (the UNet's 64×64 and 32×32 levels and every VAE level above
         * 64×64: 1.6–2.9× faster than Conv2D), WINOGRAD2 from {@link #AUTO_WINOGRAD2_PIXELS} (16×16: 1.2× faster
         * than im2col, where F(4,3)'s larger transforms lose), IM2COL below (8×8, 1280 channels: weight-bound, im2col
         * 2.2× faster than Conv2D). Stride 2 uses IM2COL up to {@link #AUTO_MAX_PIXELS} output pixels (16×16 → 8×8,
         * 1280 channels: 2.1× faster than Conv2D), NATIVE above (64×64 → 32×32, 320 channels: Conv2D 1.3–1.4×
         * faster than im2col at batch 1 and 2).
         */
        AUTO
    }

    /** Output pixels per sample up to which {@link Method#AUTO} uses im2col for stride-2 convolutions. */
    public static final long AUTO_MAX_PIXELS = Long.getLong("sdserve.im2colMaxPixels", 16 * 16);

    /** Output pixels per sample from which {@link Method#AUTO} uses Winograd F(4,3) for stride 1. */
    public static final long AUTO_WINOGRAD4_PIXELS = Long.getLong("sdserve.winograd4MinPixels", 32 * 32);

    /** Output pixels per sample from which {@link Method#AUTO} uses Winograd F(2,3) for stride 1 (below F(4,3)'s). */
    public static final long AUTO_WINOGRAD2_PIXELS = Long.getLong("sdserve.winograd2MinPixels", 16 * 16);

    /** The method {@link #conv} uses. */
    public static final Method DEFAULT = Method.AUTO;

    /**
     * Largest intermediate per sample (bytes) built at once: the im2col matrix, or Winograd's transformed tiles.
     * Larger convolutions (the VAE decoder's 512×512×128 and ×256 layers would need 0.6–2.4 GB) are computed in
     * horizontal bands of output rows (whole tile rows for Winograd, sharing one kernel transform), each a
     * convolution of its own, and concatenated. {@code -Dsdserve.im2colMaxBytes} overrides (for tests and tuning).
     */
    static final long MAX_IM2COL_BYTES = Long.getLong("sdserve.im2colMaxBytes", 128L << 20);

    private Conv3x3() {
    }

    public static Operand<TFloat32> conv(Ops tf, Operand<TFloat32> x, Operand<TFloat32> kernel,
                                         Operand<TFloat32> bias, int stride) {
        return conv(tf, x, kernel, bias, stride, DEFAULT);
    }

    public static Operand<TFloat32> conv(Ops tf, Operand<TFloat32> x, Operand<TFloat32> kernel,
                                         Operand<TFloat32> bias, int stride, Method method) {
        return conv(tf, x, kernel, bias, stride, method, null);
    }

    /** As {@link #conv(Ops, Operand, Operand, Operand, int, Method)}; {@code onTransform} (or null) is told a
     * Winograd kernel transform when one is built. */
    static Operand<TFloat32> conv(Ops tf, Operand<TFloat32> x, Operand<TFloat32> kernel, Operand<TFloat32> bias,
                                  int stride, Method method, Consumer<Winograd.Transformed> onTransform) {
        Shapes.rank(x, 4, "conv3x3 input");
        Operand<TFloat32> xp = tf.pad(x, tf.constant(new int[][]{{0, 0}, {1, 1}, {1, 1}, {0, 0}}),
                Shapes.scalar(tf, 0f, x));
        return bandedValid(tf, xp, kernel, bias, stride, method, MAX_IM2COL_BYTES, onTransform);
    }

    /**
     * 3×3 convolution without padding ("VALID") on an input the caller has already padded as it needs (e.g. the
     * VAE encoder's asymmetric (0, 1) padding): output {@code floor((Hp − 3) / stride) + 1}.
     */
    public static Operand<TFloat32> convValid(Ops tf, Operand<TFloat32> xp, Operand<TFloat32> kernel,
                                              Operand<TFloat32> bias, int stride, Method method) {
        return bandedValid(tf, xp, kernel, bias, stride, method, MAX_IM2COL_BYTES, null);
    }

    /** As {@link #convValid(Ops, Operand, Operand, Operand, int, Method)} with {@code onTransform} (or null). */
    static Operand<TFloat32> convValid(Ops tf, Operand<TFloat32> xp, Operand<TFloat32> kernel, Operand<TFloat32> bias,
                                       int stride, Method method, Consumer<Winograd.Transformed> onTransform) {
        return bandedValid(tf, xp, kernel, bias, stride, method, MAX_IM2COL_BYTES, onTransform);
    }

    /** {@link #convValid} with an explicit per-sample im2col size limit (bytes) above which rows are banded. */
    static Operand<TFloat32> bandedValid(Ops tf, Operand<TFloat32> xp, Operand<TFloat32> kernel,
                                         Operand<TFloat32> bias, int stride, Method method, long maxIm2colBytes) {
        return bandedValid(tf, xp, kernel, bias, stride, method, maxIm2colBytes, null);
    }

    private static Operand<TFloat32> bandedValid(Ops tf, Operand<TFloat32> xp, Operand<TFloat32> kernel,
                                                 Operand<TFloat32> bias, int stride, Method method,
                                                 long maxIm2colBytes, Consumer<Winograd.Transformed> onTransform) {
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
        if (method == Method.AUTO) {
            method = auto(ho * wo, stride, Shapes.isHalf(xp));
        }
        if ((method == Method.WINOGRAD2 || method == Method.WINOGRAD4) && stride != 1) {
            method = Method.IM2COL;
        }
        Winograd.Variant wino = method == Method.WINOGRAD2 ? Winograd.Variant.F2
                : method == Method.WINOGRAD4 ? Winograd.Variant.F4 : null;
        // bytes of the largest intermediate per output row: the im2col matrix, or Winograd's transformed tiles
        long rowBytes = wino == null ? wo * 9 * cin * 4
                : (wo + wino.m - 1) / wino.m * wino.a * wino.a * Math.max(cin, cout) * 4 / wino.m;
        int rowStep = wino == null ? 1 : wino.m; // Winograd bands hold whole tile rows
        if (method != Method.NATIVE && ho > rowStep && ho * rowBytes > maxIm2colBytes) {
            long bandRows = Math.max(rowStep, maxIm2colBytes / rowBytes / rowStep * rowStep);
            List<Operand<TFloat32>> bands = new ArrayList<>();
            Operand<TFloat32> u = wino == null ? null : Winograd.transformKernel(tf, kernel, wino, xp);
            if (u != null && onTransform != null) {
                onTransform.accept(new Winograd.Transformed(wino, u));
            }
            for (long r0 = 0; r0 < ho; r0 += bandRows) {
                long r1 = Math.min(ho, r0 + bandRows);
                // output rows [r0, r1) read padded rows [r0·s, (r1 − 1)·s + 3)
                Operand<TFloat32> band = tf.stridedSlice(xp, tf.constant(new long[]{0, r0 * stride, 0, 0}),
                        tf.constant(new long[]{0, (r1 - 1) * stride + 3, 0, 0}), tf.constant(new long[]{1, 1, 1, 1}),
                        org.tensorflow.op.core.StridedSlice.beginMask(13L).endMask(13L));
                bands.add(wino != null ? Winograd.convValidTransformed(tf, band, u, wino)
                        : bandedValid(tf, band, kernel, null, stride, method, Long.MAX_VALUE, null));
            }
            Operand<TFloat32> y = tf.concat(bands, tf.constant(1));
            return bias == null ? y : tf.nn.biasAdd(y, bias);
        }
        Operand<TFloat32> y;
        switch (method) {
            case WINOGRAD2, WINOGRAD4 -> y = Winograd.convValid(tf, xp, kernel, wino, onTransform);
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

    /** What {@link Method#AUTO} builds for {@code pixels} output pixels per sample at this stride and precision. */
    static Method auto(long pixels, int stride, boolean half) {
        // read when a graph is built (so a benchmark can build the same network with other thresholds side by side)
        if (stride != 1) {
            return pixels <= Long.getLong("sdserve.im2colMaxPixels", AUTO_MAX_PIXELS) ? Method.IM2COL : Method.NATIVE;
        }
        // half precision: F(4,3)'s transform constants (up to 8 and 1/24) cost too many of half's 11 bits (VAE
        // encode 1.4e-2 off diffusers, over the half tolerance); F(2,3)'s (0, ±1, ±½) lose no more than a direct sum
        if (pixels >= Long.getLong("sdserve.winograd4MinPixels", AUTO_WINOGRAD4_PIXELS) && !half) {
            return Method.WINOGRAD4;
        }
        return pixels >= Long.getLong("sdserve.winograd2MinPixels", AUTO_WINOGRAD2_PIXELS) ? Method.WINOGRAD2
                : Method.IM2COL;
    }

    /** Dense multiply-add FLOPs of one call (2 per MAC), independent of the method. */
    public static double flops(long n, long h, long w, long cin, long cout, int stride) {
        long ho = (h - 1) / stride + 1, wo = (w - 1) / stride + 1;
        return 2.0 * n * ho * wo * 9 * cin * cout;
    }
}
