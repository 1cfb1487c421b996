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

    static void rank(Operand<?> x, int rank, String what) {
        Shape s = x.shape();
        if (s.isUnknown() || s.numDimensions() != rank) {
            throw new IllegalArgumentException(what + ": expected rank " + rank + ", shape " + s);
        }
    }
}
