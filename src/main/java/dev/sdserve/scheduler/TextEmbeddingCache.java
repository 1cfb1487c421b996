package dev.sdserve.scheduler;

import dev.sdserve.engine.Conditioning;
import dev.sdserve.engine.EncodeItem;

import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.ToIntFunction;

/**
 * Text encodings already computed, so repeated prompts and negative prompts (the empty negative most of all) skip the
 * text encoder. Least recently used entries go first once the entries' bytes pass the capacity; a capacity of 0 turns
 * the cache off (every item is encoded, exactly as without the cache).
 *
 * <p>The key is everything the engine's output for an item depends on: the model and its loaded identity (the
 * residency's load count of that name: a reload, after an unload, an eviction or a changed file, starts afresh), and
 * the {@link EncodeItem} itself: the text as written (A1111's parsing into chunks, tokens and weights is a function of
 * it), the texts encoded with it (a schedule's group shares a chunk count and emphasis means), CLIP skip and the
 * negative flag (SDXL's zero conditioning of an empty negative). Two texts that parse alike are two entries: a missed
 * hit, never a wrong one. Items with LoRAs bypass the cache: whether a LoRA has a text-encoder part, and which file a
 * LoRA name stands for, is the engine's knowledge (a LoRA file replaced under its name must not hit).
 *
 * <p>The planner asks {@link #misses} under the scheduler's lock (admission and batch sizes count only what the
 * engine will encode: a fully cached encoding is free); the executor reads and fills it outside the lock. Entries
 * are copied in and out, so no caller shares an array with the cache.
 */
final class TextEmbeddingCache {
    /** Bytes an entry costs besides its floats: the key's text, the map entry, the arrays' headers (a rough figure). */
    static final int ENTRY_OVERHEAD = 256;

    private record Key(String model, int generation, EncodeItem item) {
    }

    private final long capacityBytes;
    private final ToIntFunction<String> generation;
    private final SchedulerStats stats;
    private final LinkedHashMap<Key, Conditioning> entries = new LinkedHashMap<>(64, 0.75f, true);
    private long bytes;
    /** Off at run time: entries kept, none used or added (the savings bench's side-by-side runs). */
    private volatile boolean paused;

    /**
     * @param capacityBytes bound of the entries' bytes (0: off)
     * @param generation    a model name's loaded identity (its load count)
     */
    TextEmbeddingCache(long capacityBytes, ToIntFunction<String> generation, SchedulerStats stats) {
        this.capacityBytes = Math.max(0, capacityBytes);
        this.generation = generation;
        this.stats = stats;
    }

    boolean enabled() {
        return capacityBytes > 0 && !paused;
    }

    void pause(boolean paused) {
        this.paused = paused;
    }

    /** Whether an item may be cached at all (no LoRAs). */
    static boolean cacheable(EncodeItem item) {
        return item.loras().isEmpty();
    }

    /** What one entry costs: its floats (the context, SDXL's pooled embedding) and the overhead. */
    static long bytesOf(EncodeItem item, Conditioning c) {
        long floats = c.context().length + (c.pooled() == null ? 0 : c.pooled().length);
        long text = 0;
        for (String t : item.group()) {
            text += 2L * t.length();
        }
        return 4 * floats + text + ENTRY_OVERHEAD;
    }

    /** How many of the items the engine would encode now (the cache's misses; all of them when off). */
    synchronized int misses(String model, List<EncodeItem> items) {
        if (!enabled()) {
            return items.size();
        }
        int gen = generation.applyAsInt(model);
        int n = 0;
        for (EncodeItem it : items) {
            if (!cacheable(it) || !entries.containsKey(new Key(model, gen, it))) {
                n++;
            }
        }
        return n;
    }

    /** The cached conditioning of an item (a copy), or null; counts a hit or a miss. */
    synchronized Conditioning get(String model, EncodeItem item) {
        if (!enabled() || !cacheable(item)) {
            return null;
        }
        Conditioning c = entries.get(new Key(model, generation.applyAsInt(model), item));
        (c == null ? stats.textCacheMisses : stats.textCacheHits).incrementAndGet();
        return c == null ? null : copy(c);
    }

    /** Keeps an item's conditioning (a copy), evicting the least recently used entries past the capacity. */
    synchronized void put(String model, EncodeItem item, Conditioning c) {
        if (!enabled() || !cacheable(item)) {
            return;
        }
        long size = bytesOf(item, c);
        if (size > capacityBytes) {
            return;
        }
        Key k = new Key(model, generation.applyAsInt(model), item);
        Conditioning old = entries.put(k, copy(c));
        if (old != null) {
            bytes -= bytesOf(item, old);
        }
        bytes += size;
        for (Iterator<Map.Entry<Key, Conditioning>> it = entries.entrySet().iterator(); bytes > capacityBytes && it.hasNext(); ) {
            Map.Entry<Key, Conditioning> e = it.next();
            bytes -= bytesOf(e.getKey().item(), e.getValue());
            it.remove();
            stats.textCacheEvictions.incrementAndGet();
        }
        stats.textCacheBytes.set(bytes);
        stats.textCacheEntries.set(entries.size());
    }

    private static Conditioning copy(Conditioning c) {
        return new Conditioning(c.context().clone(), c.pooled() == null ? null : c.pooled().clone());
    }
}
