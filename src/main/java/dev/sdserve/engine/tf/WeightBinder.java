package dev.sdserve.engine.tf;

import org.tensorflow.Operand;
import org.tensorflow.ndarray.Shape;
import org.tensorflow.op.Ops;
import org.tensorflow.op.core.Placeholder;
import org.tensorflow.types.TFloat32;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Turns weight keys into graph inputs while a graph is built: one placeholder per key (with its static shape), fed
 * at every run with the shared {@link Weights} tensor. Weights never become graph constants.
 */
public final class WeightBinder {
    private final Weights weights;
    private final Map<String, Placeholder<TFloat32>> bound = new LinkedHashMap<>();

    public WeightBinder(Weights weights) {
        this.weights = weights;
    }

    Operand<TFloat32> bind(Ops tf, String key) {
        Placeholder<TFloat32> p = bound.get(key);
        if (p == null) {
            long[] shape = weights.shape(key); // throws naming the key if missing
            p = tf.withName("w." + key).placeholder(TFloat32.class,
                    Placeholder.shape(Shape.of(shape)));
            bound.put(key, p);
        }
        return p;
    }

    boolean has(String key) {
        return weights.has(key);
    }

    long[] shape(String key) {
        return weights.shape(key);
    }

    /** Placeholder → weight key, for feeding. */
    public Map<String, Placeholder<TFloat32>> bound() {
        return bound;
    }

    public Weights weights() {
        return weights;
    }
}
