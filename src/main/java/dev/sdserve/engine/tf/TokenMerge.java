package dev.sdserve.engine.tf;

import java.util.List;
import java.util.SplittableRandom;

import dev.sdserve.engine.TokenMerging;
import org.tensorflow.Operand;
import org.tensorflow.op.Ops;
import org.tensorflow.op.core.Gather;
import org.tensorflow.op.core.ReduceSum;
import org.tensorflow.op.nn.TopK;
import org.tensorflow.types.TFloat32;
import org.tensorflow.types.TInt32;

/**
 * Token merging for self-attention (ToMe for Stable Diffusion, Bolya &amp; Hoffman 2023), per sample in graph mode.
 *
 * <p>The {@code h × w} tokens split into destinations, one per 2×2 cell (a token left over by an odd size is a
 * source), and sources. Each source's most similar destination is found by cosine similarity of the block's input
 * tokens (bipartite soft matching); the {@code r = ⌊ratio · N⌋} sources (at most all of them) with the highest
 * similarity are merged into their destinations by averaging, the others stay. Self-attention runs on the
 * {@code N − r} merged tokens; unmerging copies each merged token back to every position it came from.
 *
 * <p>Which token of a cell is its destination: tomesd draws one at random on every call. A serving system wants a
 * request's image to depend on nothing but the request (not on its batch partners, the call count, or timing), and a
 * graph constant needs no extra input: the pattern here is a fixed pseudo-random one (a {@link SplittableRandom} with
 * a fixed seed, one draw per cell in row-major order), the same for every sample, block and step. A pseudo-random
 * rather than a fixed corner (tomesd's no-random option) keeps the destinations off a regular grid.
 *
 * <p>Ties: a source's destination is the lowest-index destination of the highest similarity (ArgMax); sources of
 * equal best similarity are ranked lower index first (TopK). The merged sequence is the unmerged sources in rank
 * order, then the destinations in layout order.
 */
public final class TokenMerge {
    /** Seed of the destination pattern (fixed: see the class comment). */
    static final long PATTERN_SEED = 0x70E5D2023L;
    /** The destination token of each 2×2 cell, in row-major cell order (indices into the {@code h·w} tokens). */
    public static int[] destinations(int h, int w) {
        SplittableRandom rnd = new SplittableRandom(PATTERN_SEED);
        int ch = h / 2, cw = w / 2;
        int[] d = new int[ch * cw];
        for (int i = 0; i < ch; i++) {
            for (int j = 0; j < cw; j++) {
                int k = rnd.nextInt(4);
                d[i * cw + j] = (2 * i + k / 2) * w + 2 * j + k % 2;
            }
        }
        java.util.Arrays.sort(d);
        return d;
    }

    /** The source tokens: every token that is not a destination, in layout order. */
    public static int[] sources(int h, int w) {
        int[] dst = destinations(h, w);
        int n = h * w;
        int[] s = new int[n - dst.length];
        int k = 0, j = 0;
        for (int p = 0; p < n; p++) {
            if (j < dst.length && dst[j] == p) {
                j++;
            } else {
                s[k++] = p;
            }
        }
        return s;
    }

    /** Tokens merged away at {@code ratio} on an {@code h × w} grid (see {@link TokenMerging#merged}). */
    public static int merged(int h, int w, double ratio) {
        return TokenMerging.merged(h, w, ratio);
    }

    private final Ops tf;
    /** Per sample, each token's slot in the merged sequence [B, N]. */
    private final Operand<TInt32> slot;
    /** 1 / tokens per merged slot [B, M, 1], float32. */
    private final Operand<TFloat32> inverseCount;
    private final int mergedTokens;

    private TokenMerge(Ops tf, Operand<TInt32> slot, Operand<TFloat32> inverseCount, int mergedTokens) {
        this.tf = tf;
        this.slot = slot;
        this.inverseCount = inverseCount;
        this.mergedTokens = mergedTokens;
    }

    /** Tokens after merging. */
    public int mergedTokens() {
        return mergedTokens;
    }

    /**
     * The matching for {@code metric} [B, h·w, C] (the transformer block's input tokens), merging {@code r} tokens
     * away ({@code 0 ≤ r ≤} the number of sources).
     */
    public static TokenMerge plan(Ops tf, Operand<TFloat32> metric, int h, int w, int r) {
        int n = h * w;
        int[] dst = destinations(h, w);
        int[] src = sources(h, w);
        int nd = dst.length, ns = src.length;
        if (r < 0 || r > ns) {
            throw new IllegalArgumentException("token merging: " + r + " of " + ns + " sources");
        }
        if (Shapes.dim(metric, 1, "token merging metric") != n) {
            throw new IllegalArgumentException("token merging: metric " + metric.shape() + " is not " + h + "×" + w
                    + " tokens");
        }
        int unm = ns - r;
        // cosine similarity of every source to every destination, in float32
        Operand<TFloat32> m = Shapes.castTo(tf, metric, false);
        Operand<TFloat32> norm = tf.math.rsqrt(tf.math.add(tf.reduceSum(tf.math.mul(m, m), tf.constant(-1),
                ReduceSum.keepDims(true)), tf.constant(1e-12f)));
        Operand<TFloat32> mn = tf.math.mul(m, norm);
        Operand<TFloat32> a = tf.gather(mn, tf.constant(src), tf.constant(1));
        Operand<TFloat32> b = tf.gather(mn, tf.constant(dst), tf.constant(1));
        Operand<TFloat32> scores = Shapes.batchMatMul(tf, a, tf.linalg.transpose(b, tf.constant(new int[]{0, 2, 1})));
        Operand<TFloat32> best = tf.reduceMax(scores, tf.constant(-1));                       // [B, Ns]
        Operand<TInt32> bestDst = tf.math.argMax(scores, tf.constant(-1), TInt32.class);      // [B, Ns]
        // sources by best similarity, highest first (ties: lower index first)
        Operand<TInt32> order = tf.nn.topK(best, tf.constant(ns), TInt32.class, TopK.sorted(true)).indices();
        Operand<TInt32> orderedDst = tf.gather(bestDst, order, tf.constant(1), Gather.batchDims(1L));
        // the slot of the k-th ranked source: its destination's for the first r, else k − r among the unmerged
        int[] isMerged = new int[ns];
        int[] keptSlot = new int[ns];
        for (int k = 0; k < ns; k++) {
            isMerged[k] = k < r ? 1 : 0;
            keptSlot[k] = k < r ? 0 : k - r;
        }
        Operand<TInt32> rankedSlot = tf.math.add(tf.math.mul(tf.math.add(orderedDst, tf.constant(unm)),
                tf.constant(isMerged)), tf.constant(keptSlot));
        // back to source order: the rank of each source is the inverse permutation of `order`
        Operand<TInt32> rank = tf.nn.topK(tf.math.neg(order), tf.constant(ns), TInt32.class, TopK.sorted(true))
                .indices();
        Operand<TInt32> srcSlot = tf.gather(rankedSlot, rank, tf.constant(1), Gather.batchDims(1L)); // [B, Ns]
        int[] dstSlot = new int[nd];
        for (int j = 0; j < nd; j++) {
            dstSlot[j] = unm + j;
        }
        Operand<TInt32> zeros = tf.math.mul(tf.gather(srcSlot, tf.constant(new int[nd]), tf.constant(1)),
                tf.constant(0));
        Operand<TInt32> bySide = tf.concat(List.of(srcSlot, tf.math.add(zeros, tf.constant(dstSlot))),
                tf.constant(1));                                                            // [B, Ns + Nd]
        int[] layout = new int[n]; // position p → its index in (sources, destinations)
        for (int k = 0; k < ns; k++) {
            layout[src[k]] = k;
        }
        for (int j = 0; j < nd; j++) {
            layout[dst[j]] = ns + j;
        }
        Operand<TInt32> slot = tf.gather(bySide, tf.constant(layout), tf.constant(1));        // [B, N]
        int mTokens = n - r;
        Operand<TInt32> ids = segmentIds(tf, slot, mTokens);
        Operand<TInt32> segments = tf.math.mul(batchSize(tf, slot), tf.constant(mTokens));
        Operand<TFloat32> ones = tf.fill(tf.shape(ids), tf.constant(1f));
        Operand<TFloat32> count = tf.math.unsortedSegmentSum(ones, ids, segments);
        Operand<TFloat32> inv = tf.reshape(tf.math.reciprocal(count), tf.constant(new int[]{-1, mTokens, 1}));
        return new TokenMerge(tf, slot, inv, mTokens);
    }

    /** {@code x} [B, N, C] merged to [B, N − r, C]: each slot the mean of the tokens it holds. */
    public Operand<TFloat32> merge(Operand<TFloat32> x) {
        long c = Shapes.dim(x, 2, "token merging input");
        boolean half = Shapes.isHalf(x);
        Operand<TFloat32> flat = tf.reshape(Shapes.castTo(tf, x, false), tf.constant(new long[]{-1, c}));
        Operand<TFloat32> sum = tf.math.unsortedSegmentSum(flat, segmentIds(tf, slot, mergedTokens),
                tf.math.mul(batchSize(tf, slot), tf.constant(mergedTokens)));
        Operand<TFloat32> mean = tf.math.mul(tf.reshape(sum, tf.constant(new long[]{-1, mergedTokens, c})),
                inverseCount);
        return Shapes.castTo(tf, mean, half);
    }

    /** {@code y} [B, N − r, C] back to [B, N, C]: every token takes its slot's value. */
    public Operand<TFloat32> unmerge(Operand<TFloat32> y) {
        return tf.gather(y, slot, tf.constant(1), Gather.batchDims(1L));
    }

    /** Flat segment ids: sample b's slot s → b·M + s, as [B·N]. */
    private static Operand<TInt32> segmentIds(Ops tf, Operand<TInt32> slot, int mTokens) {
        Operand<TInt32> b = batchSize(tf, slot);
        Operand<TInt32> offsets = tf.math.mul(tf.range(tf.constant(0), b, tf.constant(1)), tf.constant(mTokens));
        Operand<TInt32> ids = tf.math.add(slot, tf.expandDims(offsets, tf.constant(1)));
        return tf.reshape(ids, tf.constant(new int[]{-1}));
    }

    private static Operand<TInt32> batchSize(Ops tf, Operand<TInt32> slot) {
        return tf.reshape(tf.gather(tf.shape(slot), tf.constant(new int[]{0}), tf.constant(0)),
                tf.constant(new int[]{}));
    }
}
