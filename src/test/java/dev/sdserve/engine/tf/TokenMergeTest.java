package dev.sdserve.engine.tf;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.tensorflow.Operand;
import org.tensorflow.Result;
import org.tensorflow.ndarray.Shape;
import org.tensorflow.ndarray.buffer.DataBuffers;
import org.tensorflow.op.core.Placeholder;
import org.tensorflow.types.TFloat32;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@link TokenMerge} in graph mode against a straightforward Java implementation of the same algorithm (cosine
 * similarity, each source's best destination, the r best sources merged by mean, copied back), per sample of a batch.
 */
class TokenMergeTest {
    static Weights w;

    @BeforeAll
    static void weights() {
        w = Weights.empty("tome-test");
    }

    @AfterAll
    static void close() {
        w.close();
    }

    @Test
    void destinationsAreOnePerCell() {
        for (int[] hw : new int[][]{{4, 4}, {5, 6}, {7, 3}}) {
            int h = hw[0], wd = hw[1];
            int[] d = TokenMerge.destinations(h, wd);
            assertEquals((h / 2) * (wd / 2), d.length);
            boolean[] cell = new boolean[d.length];
            for (int p : d) {
                int ci = (p / wd) / 2, cj = (p % wd) / 2;
                assertTrue(ci < h / 2 && cj < wd / 2, "destination " + p + " outside the cells");
                assertTrue(!cell[ci * (wd / 2) + cj], "two destinations in one cell");
                cell[ci * (wd / 2) + cj] = true;
            }
            assertEquals(h * wd - d.length, TokenMerge.sources(h, wd).length);
        }
    }

    /** Output 0: unmerge(merge(x)); output 1: merge(x). */
    private static float[][] runMerge(float[] x, int b, int h, int wd, int c, int r) {
        try (TfGraph g = TfGraph.build("tome", w, bl -> {
            Operand<TFloat32> in = bl.input("x", bl.tf.placeholder(TFloat32.class,
                    Placeholder.shape(Shape.of(-1, (long) h * wd, c))));
            TokenMerge tm = TokenMerge.plan(bl.tf, in, h, wd, r);
            Operand<TFloat32> m = tm.merge(in);
            bl.output("round", tm.unmerge(m));
            bl.output("merged", m);
        }); TFloat32 t = TFloat32.tensorOf(Shape.of(b, (long) h * wd, c),
                d -> d.copyFrom(DataBuffers.of(x, true, false)));
             Result res = g.run(Map.of("x", t), List.of("round", "merged"))) {
            return new float[][]{flat((TFloat32) res.get(0)), flat((TFloat32) res.get(1))};
        }
    }

    private static float[] flat(TFloat32 t) {
        float[] a = new float[(int) t.shape().size()];
        t.copyTo(DataBuffers.of(a, false, false));
        return a;
    }

    /** The reference: per sample, the merged sequence (unmerged sources by rank, then destinations) and the slots. */
    private static double[][] reference(float[] x, int off, int h, int wd, int c, int r, int[] slotOut) {
        int n = h * wd;
        int[] dst = TokenMerge.destinations(h, wd);
        List<Integer> src = new ArrayList<>();
        for (int p = 0; p < n; p++) {
            if (Arrays.binarySearch(dst, p) < 0) {
                src.add(p);
            }
        }
        double[] best = new double[src.size()];
        int[] bestDst = new int[src.size()];
        for (int i = 0; i < src.size(); i++) {
            best[i] = Double.NEGATIVE_INFINITY;
            for (int j = 0; j < dst.length; j++) {
                double dot = 0, na = 0, nb = 0;
                for (int k = 0; k < c; k++) {
                    double a = x[off + src.get(i) * c + k], bb = x[off + dst[j] * c + k];
                    dot += a * bb;
                    na += a * a;
                    nb += bb * bb;
                }
                double cos = dot / Math.sqrt(na) / Math.sqrt(nb);
                if (cos > best[i]) {
                    best[i] = cos;
                    bestDst[i] = j;
                }
            }
        }
        Integer[] rank = new Integer[src.size()];
        for (int i = 0; i < rank.length; i++) {
            rank[i] = i;
        }
        Arrays.sort(rank, Comparator.<Integer>comparingDouble(i -> -best[i]).thenComparingInt(i -> i));
        int unm = src.size() - r;
        double[][] merged = new double[unm + dst.length][c];
        int[] count = new int[merged.length];
        for (int j = 0; j < dst.length; j++) {
            slotOut[dst[j]] = unm + j;
        }
        for (int k = 0; k < rank.length; k++) {
            int i = rank[k];
            slotOut[src.get(i)] = k < r ? unm + bestDst[i] : k - r;
        }
        for (int p = 0; p < n; p++) {
            for (int k = 0; k < c; k++) {
                merged[slotOut[p]][k] += x[off + p * c + k];
            }
            count[slotOut[p]]++;
        }
        for (int s = 0; s < merged.length; s++) {
            for (int k = 0; k < c; k++) {
                merged[s][k] /= count[s];
            }
        }
        return merged;
    }

    @Test
    void matchingAgreesWithAStraightforwardImplementation() {
        int b = 3, h = 5, wd = 6, c = 8;
        int n = h * wd;
        int r = TokenMerge.merged(h, wd, 0.4);
        assertEquals(12, r); // ⌊0.4 · 30⌋, within the 24 sources
        Random rnd = new Random(7);
        float[] x = new float[b * n * c];
        for (int i = 0; i < x.length; i++) {
            x[i] = (float) rnd.nextGaussian();
        }
        // sample 2 is sample 0 scaled: cosine similarity, hence the matching, is the same
        for (int i = 0; i < n * c; i++) {
            x[2 * n * c + i] = 3 * x[i];
        }
        float[][] got = runMerge(x, b, h, wd, c, r);
        int m = n - r;
        assertEquals(b * m * c, got[1].length);
        for (int s = 0; s < b; s++) {
            int[] slot = new int[n];
            double[][] want = reference(x, s * n * c, h, wd, c, r, slot);
            for (int q = 0; q < m; q++) {
                for (int k = 0; k < c; k++) {
                    assertEquals(want[q][k], got[1][(s * m + q) * c + k], 1e-5, "sample " + s + " slot " + q);
                }
            }
            for (int p = 0; p < n; p++) {
                for (int k = 0; k < c; k++) {
                    assertEquals(want[slot[p]][k], got[0][(s * n + p) * c + k], 1e-5, "sample " + s + " token " + p);
                }
            }
        }
    }

    @Test
    void withNothingMergedItIsPlainAttention() {
        int b = 2, h = 4, wd = 4, c = 8, heads = 2;
        int n = h * wd;
        Random rnd = new Random(11);
        float[] x = new float[b * n * c];
        for (int i = 0; i < x.length; i++) {
            x[i] = (float) rnd.nextGaussian();
        }
        float[][] out = new float[2][];
        for (int variant = 0; variant < 2; variant++) {
            boolean merged = variant == 1;
            try (TfGraph g = TfGraph.build("tome0", w, bl -> {
                Operand<TFloat32> in = bl.input("x", bl.tf.placeholder(TFloat32.class,
                        Placeholder.shape(Shape.of(-1, n, c))));
                if (merged) {
                    TokenMerge tm = TokenMerge.plan(bl.tf, in, h, wd, 0);
                    Operand<TFloat32> m = tm.merge(in);
                    bl.output("y", tm.unmerge(Attention.attend(bl.tf, m, m, m, heads, 0)));
                } else {
                    bl.output("y", Attention.attend(bl.tf, in, in, in, heads, 0));
                }
            }); TFloat32 t = TFloat32.tensorOf(Shape.of(b, n, c), d -> d.copyFrom(DataBuffers.of(x, true, false)));
                 Result res = g.run(Map.of("x", t), List.of("y"))) {
                out[variant] = flat((TFloat32) res.get(0));
            }
        }
        for (int i = 0; i < out[0].length; i++) {
            assertEquals(out[0][i], out[1][i], 1e-5, "element " + i);
        }
    }
}
