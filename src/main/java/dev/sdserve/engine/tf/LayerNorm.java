package dev.sdserve.engine.tf;

import org.tensorflow.Operand;
import org.tensorflow.op.Ops;
import org.tensorflow.op.math.Mean;
import org.tensorflow.types.TFloat32;

/** LayerNorm over the last axis (biased variance, PyTorch semantics); gamma and beta {@code [C]}. */
public final class LayerNorm {
    private LayerNorm() {
    }

    public static Operand<TFloat32> norm(Ops tf, Operand<TFloat32> x, Operand<TFloat32> gamma,
                                         Operand<TFloat32> beta, double eps) {
        int rank = x.shape().numDimensions();
        if (rank < 1) {
            throw new IllegalArgumentException("layer norm input needs a channel axis, shape " + x.shape());
        }
        Operand<org.tensorflow.types.TInt32> axis = tf.constant(new int[]{rank - 1});
        Operand<TFloat32> mean = tf.math.mean(x, axis, Mean.keepDims(true));
        Operand<TFloat32> var = tf.math.mean(tf.math.squaredDifference(x, mean), axis, Mean.keepDims(true));
        Operand<TFloat32> inv = tf.math.rsqrt(tf.math.add(var, tf.constant((float) eps)));
        // (x − mean)·inv·γ + β, with the per-row factors applied once to the full tensor.
        return tf.math.add(tf.math.mul(tf.math.mul(tf.math.sub(x, mean), inv), gamma), beta);
    }
}
