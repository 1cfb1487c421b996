package dev.sdserve.engine.tf;

import java.util.ArrayList;
import java.util.List;

import org.tensorflow.Operand;
import org.tensorflow.op.Ops;
import org.tensorflow.op.core.StridedSlice;
import org.tensorflow.types.TFloat32;

/**
 * Multi-head scaled dot-product attention (no mask) on already projected queries, keys and values, as two
 * batched MatMuls around a softmax.
 *
 * <p>Shapes: {@code q [B, Tq, H·D]}, {@code k} and {@code v [B, Tk, H·D]} with static T and channel sizes (B may
 * be dynamic); result {@code [B, Tq, H·D]}, heads concatenated in the order of the channel axis (the PyTorch
 * {@code view(B, T, H, D)} convention). With {@code queryChunk > 0} and {@code Tq > queryChunk} the queries are
 * processed in chunks of that many tokens, so the full {@code [B, H, Tq, Tk]} score tensor (512 MB for SD 1.5 at
 * 64×64 latents, batch 1) never exists at once; TF's executor still may run independent chunks concurrently.
 */
public final class Attention {
    /**
     * Query × key counts from which attention runs one head at a time ({@link #perHead}): 1024 × 1024, a 32×32
     * latent's self-attention (a 256² SD 1.5 image's first level). Below it (the 16×16 level, cross-attention,
     * the text encoder) all heads in one batched MatMul stay faster. {@code -Dsdserve.attention.perHeadMin},
     * read at graph build, moves it ({@code 9223372036854775807} = never).
     */
    static final long PER_HEAD_MIN = 1024L * 1024L;

    private Attention() {
    }

    public static Operand<TFloat32> attend(Ops tf, Operand<TFloat32> q, Operand<TFloat32> k, Operand<TFloat32> v,
                                           int heads, int queryChunk) {
        return attend(tf, q, k, v, heads, queryChunk, null);
    }

    /**
     * As {@link #attend(Ops, Operand, Operand, Operand, int, int)} with an additive {@code mask} (or null) added to
     * the scaled scores, broadcast over {@code [B, H, Tq, Tk]}: CLIP's causal {@code [Tq, Tk]} mask (queries not
     * chunked: the text encoder's 77 tokens do not need it), or a key mask {@code [B, 1, 1, Tk]} (0 for a sample's
     * own context tokens, a large negative number for padding) with queries chunked as without a mask.
     */
    public static Operand<TFloat32> attend(Ops tf, Operand<TFloat32> q, Operand<TFloat32> k, Operand<TFloat32> v,
                                           int heads, int queryChunk, Operand<TFloat32> mask) {
        return attend(tf, q, k, v, heads, queryChunk, mask, false);
    }

    /**
     * As {@link #attend(Ops, Operand, Operand, Operand, int, int, Operand)}; {@code qScaled}: the queries already
     * carry the 1/√d scale (folded into their projection), so none is applied here.
     */
    public static Operand<TFloat32> attend(Ops tf, Operand<TFloat32> q, Operand<TFloat32> k, Operand<TFloat32> v,
                                           int heads, int queryChunk, Operand<TFloat32> mask, boolean qScaled) {
        Shapes.rank(q, 3, "attention q");
        Shapes.rank(k, 3, "attention k");
        Shapes.rank(v, 3, "attention v");
        long tq = Shapes.dim(q, 1, "attention q"), c = Shapes.dim(q, 2, "attention q");
        long tk = Shapes.dim(k, 1, "attention k");
        if (Shapes.dim(k, 2, "attention k") != c || Shapes.dim(v, 2, "attention v") != c
                || Shapes.dim(v, 1, "attention v") != tk) {
            throw new IllegalArgumentException("attention shapes do not fit: q " + q.shape() + ", k " + k.shape()
                    + ", v " + v.shape());
        }
        if (heads < 1 || c % heads != 0) {
            throw new IllegalArgumentException("attention: " + c + " channels not divisible into " + heads
                    + " heads");
        }
        long d = c / heads;
        float scale = qScaled ? 1f : (float) (1.0 / Math.sqrt(d));
        if (mask == null && !Shapes.isHalf(q) && tq * tk >= Long.getLong("sdserve.attention.perHeadMin", PER_HEAD_MIN)) {
            return perHead(tf, q, k, v, heads, tq, tk, c, d, scale, queryChunk);
        }
        // [B, T, H, D] -> [B, H, T, D] (q, v) and [B, H, D, Tk] (k, so the first MatMul needs no adjoint).
        Operand<TFloat32> qs = scale == 1f ? q : tf.math.mul(q, Shapes.scalar(tf, scale, q));
        Operand<TFloat32> qh = tf.linalg.transpose(tf.reshape(qs, tf.constant(new long[]{-1, tq, heads, d})),
                tf.constant(new int[]{0, 2, 1, 3}));
        Operand<TFloat32> kh = tf.linalg.transpose(tf.reshape(k, tf.constant(new long[]{-1, tk, heads, d})),
                tf.constant(new int[]{0, 2, 3, 1}));
        Operand<TFloat32> vh = tf.linalg.transpose(tf.reshape(v, tf.constant(new long[]{-1, tk, heads, d})),
                tf.constant(new int[]{0, 2, 1, 3}));
        Operand<TFloat32> o;
        if (mask != null && mask.shape().numDimensions() == 4 && mask.shape().get(2) == 1) {
            // a key mask [B, 1, 1, Tk] (padded contexts): the same for every query, so queries may be chunked
            o = chunked(tf, qh, kh, vh, tq, queryChunk, mask);
        } else if (mask != null) {
            // scores and softmax in float32 (the mask's −1e30 does not fit half)
            Operand<TFloat32> sc = tf.math.add(Shapes.castTo(tf, Shapes.batchMatMul(tf, qh, kh), false),
                    Shapes.castTo(tf, mask, false));
            o = Shapes.batchMatMul(tf, Shapes.castTo(tf, tf.nn.softmax(sc), Shapes.isHalf(qh)), vh);
        } else {
            o = chunked(tf, qh, kh, vh, tq, queryChunk, null);
        }
        return tf.reshape(tf.linalg.transpose(o, tf.constant(new int[]{0, 2, 1, 3})), tf.constant(new long[]{-1, tq, c}));
    }

    /**
     * Self-attention over packed projections {@code qkv [B, T, 3·C]} (queries already scaled by 1/√d, then keys,
     * then values, each {@code C} wide) with an additive {@code mask} (or null) broadcast over {@code [B, H, T, T]}:
     * one transpose to {@code [3, B, H, T, D]} and an unstack give every head's q, k and v (the scores product
     * reads k with its adjoint flag). Float32, no query chunks (the text encoder's few tokens). Result
     * {@code [B, T, C]}.
     */
    public static Operand<TFloat32> attendPacked(Ops tf, Operand<TFloat32> qkv, int heads, Operand<TFloat32> mask) {
        Shapes.rank(qkv, 3, "packed attention");
        long t = Shapes.dim(qkv, 1, "packed attention"), c3 = Shapes.dim(qkv, 2, "packed attention");
        if (c3 % 3 != 0 || (c3 / 3) % heads != 0) {
            throw new IllegalArgumentException("packed attention: " + c3 + " channels not 3 × " + heads + " heads");
        }
        long c = c3 / 3, d = c / heads;
        Operand<TFloat32> all = tf.linalg.transpose(tf.reshape(qkv, tf.constant(new long[]{-1, t, 3, heads, d})),
                tf.constant(new int[]{2, 0, 3, 1, 4})); // [3, B, H, T, D]
        var qkvh = tf.unstack(all, 3L).output();
        Operand<TFloat32> sc = tf.train.batchMatMul(qkvh.get(0), qkvh.get(1), TFloat32.class,
                org.tensorflow.op.train.BatchMatMul.adjY(true));
        if (mask != null) {
            sc = tf.math.add(sc, mask);
        }
        Operand<TFloat32> o = Shapes.batchMatMul(tf, tf.nn.softmax(sc), qkvh.get(2)); // [B, H, T, D]
        return tf.reshape(tf.linalg.transpose(o, tf.constant(new int[]{0, 2, 1, 3})), tf.constant(new long[]{-1, t, c}));
    }

    /**
     * One head at a time (and within a head, {@code queryChunk} queries at a time): each head's scores, softmax and
     * product are finished before the next head's scores start (control dependencies), so the caches hold one
     * head's {@code [B, chunk, Tk]} scores rather than all heads' at once. Against all heads batched: the attention
     * alone 0.83–0.91× the time at 32×32 latents, batch 2, and 0.69–0.80× at 64×64, batch 1 ({@code KernelBench
     * attn}); whole UNet calls 0.93× / 0.97× at 64×64 (batch 1 / 2) and 0.96–1.02× at 32×32 (README).
     */
    private static Operand<TFloat32> perHead(Ops tf, Operand<TFloat32> q, Operand<TFloat32> k, Operand<TFloat32> v,
                                             int heads, long tq, long tk, long c, long d, float scale,
                                             int queryChunk) {
        Operand<TFloat32> scaled = scale == 1f ? q : tf.math.mul(q, Shapes.scalar(tf, scale, q));
        Operand<TFloat32> qh = tf.linalg.transpose(tf.reshape(scaled, tf.constant(new long[]{-1, tq, heads, d})),
                tf.constant(new int[]{2, 0, 1, 3})); // [H, B, Tq, D]
        Operand<TFloat32> kh = tf.linalg.transpose(tf.reshape(k, tf.constant(new long[]{-1, tk, heads, d})),
                tf.constant(new int[]{2, 0, 3, 1})); // [H, B, D, Tk]
        Operand<TFloat32> vh = tf.linalg.transpose(tf.reshape(v, tf.constant(new long[]{-1, tk, heads, d})),
                tf.constant(new int[]{2, 0, 1, 3})); // [H, B, Tk, D]
        var qs = tf.unstack(qh, (long) heads).output();
        var ks = tf.unstack(kh, (long) heads).output();
        var vs = tf.unstack(vh, (long) heads).output();
        List<Operand<TFloat32>> outs = new ArrayList<>();
        Operand<TFloat32> prev = null;
        long chunk = queryChunk <= 0 ? tq : Math.min(tq, queryChunk);
        for (int h = 0; h < heads; h++) {
            List<Operand<TFloat32>> parts = new ArrayList<>();
            for (long s0 = 0; s0 < tq; s0 += chunk) {
                long e = Math.min(tq, s0 + chunk);
                Operand<TFloat32> qc = qs.get(h);
                if (chunk < tq) {
                    qc = tf.stridedSlice(qc, tf.constant(new long[]{0, s0, 0}), tf.constant(new long[]{0, e, 0}),
                            tf.constant(new long[]{1, 1, 1}), StridedSlice.beginMask(5L).endMask(5L));
                }
                Ops t = prev == null ? tf : tf.withControlDependencies(List.<org.tensorflow.op.Op>of(prev));
                Operand<TFloat32> sc = Shapes.batchMatMul(t, qc, ks.get(h));
                Operand<TFloat32> o = Shapes.batchMatMul(tf, tf.nn.softmax(sc), vs.get(h));
                parts.add(o);
                prev = o;
            }
            outs.add(parts.size() == 1 ? parts.get(0) : tf.concat(parts, tf.constant(1)));
        }
        Operand<TFloat32> o = tf.linalg.transpose(tf.stack(outs), tf.constant(new int[]{1, 2, 0, 3})); // [B,Tq,H,D]
        return tf.reshape(o, tf.constant(new long[]{-1, tq, c}));
    }

    /** Attention of all queries, in chunks of {@code queryChunk} when there are more; {@code keyMask} or null. */
    private static Operand<TFloat32> chunked(Ops tf, Operand<TFloat32> qh, Operand<TFloat32> kh, Operand<TFloat32> vh,
                                             long tq, int queryChunk, Operand<TFloat32> keyMask) {
        if (queryChunk <= 0 || tq <= queryChunk) {
            return core(tf, qh, kh, vh, keyMask);
        }
        List<Operand<TFloat32>> parts = new ArrayList<>();
        for (long s = 0; s < tq; s += queryChunk) {
            long e = Math.min(tq, s + queryChunk);
            Operand<TFloat32> qc = tf.stridedSlice(qh, tf.constant(new long[]{0, 0, s, 0}),
                    tf.constant(new long[]{0, 0, e, 0}), tf.constant(new long[]{1, 1, 1, 1}),
                    StridedSlice.beginMask(11L).endMask(11L));
            parts.add(core(tf, qc, kh, vh, keyMask));
        }
        return tf.concat(parts, tf.constant(2));
    }

    private static Operand<TFloat32> core(Ops tf, Operand<TFloat32> qh, Operand<TFloat32> kh,
                                          Operand<TFloat32> vh, Operand<TFloat32> keyMask) {
        Operand<TFloat32> s = Shapes.castTo(tf, Shapes.batchMatMul(tf, qh, kh), false);
        if (keyMask != null) {
            s = tf.math.add(s, Shapes.castTo(tf, keyMask, false));
        }
        // softmax in float32 when computing in half (as torch's autocast does)
        Operand<TFloat32> p = Shapes.castTo(tf, tf.nn.softmax(s), Shapes.isHalf(qh));
        return Shapes.batchMatMul(tf, p, vh);
    }

    /** FLOPs of the two MatMuls of one call (2 per MAC). */
    public static double flops(long batch, long tq, long tk, long channels) {
        return 2.0 * 2.0 * batch * tq * tk * channels;
    }
}
