package dev.sdserve.scheduler;

import dev.sdserve.engine.tf.TfEngine;
import dev.sdserve.job.GenerationRequest;
import dev.sdserve.job.PreviewOptions;
import dev.sdserve.testutil.Shared;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Map;

import static dev.sdserve.testutil.Floats.maxAbsDiff;
import static org.junit.jupiter.api.Assertions.*;

/**
 * The text-embedding cache on the real engine and the tiny SD 1.5, SD 2.x and SDXL models: three requests (a
 * prompt with an A1111 weight and the empty negative, a new prompt with the same negative, the first again) served
 * with the cache off and on. Off, the engine encodes all six texts; on, three. The repeated request's picture is
 * bit-identical to its recompute (its entries came from the same encoder batch); the second request's prompt is
 * encoded alone instead of beside the negative, which may move the last bits only. SDXL's pooled embeddings and its
 * zeroed empty negative come from the cache as well.
 */
class RealEngineTextCacheTest {

    private static List<float[]> serve(TfEngine engine, String model, boolean cache, List<GenerationRequest> reqs,
                                       long[] encodedItems) {
        long before = engine.stats().encodeItems.get();
        List<float[]> out;
        try (RealEngineServing s = new RealEngineServing(engine, model, sc -> sc.textCacheBytes = cache ? 16 << 20 : 0)) {
            out = s.alone(reqs.stream().map(r -> r.withModel(model)).toList());
        }
        encodedItems[0] = engine.stats().encodeItems.get() - before;
        return out;
    }

    @Test
    void cachedEncodingsGiveTheSamePicturesOnEveryFamily() {
        String[][] models = {{"sd15-tiny", "tiny-sd15.safetensors"}, {"sd2v-tiny", "tiny-sd2v.safetensors"},
                {"sdxl-tiny", "tiny-sdxl.safetensors"}};
        GenerationRequest base = GenerationRequest.ofPrompt("a (red:1.3) fox in the snow").withNegative("")
                .withSampler("euler").withSteps(3).withGuidance(5.0).withSeed(7L).withPreview(PreviewOptions.OFF);
        List<GenerationRequest> reqs = List.of(base, base.withPrompt("a blue bird").withSeed(8L), base.withSeed(9L));
        for (String[] m : models) {
            try (TfEngine engine = new TfEngine(Map.of(m[0], Shared.golden(m[0]).resolve(m[1])))) {
                long[] offItems = new long[1], onItems = new long[1];
                List<float[]> off = serve(engine, m[0], false, reqs, offItems);
                List<float[]> on = serve(engine, m[0], true, reqs, onItems);
                assertEquals(6, offItems[0], m[0]);
                assertEquals(3, onItems[0], m[0]); // the 2nd request's negative, the 3rd request whole: cached
                assertArrayEquals(off.get(0), on.get(0), m[0]); // a miss: the same engine call as off
                assertArrayEquals(off.get(2), on.get(2), m[0]); // a full hit, from the same encoder batch
                double d = maxAbsDiff(off.get(1), on.get(1)); // the prompt encoded alone, not beside the negative
                assertTrue(d < 1e-3, m[0] + ": " + d);
                System.out.printf("%s: 2nd request's picture, prompt encoded alone vs batched: max |delta| %.3g%n",
                        m[0], d);
            }
        }
    }
}
