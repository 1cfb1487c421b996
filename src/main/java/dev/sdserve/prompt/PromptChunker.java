package dev.sdserve.prompt;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.function.Function;

/**
 * Cuts a prompt into A1111's chunks ({@code FrozenCLIPEmbedderWithCustomWordsBase.tokenize_line}): each chunk is
 * BOS, up to {@code chunkLength} (75) prompt tokens, EOS, then padding: {@code chunkLength + 2} ids with a weight
 * each (1 for BOS, EOS and padding).
 * <ul>
 *   <li>Each run of {@link PromptAttention} is tokenized on its own (so a bracket also ends a word);</li>
 *   <li>a chunk that is full when a further token (not a comma) arrives, and whose last comma is at most
 *       {@code commaBacktrack} (20) tokens back, is cut after that comma: the tokens after it open the next chunk;</li>
 *   <li>{@code BREAK} closes the current chunk (even an empty one) and opens a new one;</li>
 *   <li>a prompt with no tokens is one chunk of padding.</li>
 * </ul>
 * Ids after a chunk's first EOS are replaced by the tower's pad id when it differs from EOS (OpenCLIP towers pad
 * with 0), as A1111's {@code process_tokens} does.
 */
public final class PromptChunker {
    /** A1111's chunk length and comma back-off (its {@code comma_padding_backtrack} default). */
    public static final int CHUNK_LENGTH = 75;
    public static final int COMMA_BACKTRACK = 20;

    /** A tower's special ids: begin, end, padding, and the comma token ({@code ,</w>}, 267 in CLIP's vocabulary). */
    public record Tokens(int bos, int eos, int pad, int comma) {
    }

    /** One chunk: {@code ids} and {@code weights}, both {@code chunkLength + 2} long. */
    public record Chunk(int[] ids, float[] weights) {
    }

    /** The chunks of a prompt and its token count (A1111's counter: prompt tokens, full chunks counted whole). */
    public record Chunked(List<Chunk> chunks, int tokenCount) {
    }

    private final Function<String, int[]> bpe;
    private final Tokens tokens;
    private final int chunkLength;
    private final int commaBacktrack;
    private final Emphasis emphasis;

    /**
     * @param bpe            text → BPE ids without BOS/EOS, untruncated (e.g. {@code ClipTokenizer::encode})
     * @param chunkLength    prompt tokens per chunk (75; rows are 2 longer)
     * @param commaBacktrack how far back a comma may be to cut there (0 = never)
     * @param emphasis       {@link Emphasis#NONE} reads brackets and BREAK as text
     */
    public PromptChunker(Function<String, int[]> bpe, Tokens tokens, int chunkLength, int commaBacktrack, Emphasis emphasis) {
        if (chunkLength < 1) {
            throw new IllegalArgumentException("chunk length " + chunkLength + " < 1");
        }
        this.bpe = bpe;
        this.tokens = tokens;
        this.chunkLength = chunkLength;
        this.commaBacktrack = commaBacktrack;
        this.emphasis = emphasis;
    }

    public int rowLength() {
        return chunkLength + 2;
    }

    public Emphasis emphasis() {
        return emphasis;
    }

    /** The parsed runs of a prompt under this chunker's emphasis mode. */
    public List<PromptAttention.Fragment> fragments(String prompt) {
        return emphasis == Emphasis.NONE ? PromptAttention.plain(prompt) : PromptAttention.parse(prompt);
    }

    /** The chunk of an empty prompt: BOS, EOS, padding; weights 1. */
    public Chunk empty() {
        return close(new int[0], new float[0], 0);
    }

    public Chunked chunk(String prompt) {
        List<Chunk> chunks = new ArrayList<>();
        int[] ids = new int[chunkLength];
        float[] ws = new float[chunkLength];
        int n = 0;
        int lastComma = -1;
        int count = 0;
        for (PromptAttention.Fragment f : fragments(prompt)) {
            if (f.isBreak()) {
                chunks.add(close(ids, ws, n));
                count += chunkLength;
                n = 0;
                lastComma = -1;
                continue;
            }
            float w = (float) f.weight();
            for (int token : bpe.apply(f.text())) {
                if (token == tokens.comma()) {
                    lastComma = n;
                } else if (commaBacktrack != 0 && n == chunkLength && lastComma != -1 && n - lastComma <= commaBacktrack) {
                    int cut = lastComma + 1;
                    int[] restIds = Arrays.copyOfRange(ids, cut, n);
                    float[] restWs = Arrays.copyOfRange(ws, cut, n);
                    chunks.add(close(ids, ws, cut));
                    count += chunkLength;
                    System.arraycopy(restIds, 0, ids, 0, restIds.length);
                    System.arraycopy(restWs, 0, ws, 0, restWs.length);
                    n = restIds.length;
                    lastComma = -1;
                }
                if (n == chunkLength) {
                    chunks.add(close(ids, ws, n));
                    count += chunkLength;
                    n = 0;
                    lastComma = -1;
                }
                ids[n] = token;
                ws[n] = w;
                n++;
            }
        }
        if (n > 0 || chunks.isEmpty()) {
            chunks.add(close(ids, ws, n));
            count += n;
        }
        return new Chunked(List.copyOf(chunks), count);
    }

    /** BOS + the first n tokens + EOS, padded with EOS, then everything after the first EOS set to pad. */
    private Chunk close(int[] ids, float[] ws, int n) {
        int[] row = new int[chunkLength + 2];
        float[] w = new float[chunkLength + 2];
        Arrays.fill(row, tokens.eos());
        Arrays.fill(w, 1f);
        row[0] = tokens.bos();
        System.arraycopy(ids, 0, row, 1, n);
        System.arraycopy(ws, 0, w, 1, n);
        if (tokens.pad() != tokens.eos()) {
            int firstEnd = -1;
            for (int i = 0; i < row.length && firstEnd < 0; i++) {
                if (row[i] == tokens.eos()) {
                    firstEnd = i;
                }
            }
            for (int i = firstEnd + 1; i < row.length; i++) {
                row[i] = tokens.pad();
            }
        }
        return new Chunk(row, w);
    }
}
