package dev.sdserve.engine.tf;

import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

import org.tensorflow.Graph;
import org.tensorflow.Operand;
import org.tensorflow.Result;
import org.tensorflow.Session;
import org.tensorflow.ndarray.Shape;
import org.tensorflow.op.Ops;
import org.tensorflow.op.core.Placeholder;
import org.tensorflow.types.TFloat32;

/**
 * Winograd kernel transforms of one model's weights, computed once and fed to every call instead of being
 * recomputed in the graph on each ({@link Winograd#transformKernel}: a memory-bound {@code [a², 9] · [9, Cin·Cout]}
 * MatMul per layer that reads the kernel and writes 16/9 (F(2,3)) or 4 (F(4,3)) times its size); and, the same way,
 * linear weights stored transposed ({@code [out, in]} as {@code [in, out]}, for {@link Nn#linear}'s
 * {@code x · Wt}), under budgets of their own per {@link Pool}: the image networks' ({@code
 * -Dsdserve.linearTransposeCacheMb}, default {@value #DEFAULT_TRANSPOSED_MB} MiB per model) and the text towers'
 * ({@code -Dsdserve.textTransposeCacheMb}, default {@value #DEFAULT_TEXT_TRANSPOSED_MB} MiB), so a text tower built
 * first does not take what the UNet, run at every step, would use.
 *
 * <p>Filled lazily: the first call of a graph that uses a layer's transform computes it (the same MatMul, in a small
 * graph of its own, so the values are those the graph would compute) and holds it while it fits the budget
 * ({@code -Dsdserve.winograd.kernelCacheMb}, default {@value #DEFAULT_MB} MiB per model; 0 turns the cache off and
 * the graphs transform on every call as before). Transforms that do not fit are computed in the graph as before. A
 * LoRA-merged kernel (a weight override) is never served from the cache: the graph transforms the override.
 */
final class KernelTransformCache implements AutoCloseable {
    static final long DEFAULT_MB = 1024;
    static final long DEFAULT_TRANSPOSED_MB = 1024;
    static final long DEFAULT_TEXT_TRANSPOSED_MB = 512;

    /** Whose budget a transposed weight counts against. */
    enum Pool {
        /** UNet, VAE: {@code sdserve.linearTransposeCacheMb}. */
        IMAGE("sdserve.linearTransposeCacheMb", DEFAULT_TRANSPOSED_MB),
        /** Text towers: {@code sdserve.textTransposeCacheMb}. */
        TEXT("sdserve.textTransposeCacheMb", DEFAULT_TEXT_TRANSPOSED_MB);

        final String property;
        final long defaultMb;

        Pool(String property, long defaultMb) {
            this.property = property;
            this.defaultMb = defaultMb;
        }

        /** The configured budget in bytes (0 = none), read now. */
        long budgetBytes() {
            return Math.max(0, Long.getLong(property, defaultMb)) << 20;
        }
    }

    /**
     * A weight key and the Winograd variant of its transform; variant null: the weight transposed (or, with
     * {@code fused}, several weights stacked into one), counted in {@code pool}.
     */
    record Key(String weight, Winograd.Variant variant, Pool pool, Fused fused) {
        Key(String weight, Winograd.Variant variant) {
            this(weight, variant, null, null);
        }

        /** A 2-D weight {@code [out, in]} as {@code [in, out]}. */
        static Key transposed(String weight, Pool pool) {
            return new Key(weight, null, pool, null);
        }

        /** Weights stacked as {@code fused} says, counted in {@code pool}. */
        static Key fused(Fused fused, Pool pool) {
            return new Key(fused.parts().get(0), null, pool, fused);
        }

        boolean isTranspose() {
            return variant == null;
        }

        /** Every weight the held tensor is computed from. */
        List<String> weights() {
            return fused == null ? List.of(weight) : fused.parts();
        }
    }

    /**
     * Weights of one input stacked into one product's operand: the parts (all 2-D {@code [out_i, in]}, or all 1-D
     * biases {@code [out_i]}) concatenated along their first axis, the first {@code scaledRows} rows of the stack
     * multiplied by {@code scale}, and a 2-D stack transposed to {@code [in, Σ out_i]}. A text tower's q, k and v
     * projections become one {@code x · Wt} with the attention's 1/√d folded into q's rows.
     */
    record Fused(List<String> parts, long scaledRows, float scale) {
        Fused {
            parts = List.copyOf(parts);
            if (parts.isEmpty()) {
                throw new IllegalArgumentException("nothing to fuse");
            }
        }

        /** The stack of {@code values} (the parts' values, in order), built into {@code tf}'s graph. */
        Operand<TFloat32> build(Ops tf, List<Operand<TFloat32>> values, long[][] shapes) {
            Operand<TFloat32> s = values.size() == 1 ? values.get(0) : tf.concat(values, tf.constant(0));
            long rows = rows(shapes);
            boolean matrix = shapes[0].length == 2;
            if (scaledRows > 0 && scale != 1f) {
                float[] f = new float[(int) rows];
                java.util.Arrays.fill(f, 1f);
                java.util.Arrays.fill(f, 0, (int) Math.min(rows, scaledRows), scale);
                Operand<TFloat32> c = tf.constant(f);
                if (matrix) {
                    c = tf.reshape(c, tf.constant(new long[]{rows, 1}));
                }
                s = tf.math.mul(s, c);
            }
            return matrix ? Nn.transpose2d(tf, s) : s;
        }

        /** The held tensor's shape: {@code [in, Σ out_i]} or {@code [Σ out_i]}. */
        static long[] shape(long[][] shapes) {
            return shapes[0].length == 2 ? new long[]{shapes[0][1], rows(shapes)} : new long[]{rows(shapes)};
        }

        /** Rows of the stack: the parts' first dimensions summed. */
        private static long rows(long[][] shapes) {
            long rows = 0;
            for (long[] shape : shapes) {
                rows += shape[0];
            }
            return rows;
        }
    }

    private final Weights weights;
    private final Map<Key, TFloat32> held = new HashMap<>();
    /** Transforms that did not fit the budget when asked (not retried until the cache is cleared). */
    private final Set<Key> refused = new HashSet<>();
    /** Transposed weights promised to a graph when it was built ({@link #reserve}), counted, computed on first use. */
    private final Set<Key> reserved = new HashSet<>();
    private long bytes;
    /** Of {@link #bytes}, the transposed weights, by pool (each has its own budget). */
    private final Map<Pool, Long> transposedBytes = new java.util.EnumMap<>(Pool.class);

    KernelTransformCache(Weights weights) {
        this.weights = weights;
    }

    static long configuredBudgetBytes() {
        return Math.max(0, Long.getLong("sdserve.winograd.kernelCacheMb", DEFAULT_MB)) << 20;
    }

    /**
     * The transform of {@code key.weight()} by {@code key.variant()}, {@code [a², Cin, Cout]} (or the weight
     * transposed), computing and holding it when it fits {@code budgetBytes} (with what of its kind is already held);
     * null when it does not.
     */
    synchronized TFloat32 get(Key key, long budgetBytes) {
        TFloat32 t = held.get(key);
        if (t != null || refused.contains(key)) {
            return t;
        }
        long[] s = weights.shape(key.weight());
        if (reserved.remove(key)) { // already counted
            t = compute(key);
            held.put(key, t);
            return t;
        }
        long size = size(key, s);
        long used = key.isTranspose() ? transposed(key.pool()) : bytes - transposedBytes();
        if (used + size > budgetBytes) {
            refused.add(key);
            return null;
        }
        t = compute(key);
        held.put(key, t);
        bytes += size;
        if (key.isTranspose()) {
            transposedBytes.merge(key.pool(), size, Long::sum);
        }
        return t;
    }

    /**
     * Promises the transposed weight {@code key} to a graph being built: true when it is held or reserved, or fits
     * {@code budgetBytes} with what is held and reserved (then it is counted now and computed on first use), so a
     * graph takes the transposed form only when every run will be fed the copy.
     */
    synchronized boolean reserve(Key key, long budgetBytes) {
        if (!key.isTranspose()) {
            throw new IllegalArgumentException("only transposed weights are reserved: " + key);
        }
        if (held.containsKey(key) || reserved.contains(key)) {
            return true;
        }
        if (refused.contains(key)) {
            return false;
        }
        long size = size(key, weights.shape(key.weight()));
        if (transposed(key.pool()) + size > budgetBytes) {
            refused.add(key);
            return false;
        }
        reserved.add(key);
        bytes += size;
        transposedBytes.merge(key.pool(), size, Long::sum);
        return true;
    }

    private long size(Key key, long[] s) {
        if (key.fused() != null) {
            long n = 0;
            for (String part : key.weights()) {
                long e = 1;
                for (long d : weights.shape(part)) {
                    e *= d;
                }
                n += e;
            }
            return 4L * n;
        }
        return key.isTranspose() ? 4L * s[0] * s[1] : 4L * key.variant().a * key.variant().a * s[2] * s[3];
    }

    /** The transform {@code key} names, computed once by the same ops a graph would compute it with. */
    private TFloat32 compute(Key key) {
        try (Graph g = new Graph(); Session session = new Session(g, TfGraph.sessionConfig())) {
            Ops tf = Ops.create(g);
            List<String> parts = key.weights();
            long[][] shapes = new long[parts.size()][];
            List<Operand<TFloat32>> in = new java.util.ArrayList<>();
            for (int i = 0; i < shapes.length; i++) {
                shapes[i] = weights.shape(parts.get(i));
                in.add(tf.placeholder(TFloat32.class, Placeholder.shape(Shape.of(shapes[i]))));
            }
            Operand<TFloat32> u = key.fused() != null ? key.fused().build(tf, in, shapes)
                    : key.isTranspose() ? Nn.transpose2d(tf, in.get(0))
                    : Winograd.transformKernel(tf, in.get(0), key.variant(), null);
            Session.Runner r = session.runner();
            for (int i = 0; i < shapes.length; i++) {
                r.feed(in.get(i), weights.get(parts.get(i)));
            }
            try (Result res = r.fetch(u).run()) {
                TFloat32 out = (TFloat32) res.get(0);
                return TFloat32.tensorOf(out.shape(), out::copyTo);
            }
        }
    }

    /** Drops the transforms of {@code weight} (its tensor was replaced). */
    synchronized void forget(String weight) {
        held.entrySet().removeIf(e -> {
            if (e.getKey().weights().contains(weight)) {
                if (e.getKey().isTranspose()) {
                    reserved.add(e.getKey()); // graphs were built for it: recomputed from the new weight on next use
                } else {
                    bytes -= e.getValue().numBytes();
                }
                e.getValue().close();
                return true;
            }
            return false;
        });
        refused.removeIf(k -> k.weights().contains(weight));
    }

    /** Bytes of transforms held (Winograd's and transposed weights, reserved ones included). */
    synchronized long bytes() {
        return bytes;
    }

    /** Of {@link #bytes()}, the transposed linear weights. */
    synchronized long transposedBytes() {
        return transposedBytes.values().stream().mapToLong(Long::longValue).sum();
    }

    /** Of {@link #transposedBytes()}, those counted in {@code pool}. */
    synchronized long transposed(Pool pool) {
        return transposedBytes.getOrDefault(pool, 0L);
    }

    synchronized int size() {
        return held.size();
    }

    @Override
    public synchronized void close() {
        held.values().forEach(TFloat32::close);
        held.clear();
        refused.clear();
        reserved.clear();
        bytes = 0;
        transposedBytes.clear();
    }
}
