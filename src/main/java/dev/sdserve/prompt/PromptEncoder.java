package dev.sdserve.prompt;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A1111's long-prompt encoding on top of any text tower ("id rows → hidden states"): each text becomes k chunks
 * ({@link PromptChunker}), every chunk row goes through the tower on its own, the weights are applied per chunk
 * ({@link Emphasis}), and the chunks are concatenated into a {@code (chunkLength + 2)·k}-token context.
 *
 * <p>Texts are encoded in <em>groups</em>, as A1111 encodes one {@code get_learned_conditioning} batch (the texts
 * of one prompt's schedule): within a group every text is padded to the group's largest chunk count with empty
 * chunks, and the emphasis means at chunk i are taken over the group's rows at chunk i (a text that occurs twice
 * counts twice). A group of one text is the plain case.
 *
 * <p>Two steps so the tower call stays the caller's (one batched call, any per-row settings such as CLIP skip or
 * LoRAs): {@link #plan} lists the distinct id rows, the caller runs them through its tower, {@link Plan#finish}
 * applies the weights and assembles the contexts. Thread-safe.
 */
public final class PromptEncoder {
    private final PromptChunker chunker;

    public PromptEncoder(PromptChunker chunker) {
        this.chunker = chunker;
    }

    /**
     * A1111's settings (75-token chunks, comma back-off 20) for a CLIP-BPE tower with the given special ids and
     * positions (chunks shrink to {@code positions − 2} for a tower with fewer than 77).
     */
    public static PromptEncoder forClip(dev.sdserve.model.ClipTokenizer tok, int bos, int eos, int pad, int positions,
                                        Emphasis emphasis) {
        int comma = tok.id(",</w>");
        PromptChunker.Tokens t = new PromptChunker.Tokens(bos, eos, pad, comma);
        return new PromptEncoder(new PromptChunker(tok::encode, t, Math.min(PromptChunker.CHUNK_LENGTH, positions - 2),
                PromptChunker.COMMA_BACKTRACK, emphasis));
    }

    public PromptChunker chunker() {
        return chunker;
    }

    /** The rows to encode for groups of texts (each group encoded together; duplicates allowed). */
    public Plan plan(List<List<String>> groups) {
        return new Plan(groups);
    }

    /** The rows of a set of groups, and how to turn their hidden states into contexts. */
    public final class Plan {
        private final List<int[]> rows = new ArrayList<>();
        private final List<Integer> rowGroup = new ArrayList<>();
        private final List<List<String>> groups;
        /** Per group: distinct texts → their chunks (padded to the group's count) and row index per chunk. */
        private final List<Map<String, Entry>> entries = new ArrayList<>();
        private final int[] chunkCounts;

        private record Entry(List<PromptChunker.Chunk> chunks, int[] rowOf, int[] count) {
        }

        private Plan(List<List<String>> groups) {
            this.groups = List.copyOf(groups);
            chunkCounts = new int[groups.size()];
            Map<String, PromptChunker.Chunked> chunked = new HashMap<>();
            for (int g = 0; g < groups.size(); g++) {
                List<String> texts = groups.get(g);
                if (texts.isEmpty()) {
                    throw new IllegalArgumentException("group " + g + " has no text");
                }
                Map<String, Entry> byText = new LinkedHashMap<>();
                int k = 0;
                for (String t : texts) {
                    k = Math.max(k, chunked.computeIfAbsent(t, chunker::chunk).chunks().size());
                }
                chunkCounts[g] = k;
                Map<List<Integer>, Integer> rowIndex = new HashMap<>(); // identical rows of a group run once
                for (String t : texts) {
                    Entry e = byText.get(t);
                    if (e != null) {
                        e.count()[0]++;
                        continue;
                    }
                    List<PromptChunker.Chunk> cs = new ArrayList<>(chunked.get(t).chunks());
                    while (cs.size() < k) {
                        cs.add(chunker.empty());
                    }
                    int[] rowOf = new int[k];
                    for (int i = 0; i < k; i++) {
                        int[] ids = cs.get(i).ids();
                        final int group = g;
                        rowOf[i] = rowIndex.computeIfAbsent(Arrays.stream(ids).boxed().toList(), key -> {
                            rows.add(ids);
                            rowGroup.add(group);
                            return rows.size() - 1;
                        });
                    }
                    byText.put(t, new Entry(cs, rowOf, new int[]{1}));
                }
                entries.add(byText);
            }
        }

        /** The id rows to run through the tower, each {@link PromptChunker#rowLength()} long. */
        public int[][] rows() {
            return rows.toArray(int[][]::new);
        }

        /** The group each row belongs to (for per-group tower settings). */
        public int[] rowGroup() {
            return rowGroup.stream().mapToInt(Integer::intValue).toArray();
        }

        /** Chunks of every text of group g (its largest chunk count). */
        public int chunks(int g) {
            return chunkCounts[g];
        }

        /** The chunks of a text as planned (padded to its group's count). */
        public List<PromptChunker.Chunk> chunksOf(int g, String text) {
            return entries.get(g).get(text).chunks();
        }

        /**
         * The contexts: per group, per text (in the group's order, duplicates included),
         * {@code chunks(g)·rowLength × width} floats.
         *
         * @param hidden the tower's output for {@link #rows()}, each {@code rowLength × width} floats
         */
        public List<List<float[]>> finish(float[][] hidden) {
            if (hidden.length != rows.size()) {
                throw new IllegalArgumentException(hidden.length + " hidden states for " + rows.size() + " rows");
            }
            int len = chunker.rowLength();
            List<List<float[]>> out = new ArrayList<>();
            for (int g = 0; g < groups.size(); g++) {
                Map<String, Entry> byText = entries.get(g);
                int k = chunkCounts[g];
                List<Entry> es = new ArrayList<>(byText.values());
                int size = hidden[es.get(0).rowOf()[0]].length;
                Map<String, float[]> ctx = new HashMap<>();
                for (String t : byText.keySet()) {
                    ctx.put(t, new float[size * k]);
                }
                for (int i = 0; i < k; i++) {
                    float[][] z = new float[es.size()][];
                    float[][] w = new float[es.size()][];
                    int[] count = new int[es.size()];
                    for (int j = 0; j < es.size(); j++) {
                        Entry e = es.get(j);
                        z[j] = hidden[e.rowOf()[i]].clone();
                        if (z[j].length != size || size % len != 0) {
                            throw new IllegalArgumentException("hidden state of " + z[j].length + " floats for a row of " + len + " ids");
                        }
                        w[j] = e.chunks().get(i).weights();
                        count[j] = e.count()[0];
                    }
                    chunker.emphasis().apply(z, w, count);
                    int j = 0;
                    for (String t : byText.keySet()) {
                        System.arraycopy(z[j++], 0, ctx.get(t), i * size, size);
                    }
                }
                List<float[]> perText = new ArrayList<>();
                for (String t : groups.get(g)) {
                    perText.add(ctx.get(t));
                }
                out.add(perText);
            }
            return out;
        }
    }

    // ------------------------------------------------------------------ conditioning pairs

    /**
     * A1111's {@code pad_cond_uncond}: the shorter of a prompt's and a negative prompt's context gets
     * copies of {@code emptyChunk} (the empty prompt's encoding, {@code rowLength × width} floats) appended until
     * both have as many chunks. Returns {cond, uncond}, the same arrays when they are already as long.
     */
    public static float[][] padPair(float[] cond, float[] uncond, float[] emptyChunk) {
        if (cond.length == uncond.length) {
            return new float[][]{cond, uncond};
        }
        int e = emptyChunk.length;
        if (cond.length % e != 0 || uncond.length % e != 0) {
            throw new IllegalArgumentException("contexts of " + cond.length + " and " + uncond.length
                    + " floats are not whole chunks of " + e);
        }
        return cond.length < uncond.length
                ? new float[][]{padTo(cond, uncond.length, emptyChunk), uncond}
                : new float[][]{cond, padTo(uncond, cond.length, emptyChunk)};
    }

    private static float[] padTo(float[] x, int length, float[] chunk) {
        float[] r = Arrays.copyOf(x, length);
        for (int at = x.length; at < length; at += chunk.length) {
            System.arraycopy(chunk, 0, r, at, chunk.length);
        }
        return r;
    }
}
