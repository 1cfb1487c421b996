package dev.sdserve.prompt;

import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;

/** Emphasis, group padding and pair padding on a fake two-channel tower. */
class PromptEncoderTest {
    static final int W = 2;

    /** Token t at position p → (1 + id/1000 + p/100, 0.5): positive, distinct per token and position. */
    static float[][] tower(int[][] rows) {
        float[][] out = new float[rows.length][];
        for (int r = 0; r < rows.length; r++) {
            out[r] = new float[rows[r].length * W];
            for (int p = 0; p < rows[r].length; p++) {
                out[r][p * W] = 1 + rows[r][p] / 1000f + p / 100f;
                out[r][p * W + 1] = 0.5f;
            }
        }
        return out;
    }

    static PromptEncoder encoder() {
        return new PromptEncoder(PromptChunkerTest.chunker(PromptChunkerTest.EOS));
    }

    static List<List<float[]>> encode(PromptEncoder e, List<List<String>> groups) {
        PromptEncoder.Plan plan = e.plan(groups);
        return plan.finish(tower(plan.rows()));
    }

    static double mean(float[] a, int from, int to) {
        double s = 0;
        for (int i = from; i < to; i++) {
            s += a[i];
        }
        return s / (to - from);
    }

    @Test
    void unweightedChunksAreTheTowersOutputConcatenated() {
        PromptEncoder e = encoder();
        String text = PromptChunkerTest.words(0, 80);
        float[] ctx = encode(e, List.of(List.of(text))).get(0).get(0);
        assertEquals(2 * 77 * W, ctx.length);
        float[][] rows = tower(new int[][]{PromptChunkerTest.row(PromptChunkerTest.seq(0, 75)),
                PromptChunkerTest.row(PromptChunkerTest.seq(75, 80))});
        float[] want = new float[ctx.length];
        System.arraycopy(rows[0], 0, want, 0, 77 * W);
        System.arraycopy(rows[1], 0, want, 77 * W, 77 * W);
        assertArrayEquals(want, ctx);
    }

    @Test
    void originalEmphasisScalesTokensThenRestoresEachChunksMean() {
        PromptEncoder e = encoder();
        float[] plain = encode(e, List.of(List.of("w1 w2 w3"))).get(0).get(0);
        float[] weighted = encode(e, List.of(List.of("w1 (w2:1.5) w3"))).get(0).get(0);
        assertEquals(mean(plain, 0, plain.length), mean(weighted, 0, weighted.length), 1e-6);
        // token w2 (position 2) gained relative to w1 (position 1) by exactly 1.5 (the rescale is common)
        double ratio = (weighted[2 * W] / weighted[W]) / (plain[2 * W] / plain[W]);
        assertEquals(1.5, ratio, 1e-6);
    }

    @Test
    void aGroupPadsEveryTextToItsChunkCountAndSharesTheMeans() {
        PromptEncoder e = encoder();
        String longText = PromptChunkerTest.words(0, 76) + " (w99:2)";
        List<List<float[]>> r = encode(e, List.of(List.of("w5", longText)));
        float[] shortCtx = r.get(0).get(0);
        float[] longCtx = r.get(0).get(1);
        assertEquals(longCtx.length, shortCtx.length); // the short text got an empty second chunk
        int c = 77 * W;
        // at chunk 1 the rows of both texts together keep their mean (one factor for the group)
        float[][] before = tower(new int[][]{PromptChunkerTest.row(), PromptChunkerTest.row(1075, 1099)});
        double meanBefore = (mean(before[0], 0, c) + mean(before[1], 0, c)) / 2;
        double meanAfter = (mean(shortCtx, c, 2 * c) + mean(longCtx, c, 2 * c)) / 2;
        assertEquals(meanBefore, meanAfter, 1e-6);
        // the padding chunk is the empty prompt's row times that factor, not the row itself
        float[] alone = encode(e, List.of(List.of("w5"))).get(0).get(0);
        assertArrayEquals(java.util.Arrays.copyOf(shortCtx, c), java.util.Arrays.copyOf(alone, c), 1e-6f);
        assertNotEquals(before[0][0], shortCtx[c]);
        // encoded on their own the texts keep their own lengths
        assertEquals(c, alone.length);
    }

    @Test
    void aTextTwiceInAGroupCountsTwiceInTheMeans() {
        PromptEncoder e = encoder();
        List<float[]> once = encode(e, List.of(List.of("w1", "(w2:3)"))).get(0);
        List<float[]> twice = encode(e, List.of(List.of("w1", "(w2:3)", "(w2:3)"))).get(0);
        assertEquals(3, twice.size());
        assertArrayEquals(twice.get(1), twice.get(2));
        assertNotEquals(once.get(0)[0], twice.get(0)[0]);
        int c = 77 * W;
        float[][] before = tower(new int[][]{PromptChunkerTest.row(1001), PromptChunkerTest.row(1002)});
        double meanBefore = (mean(before[0], 0, c) + 2 * mean(before[1], 0, c)) / 3;
        double meanAfter = (mean(twice.get(0), 0, c) + 2 * mean(twice.get(1), 0, c)) / 3;
        assertEquals(meanBefore, meanAfter, 1e-6);
    }

    @Test
    void padPairAppendsEmptyChunksToTheShorter() {
        float[] empty = {9, 9};
        float[] cond = {1, 2, 3, 4};
        float[] uncond = {5, 6};
        float[][] p = PromptEncoder.padPair(cond, uncond, empty);
        assertArrayEquals(cond, p[0]);
        assertArrayEquals(new float[]{5, 6, 9, 9}, p[1]);
        float[][] q = PromptEncoder.padPair(uncond, cond, empty);
        assertArrayEquals(new float[]{5, 6, 9, 9}, q[0]);
    }
}
