package dev.sdserve.engine.tf;

import org.tensorflow.Operand;
import org.tensorflow.ndarray.Shape;

/** Static-shape checks shared by the kernels (graphs are built per latent shape, so H, W and C are known). */
final class Shapes {
    private Shapes() {
    }

    /** Returns the static size of {@code dim}, failing with a message naming the operand if it is unknown. */
    static long dim(Operand<?> x, int dim, String what) {
        Shape s = x.shape();
        if (s.isUnknown() || s.numDimensions() <= dim) {
            throw new IllegalArgumentException(what + ": rank too low or unknown, shape " + s);
        }
        long d = s.size(dim);
        if (d < 0) {
            throw new IllegalArgumentException(what + ": dimension " + dim + " must be static, shape " + s);
        }
        return d;
    }

    /** True when {@code x} carries half-precision values (fp16 compute; builders type it Operand&lt;TFloat32&gt;). */
    static boolean isHalf(Operand<?> x) {
        return x.asOutput().dataType() == org.tensorflow.proto.DataType.DT_HALF;
    }

    /** A scalar constant in the dtype of {@code like} (float32 or half). */
    static Operand<org.tensorflow.types.TFloat32> scalar(org.tensorflow.op.Ops tf, float v, Operand<?> like) {
        Operand<org.tensorflow.types.TFloat32> c = tf.constant(v);
        return isHalf(like) ? castTo(tf, c, true) : c;
    }

    /** {@code x} cast to half ({@code half}) or float32, typed as the builders type every float operand. */
    @SuppressWarnings("unchecked")
    static Operand<org.tensorflow.types.TFloat32> castTo(org.tensorflow.op.Ops tf, Operand<org.tensorflow.types.TFloat32> x,
                                                        boolean half) {
        if (isHalf(x) == half) {
            return x;
        }
        return half ? (Operand<org.tensorflow.types.TFloat32>) (Operand<?>) tf.dtypes.cast(x, org.tensorflow.types.TFloat16.class)
                : tf.dtypes.cast(x, org.tensorflow.types.TFloat32.class);
    }

    /** The element class of {@code like}, as the builders type it (for ops that take an output type). */
    @SuppressWarnings("unchecked")
    static Class<org.tensorflow.types.TFloat32> typeOf(Operand<?> like) {
        return (Class<org.tensorflow.types.TFloat32>) (Class<?>) (isHalf(like) ? org.tensorflow.types.TFloat16.class
                : org.tensorflow.types.TFloat32.class);
    }

    /**
     * Batched {@code a · b}. Float32: TF Java's {@code BatchMatMulV3} (as before). Half: {@code BatchMatMulV2},
     * because TensorFlow 2.18 registers no half {@code BatchMatMulV3} kernel on the CPU while V2 has one (and
     * TF Java 1.1 wraps only V3, so V2 is built by name). {@code -Dsdserve.batchMatMul=v2} builds V2 in float32 too
     * (oneDNN's batched matmul instead of TF's per-batch sgemm blocks), for A/B runs only: it was 1.29× slower on a
     * 32×32 UNet call at batch 2 (README, "Where the rest of the time goes").
     */
    @SuppressWarnings("unchecked")
    static Operand<org.tensorflow.types.TFloat32> batchMatMul(org.tensorflow.op.Ops tf,
                                                             Operand<org.tensorflow.types.TFloat32> a,
                                                             Operand<org.tensorflow.types.TFloat32> b) {
        if (!isHalf(a) && !"v2".equals(System.getProperty("sdserve.batchMatMul"))) {
            return tf.train.batchMatMul(a, b, org.tensorflow.types.TFloat32.class);
        }
        org.tensorflow.OperationBuilder ob = tf.scope().opBuilder("BatchMatMulV2", "BatchMatMulV2");
        ob.addInput(a.asOutput());
        ob.addInput(b.asOutput());
        ob.setAttr("adj_x", false);
        ob.setAttr("adj_y", false);
        return (Operand<org.tensorflow.types.TFloat32>) (Operand<?>) ob.build().output(0);
    }

    static void rank(Operand<?> x, int rank, String what) {
        Shape s = x.shape();
        if (s.isUnknown() || s.numDimensions() != rank) {
            throw new IllegalArgumentException(what + ": expected rank " + rank + ", shape " + s);
        }
    }
}
