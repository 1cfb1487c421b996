package dev.sdserve.scheduler;

import dev.sdserve.engine.Conditioning;
import dev.sdserve.engine.EncodeItem;
import dev.sdserve.engine.LoraWeight;
import dev.sdserve.job.GenerationRequest;
import dev.sdserve.job.Job;
import dev.sdserve.job.JobEvent;
import dev.sdserve.job.ServeException;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;

import static org.junit.jupiter.api.Assertions.*;

/**
 * The text-embedding cache in the scheduler (fake engine, simulated clock): what it keys on, its byte bound, what the
 * engine still encodes, and that admission counts a cached encoding as free.
 */
class TextEmbeddingCacheTest {
    private static final long MIB = 1 << 20;

    private static Conditioning cond(int n, float v) {
        float[] c = new float[n];
        java.util.Arrays.fill(c, v);
        return Conditioning.of(c);
    }

    @Test
    void keyedByModelLoadTextGroupClipSkipAndNegativeFlag() {
        AtomicInteger gen = new AtomicInteger(1);
        SchedulerStats st = new SchedulerStats();
        TextEmbeddingCache c = new TextEmbeddingCache(MIB, m -> gen.get(), st);
        EncodeItem cat = new EncodeItem("a cat", 1, List.of());
        c.put("m", cat, cond(10, 1f));
        Conditioning hit = c.get("m", cat);
        assertArrayEquals(cond(10, 1f).context(), hit.context());
        hit.context()[0] = 42; // a copy: the cache's entry is unchanged
        assertEquals(1f, c.get("m", cat).context()[0]);
        assertEquals(0, c.misses("m", List.of(cat, new EncodeItem("a cat", 1, List.of()))));
        // every part of the key
        assertNull(c.get("other", cat));
        assertNull(c.get("m", new EncodeItem("a cat ", 1, List.of())));
        assertNull(c.get("m", new EncodeItem("a cat", 2, List.of())));
        assertNull(c.get("m", new EncodeItem("a cat", 1, List.of(), List.of("a cat", "a dog"))));
        assertNull(c.get("m", EncodeItem.negative("a cat", 1, List.of())));
        gen.set(2); // the model was loaded again
        assertNull(c.get("m", cat));
        assertEquals(2, st.textCacheHits.get());
        assertEquals(6, st.textCacheMisses.get());
    }

    @Test
    void itemsWithLorasBypassTheCache() {
        SchedulerStats st = new SchedulerStats();
        TextEmbeddingCache c = new TextEmbeddingCache(MIB, m -> 0, st);
        EncodeItem lora = new EncodeItem("a cat", 1, List.of(new LoraWeight("style", 0.8)));
        c.put("m", lora, cond(10, 1f));
        assertNull(c.get("m", lora));
        assertEquals(1, c.misses("m", List.of(lora)));
        assertEquals(0, st.textCacheEntries.get());
    }

    @Test
    void leastRecentlyUsedEntriesGoPastTheByteBound() {
        SchedulerStats st = new SchedulerStats();
        EncodeItem a = new EncodeItem("a"), b = new EncodeItem("b"), d = new EncodeItem("d");
        long one = TextEmbeddingCache.bytesOf(a, cond(1000, 0f));
        assertEquals(4000 + 2 + TextEmbeddingCache.ENTRY_OVERHEAD, one);
        TextEmbeddingCache c = new TextEmbeddingCache(2 * one + one / 2, m -> 0, st);
        c.put("m", a, cond(1000, 1f));
        c.put("m", b, cond(1000, 2f));
        assertNotNull(c.get("m", a)); // a used last: b goes first
        c.put("m", d, cond(1000, 3f));
        assertNull(c.get("m", b));
        assertNotNull(c.get("m", a));
        assertNotNull(c.get("m", d));
        assertEquals(2 * one, st.textCacheBytes.get());
        assertEquals(2, st.textCacheEntries.get());
        assertEquals(1, st.textCacheEvictions.get());
        // an entry larger than the bound is not kept; a bound of 0 is off
        c.put("m", new EncodeItem("big"), cond(10_000, 1f));
        assertEquals(2, st.textCacheEntries.get());
        TextEmbeddingCache off = new TextEmbeddingCache(0, m -> 0, st);
        off.put("m", a, cond(10, 1f));
        assertNull(off.get("m", a));
        assertEquals(1, off.misses("m", List.of(a)));
    }

    /** Serves requests one after another; their completions. */
    private static List<JobEvent.Completed> serve(Harness h, List<GenerationRequest> reqs) {
        List<JobEvent.Completed> out = new ArrayList<>();
        for (GenerationRequest r : reqs) {
            Job j = h.service.submit(r, false);
            h.runAll();
            out.add(Harness.completed(j));
        }
        return out;
    }

    @Test
    void repeatedPromptsAndNegativesSkipTheEncoderWithTheSameImages() {
        List<GenerationRequest> reqs = List.of(Harness.req("a red fox", 1, 4).withGuidance(7.5),
                Harness.req("a red fox", 2, 4).withGuidance(7.5), Harness.req("a blue fox", 3, 4).withGuidance(7.5));
        Harness off = new Harness();
        off.build();
        List<JobEvent.Completed> a = serve(off, reqs);
        assertEquals(6, off.engine.stats().encodeItems.get()); // off: every prompt and negative encoded
        assertEquals(0, off.service.stats().textCacheHits.get());

        Harness on = new Harness();
        on.config.textCacheBytes = MIB;
        on.build();
        List<JobEvent.Completed> b = serve(on, reqs);
        // the first request encodes its prompt and "", the second nothing, the third its new prompt
        assertEquals(3, on.engine.stats().encodeItems.get());
        assertEquals(2, on.engine.stats().encodeCalls.get());
        assertEquals(3, on.service.stats().textCacheHits.get());
        assertEquals(3, on.service.stats().textCacheMisses.get());
        assertEquals(5.0, b.get(0).timingsMillis().get("encode"));
        assertEquals(0.0, b.get(1).timingsMillis().get("encode")); // no engine call: no encoder time
        for (int i = 0; i < reqs.size(); i++) {
            assertArrayEquals(Harness.pixels(a.get(i).images().get(0)), Harness.pixels(b.get(i).images().get(0)));
        }
        // paused at run time: encoded as if off
        on.service.pauseTextCache(true);
        serve(on, reqs.subList(0, 1));
        assertEquals(5, on.engine.stats().encodeItems.get());
    }

    /** The lateness admission predicts for a request due 100 ms from now (it refuses it), ms. */
    private static int predictedLate(Harness h, GenerationRequest r) {
        ServeException e = assertThrows(ServeException.class, () -> h.service.submit(
                r.withDeadline(null, h.clock.currentTimeMillis() + 100, false), false));
        java.util.regex.Matcher m = java.util.regex.Pattern.compile("predicted (\\d+) ms late").matcher(e.getMessage());
        assertTrue(m.find(), e.getMessage());
        return Integer.parseInt(m.group(1));
    }

    @Test
    void admissionCountsACachedEncodingAsFree() {
        // the harness's encode call costs 5 ms: a request whose prompt and negative are cached is predicted 5 ms
        // sooner than one with a new prompt; without the cache both are predicted alike
        for (boolean cache : new boolean[]{true, false}) {
            Harness h = new Harness();
            h.config.textCacheBytes = cache ? MIB : 0;
            h.build();
            GenerationRequest r = Harness.req("a red fox", 1, 4).withGuidance(7.5);
            serve(h, List.of(r));
            int cached = predictedLate(h, r);
            int fresh = predictedLate(h, r.withPrompt("a green fox"));
            assertEquals(cache ? 5 : 0, fresh - cached, "cache " + cache);
        }
    }
}
