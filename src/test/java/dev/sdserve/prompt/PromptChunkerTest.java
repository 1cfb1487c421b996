package dev.sdserve.prompt;

import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * A1111's chunking rules on a word-per-token vocabulary: "w17" is token 1017, "," the comma (267); BOS 1, EOS 2.
 */
class PromptChunkerTest {
    static final int BOS = 1, EOS = 2, COMMA = 267;

    static int[] bpe(String text) {
        List<Integer> ids = new ArrayList<>();
        for (String w : text.replace(",", " , ").trim().split("\\s+")) {
            if (w.isEmpty()) {
                continue;
            }
            ids.add(w.equals(",") ? COMMA : 1000 + Integer.parseInt(w.substring(1)));
        }
        return ids.stream().mapToInt(Integer::intValue).toArray();
    }

    static PromptChunker chunker(int pad) {
        return new PromptChunker(PromptChunkerTest::bpe, new PromptChunker.Tokens(BOS, EOS, pad, COMMA), 75, 20,
                Emphasis.ORIGINAL);
    }

    static String words(int from, int to) {
        StringBuilder sb = new StringBuilder();
        for (int i = from; i < to; i++) {
            sb.append(" w").append(i);
        }
        return sb.toString();
    }

    /** BOS, the given tokens, EOS, EOS padding to 77. */
    static int[] row(int... tokens) {
        int[] r = new int[77];
        Arrays.fill(r, EOS);
        r[0] = BOS;
        System.arraycopy(tokens, 0, r, 1, tokens.length);
        return r;
    }

    static int[] seq(int from, int to) {
        int[] r = new int[to - from];
        for (int i = 0; i < r.length; i++) {
            r[i] = 1000 + from + i;
        }
        return r;
    }

    @Test
    void seventyFiveTokensFitOneChunkTheSeventySixthOpensAnother() {
        PromptChunker c = chunker(EOS);
        PromptChunker.Chunked one = c.chunk(words(0, 75));
        assertEquals(1, one.chunks().size());
        assertEquals(75, one.tokenCount());
        assertArrayEquals(row(seq(0, 75)), one.chunks().get(0).ids());
        PromptChunker.Chunked two = c.chunk(words(0, 76));
        assertEquals(2, two.chunks().size());
        assertArrayEquals(row(seq(0, 75)), two.chunks().get(0).ids());
        assertArrayEquals(row(1075), two.chunks().get(1).ids());
        assertEquals(76, two.tokenCount());
    }

    @Test
    void aFullChunkIsCutAfterACommaAtMostTwentyTokensBack() {
        PromptChunker c = chunker(EOS);
        // 70 words, a comma (token 71), 10 words: the chunk is full at w74 with the comma 5 back -> cut after it
        PromptChunker.Chunked r = c.chunk(words(0, 70) + "," + words(70, 80));
        assertEquals(2, r.chunks().size());
        int[] first = Arrays.copyOf(seq(0, 70), 71);
        first[70] = COMMA;
        assertArrayEquals(row(first), r.chunks().get(0).ids());
        assertArrayEquals(row(seq(70, 80)), r.chunks().get(1).ids());
        assertEquals(75 + 10, r.tokenCount());
        // a comma 25 back is too far: the chunk is cut at 75 tokens
        PromptChunker.Chunked far = c.chunk(words(0, 50) + "," + words(50, 80));
        int[] full = new int[75];
        System.arraycopy(seq(0, 50), 0, full, 0, 50);
        full[50] = COMMA;
        System.arraycopy(seq(50, 74), 0, full, 51, 24);
        assertArrayEquals(row(full), far.chunks().get(0).ids());
        assertArrayEquals(row(seq(74, 80)), far.chunks().get(1).ids());
    }

    @Test
    void breakClosesTheChunkEvenAnEmptyOne() {
        PromptChunker c = chunker(EOS);
        PromptChunker.Chunked r = c.chunk("w1 w2 BREAK w3");
        assertEquals(2, r.chunks().size());
        assertArrayEquals(row(1001, 1002), r.chunks().get(0).ids());
        assertArrayEquals(row(1003), r.chunks().get(1).ids());
        assertEquals(75 + 1, r.tokenCount());
        assertEquals(1, c.chunk("w1 BREAK").chunks().size()); // a trailing BREAK adds nothing
        PromptChunker.Chunked lead = c.chunk("BREAK w1");
        assertEquals(2, lead.chunks().size());
        assertArrayEquals(row(), lead.chunks().get(0).ids()); // a leading BREAK leaves an empty chunk
        assertEquals(1, c.chunk("").chunks().size());
        assertArrayEquals(row(), c.empty().ids());
    }

    @Test
    void weightsFollowTheirTokensAndSpecialTokensWeighOne() {
        PromptChunker.Chunk ch = chunker(EOS).chunk("w1 (w2 w3:1.5) [w4]").chunks().get(0);
        float[] want = new float[77];
        Arrays.fill(want, 1f);
        want[2] = 1.5f;
        want[3] = 1.5f;
        want[4] = (float) (1 / 1.1);
        assertArrayEquals(want, ch.weights());
        // emphasis None reads brackets as text: here the tokenizer would see "(w2" — only the plain run exists
        assertEquals(1, new PromptChunker(t -> new int[0], new PromptChunker.Tokens(BOS, EOS, EOS, COMMA), 75, 20,
                Emphasis.NONE).fragments("a (b) BREAK c").size());
    }

    @Test
    void aTowerThatPadsWithZeroGetsZerosAfterTheFirstEos() {
        int[] ids = chunker(0).chunk("w1 w2").chunks().get(0).ids();
        int[] want = new int[77];
        want[0] = BOS;
        want[1] = 1001;
        want[2] = 1002;
        want[3] = EOS;
        assertArrayEquals(want, ids);
    }
}
