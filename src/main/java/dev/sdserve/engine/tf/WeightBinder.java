package dev.sdserve.engine.tf;

import org.tensorflow.Operand;
import org.tensorflow.ndarray.Shape;
import org.tensorflow.op.Ops;
import org.tensorflow.op.core.Placeholder;
import org.tensorflow.types.TFloat16;
import org.tensorflow.types.TFloat32;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Turns weight keys into graph inputs while a graph is built: one placeholder per key (with its static shape and
 * the stored dtype), fed at every run with the shared {@link Weights} tensor, so every graph and session of a model
 * reads the same single copy. Weights never become graph constants.
 *
 * <p>A weight held in half precision is cast to float32 in the graph; given an {@code after} operand (the layer's
 * input) the cast waits for it, so the float32 copy exists only while its layer runs instead of all of them at
 * the start of the call. The float32 value passes through a {@code PlaceholderWithDefault}: LoRA overrides (float32
 * tensors) are fed there. With half-precision compute ({@link ComputeDType#FP16}) the value is then cast to half.
 */
public final class WeightBinder {
    private final Weights weights;
    private final ComputeDType compute;
    private final Map<String, Placeholder<TFloat32>> bound = new LinkedHashMap<>();
    private final Map<String, Operand<TFloat32>> overridable = new LinkedHashMap<>();
    private final Map<String, Operand<TFloat32>> values = new LinkedHashMap<>();
    private final Map<Operand<TFloat32>, KernelTransformCache.Key> transforms = new LinkedHashMap<>();
    /** Read when the graph is built (so a benchmark can build the same network with and without the cache). */
    private final long transformBudget = KernelTransformCache.configuredBudgetBytes();
    private final long imageTransposedBudget = KernelTransformCache.Pool.IMAGE.budgetBytes();
    private final long textTransposedBudget = KernelTransformCache.Pool.TEXT.budgetBytes();

    public WeightBinder(Weights weights) {
        this(weights, ComputeDType.FP32);
    }

    public WeightBinder(Weights weights, ComputeDType compute) {
        this.weights = weights;
        this.compute = compute;
    }

    public ComputeDType compute() {
        return compute;
    }

    Operand<TFloat32> bind(Ops tf, String key) {
        return bind(tf, key, null);
    }

    /**
     * The weight as a graph value in the compute dtype (typed {@code Operand<TFloat32>} for the builders; with
     * {@link ComputeDType#FP16} it carries half values). Casts wait for {@code after} when it is not null.
     */
    @SuppressWarnings("unchecked")
    Operand<TFloat32> bind(Ops tf, String key, Operand<?> after) {
        Operand<TFloat32> v = values.get(key);
        if (v != null) {
            return v;
        }
        long[] shape = weights.shape(key); // throws naming the key if missing
        Ops c = after == null ? tf : tf.withControlDependencies(List.<org.tensorflow.op.Op>of(after));
        Operand<TFloat32> f32;
        if (weights.isHalf(key)) {
            Placeholder<TFloat16> p = tf.withName("w." + key).placeholder(TFloat16.class,
                    Placeholder.shape(Shape.of(shape)));
            bound.put(key, (Placeholder<TFloat32>) (Placeholder<?>) p);
            f32 = tf.withName("o." + key).placeholderWithDefault(c.dtypes.cast(p, TFloat32.class), Shape.of(shape));
        } else {
            Placeholder<TFloat32> p = tf.withName("w." + key).placeholder(TFloat32.class,
                    Placeholder.shape(Shape.of(shape)));
            bound.put(key, p);
            f32 = p;
        }
        overridable.put(key, f32);
        v = compute == ComputeDType.FP16 ? (Operand<TFloat32>) (Operand<?>) c.dtypes.cast(f32, TFloat16.class) : f32;
        values.put(key, v);
        return v;
    }

    boolean has(String key) {
        return weights.has(key);
    }

    /**
     * A Winograd transform of the weight {@code key} was built into the graph: with float32 compute, a float32
     * weight and a transform cache ({@link KernelTransformCache}), runs feed the precomputed transform there.
     */
    void transformed(String key, Winograd.Transformed t) {
        if (transformBudget > 0 && compute == ComputeDType.FP32 && !weights.isHalf(key)
                && values.get(key) != null) {
            transforms.put(t.u(), new KernelTransformCache.Key(key, t.variant()));
        }
    }

    /**
     * The weight {@code key} ({@code w}, bound) transposed to {@code [in, out]}, for a linear's {@code x · Wt}: a
     * graph value every run feeds with the model's held copy ({@link KernelTransformCache#reserve}); null when that
     * cannot be promised (half-precision compute or weight, no budget in {@code pool}, or it is spent), and the
     * caller keeps the {@code [out, in]} forms. A LoRA-merged weight fed as an override is transposed in the graph.
     */
    Operand<TFloat32> transposed(Ops tf, String key, Operand<TFloat32> w, KernelTransformCache.Pool pool) {
        KernelTransformCache.Key k = KernelTransformCache.Key.transposed(key, pool);
        long budget = budget(k);
        if (budget <= 0 || compute != ComputeDType.FP32 || weights.isHalf(key) || values.get(key) != w) {
            return null;
        }
        if (!weights.transforms().reserve(k, budget)) {
            return null;
        }
        long[] s = weights.shape(key);
        // behind a PlaceholderWithDefault: grappler folds a bare Transpose into the MatMul's transpose flag, and the
        // product would read the [out, in] weight again
        Operand<TFloat32> wt = tf.placeholderWithDefault(Nn.transpose2d(tf, w), Shape.of(s[1], s[0]));
        transforms.put(wt, k);
        return wt;
    }

    /**
     * The weights of {@code fused} (each bound: {@code values}, in order) stacked into one held tensor ({@link
     * KernelTransformCache.Fused}): a graph value every run feeds with the model's held copy; null when that cannot
     * be promised (as {@link #transposed}). A run that overrides any part (a LoRA merge) stacks in the graph.
     */
    Operand<TFloat32> fused(Ops tf, KernelTransformCache.Fused fused, List<Operand<TFloat32>> values,
                            KernelTransformCache.Pool pool) {
        KernelTransformCache.Key k = KernelTransformCache.Key.fused(fused, pool);
        long budget = budget(k);
        if (budget <= 0 || compute != ComputeDType.FP32) {
            return null;
        }
        long[][] shapes = new long[values.size()][];
        for (int i = 0; i < shapes.length; i++) {
            String key = fused.parts().get(i);
            if (weights.isHalf(key) || values.get(i) != this.values.get(key)) {
                return null;
            }
            shapes[i] = weights.shape(key);
        }
        if (!weights.transforms().reserve(k, budget)) {
            return null;
        }
        // behind a PlaceholderWithDefault, as transposed weights are (grappler would fold a bare Transpose away)
        Operand<TFloat32> u = tf.placeholderWithDefault(fused.build(tf, values, shapes),
                Shape.of(KernelTransformCache.Fused.shape(shapes)));
        transforms.put(u, k);
        return u;
    }

    /** Transform node → which weight and variant it is a transform of (see {@link #transformed}). */
    Map<Operand<TFloat32>, KernelTransformCache.Key> transforms() {
        return transforms;
    }

    /** The budget that applies to {@code key}'s kind of transform. */
    long budget(KernelTransformCache.Key key) {
        if (!key.isTranspose()) {
            return transformBudget;
        }
        return key.pool() == KernelTransformCache.Pool.TEXT ? textTransposedBudget : imageTransposedBudget;
    }

    long[] shape(String key) {
        return weights.shape(key);
    }

    /**
     * Weight key → its placeholder, fed with {@link Weights#tensor}. Placeholders of weights held in half precision
     * take a {@code TFloat16} (the static type says TFloat32 for compatibility with existing callers).
     */
    public Map<String, Placeholder<TFloat32>> bound() {
        return bound;
    }

    /** Weight key → the float32 node a LoRA override (a float32 tensor of the stored layout) is fed to. */
    public Map<String, Operand<TFloat32>> overridable() {
        return overridable;
    }

    public Weights weights() {
        return weights;
    }
}
