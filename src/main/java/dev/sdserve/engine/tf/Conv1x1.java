package dev.sdserve.engine.tf;

import org.tensorflow.Operand;
import org.tensorflow.op.Ops;
import org.tensorflow.types.TFloat32;

/**
 * 1×1 convolution (and Linear layers on token sequences) as one MatMul over the flattened leading axes.
 * Input {@code [..., Cin]} with static Cin; kernel {@code [Cin, Cout]} or HWIO {@code [1, 1, Cin, Cout]}; bias
 * {@code [Cout]} or {@code null}. The output keeps the input's leading axes.
 */
public final class Conv1x1 {
    private Conv1x1() {
    }

    public static Operand<TFloat32> conv(Ops tf, Operand<TFloat32> x, Operand<TFloat32> kernel,
                                         Operand<TFloat32> bias) {
        int rank = x.shape().numDimensions();
        if (rank < 2) {
            throw new IllegalArgumentException("conv1x1 input must have rank >= 2, shape " + x.shape());
        }
        long cin = Shapes.dim(x, rank - 1, "conv1x1 input");
        int kr = kernel.shape().numDimensions();
        if (!(kr == 2 || kr == 4)) {
            throw new IllegalArgumentException("conv1x1 kernel must be [Cin, Cout] or [1, 1, Cin, Cout], got "
                    + kernel.shape());
        }
        long cout = Shapes.dim(kernel, kr - 1, "conv1x1 kernel");
        if (Shapes.dim(kernel, kr - 2, "conv1x1 kernel") != cin
                || (kr == 4 && (kernel.shape().size(0) != 1 || kernel.shape().size(1) != 1))) {
            throw new IllegalArgumentException("conv1x1 kernel " + kernel.shape() + " does not fit input channels "
                    + cin);
        }
        Operand<TFloat32> k2 = kr == 2 ? kernel : tf.reshape(kernel, tf.constant(new long[]{cin, cout}));
        Operand<TFloat32> y = tf.linalg.matMul(tf.reshape(x, tf.constant(new long[]{-1, cin})), k2);
        if (bias != null) {
            y = tf.nn.biasAdd(y, bias);
        }
        long[] outShape = new long[rank];
        outShape[0] = -1;
        for (int i = 1; i < rank - 1; i++) {
            outShape[i] = Shapes.dim(x, i, "conv1x1 input");
        }
        outShape[rank - 1] = cout;
        return tf.reshape(y, tf.constant(outShape));
    }
}
