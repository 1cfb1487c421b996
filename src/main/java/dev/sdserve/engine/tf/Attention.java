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
    private Attention() {
    }

    public static Operand<TFloat32> attend(Ops tf, Operand<TFloat32> q, Operand<TFloat32> k, Operand<TFloat32> v,
                                           int heads, int queryChunk) {
        return attend(tf, q, k, v, heads, queryChunk, null);
    }

    /**
     * As {@link #attend(Ops, Operand, Operand, Operand, int, int)} with an additive {@code mask} (or null) added to
     * the scaled scores, broadcast over {@code [B, H, Tq, Tk]} (e.g. CLIP's causal {@code [Tq, Tk]} mask). With a
     * mask the queries are not chunked (the text encoder's 77 tokens do not need it).
     */
    public static Operand<TFloat32> attend(Ops tf, Operand<TFloat32> q, Operand<TFloat32> k, Operand<TFloat32> v,
                                           int heads, int queryChunk, Operand<TFloat32> mask) {
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
        float scale = (float) (1.0 / Math.sqrt(d));
        // [B, T, H, D] -> [B, H, T, D] (q, v) and [B, H, D, Tk] (k, so the first MatMul needs no adjoint).
        Operand<TFloat32> qh = tf.linalg.transpose(tf.reshape(tf.math.mul(q, Shapes.scalar(tf, scale, q)),
                tf.constant(new long[]{-1, tq, heads, d})), tf.constant(new int[]{0, 2, 1, 3}));
        Operand<TFloat32> kh = tf.linalg.transpose(tf.reshape(k, tf.constant(new long[]{-1, tk, heads, d})),
                tf.constant(new int[]{0, 2, 3, 1}));
        Operand<TFloat32> vh = tf.linalg.transpose(tf.reshape(v, tf.constant(new long[]{-1, tk, heads, d})),
                tf.constant(new int[]{0, 2, 1, 3}));
        Operand<TFloat32> o;
        if (mask != null) {
            // scores and softmax in float32 (the mask's −1e30 does not fit half)
            Operand<TFloat32> sc = tf.math.add(Shapes.castTo(tf, Shapes.batchMatMul(tf, qh, kh), false),
                    Shapes.castTo(tf, mask, false));
            o = Shapes.batchMatMul(tf, Shapes.castTo(tf, tf.nn.softmax(sc), Shapes.isHalf(qh)), vh);
        } else if (queryChunk <= 0 || tq <= queryChunk) {
            o = core(tf, qh, kh, vh);
        } else {
            List<Operand<TFloat32>> parts = new ArrayList<>();
            for (long s = 0; s < tq; s += queryChunk) {
                long e = Math.min(tq, s + queryChunk);
                Operand<TFloat32> qc = tf.stridedSlice(qh, tf.constant(new long[]{0, 0, s, 0}),
                        tf.constant(new long[]{0, 0, e, 0}), tf.constant(new long[]{1, 1, 1, 1}),
                        StridedSlice.beginMask(11L).endMask(11L));
                parts.add(core(tf, qc, kh, vh));
            }
            o = tf.concat(parts, tf.constant(2));
        }
        return tf.reshape(tf.linalg.transpose(o, tf.constant(new int[]{0, 2, 1, 3})), tf.constant(new long[]{-1, tq, c}));
    }

    private static Operand<TFloat32> core(Ops tf, Operand<TFloat32> qh, Operand<TFloat32> kh,
                                          Operand<TFloat32> vh) {
        Operand<TFloat32> s = Shapes.batchMatMul(tf, qh, kh);
        // softmax in float32 when computing in half (as torch's autocast does)
        Operand<TFloat32> p = Shapes.castTo(tf, tf.nn.softmax(Shapes.castTo(tf, s, false)), Shapes.isHalf(qh));
        return Shapes.batchMatMul(tf, p, vh);
    }

    /** FLOPs of the two MatMuls of one call (2 per MAC). */
    public static double flops(long batch, long tq, long tk, long channels) {
        return 2.0 * 2.0 * batch * tq * tk * channels;
    }
}
