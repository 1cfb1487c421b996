package dev.sdserve.engine.tf;

import dev.sdserve.engine.DeepCache;
import dev.sdserve.engine.DenoiseBatch;
import dev.sdserve.engine.DenoiseItem;
import dev.sdserve.engine.LatentShape;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import static dev.sdserve.testutil.Floats.maxAbsDiff;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Token merging and DeepCache on one request (tiny SD 1.5-shaped model, 16×16 latents): the capturing full step is
 * the merged UNet, the shallow path merges its full-resolution transformers as the full UNet does, and a batch mixing
 * ratios and DeepCache steps gives each item what it gets alone.
 */
class TokenMergingDeepCacheTest extends TinyGoldenEngine {
    static final LatentShape SHAPE = new LatentShape(4, 16, 16);

    private static float[] alone(DenoiseItem item) {
        return engine.denoise(new DenoiseBatch("tiny", SHAPE, List.of(item)))[0];
    }

    @Test
    void deepCacheStepsOfAMergedRequestMergeInBothPaths() throws Exception {
        float[] x0 = g.row("unet.x", 0), x1 = g.row("unet.x", 1);
        float[] c0 = g.row("unet.ctx", 0), c1 = g.row("unet.ctx", 1);
        DenoiseItem merged = new DenoiseItem(x0, 999, c0, c1, 7.5, null).withTokenMerging(0.5);
        float[] plainMerged = alone(merged);
        float[] unmerged = alone(new DenoiseItem(x0, 999, c0, c1, 7.5, null));
        assertTrue(maxAbsDiff(plainMerged, unmerged) > 1e-3, "ratio 0.5 changes the prediction");

        // the capturing full step is the merged UNet (an extra output of the same graph)
        DeepCache.Slot slot = new DeepCache.Slot();
        float[] full = engine.denoise(new DenoiseBatch("tiny", SHAPE, List.of(merged)),
                List.of(new DeepCache.Step(slot, false)))[0];
        assertArrayEquals(plainMerged, full);

        // the shallow path on the feature of the same input is the merged UNet: its full-resolution transformers merge
        float[] shallow = engine.denoise(new DenoiseBatch("tiny", SHAPE, List.of(merged)),
                List.of(new DeepCache.Step(slot, true)))[0];
        double same = maxAbsDiff(shallow, plainMerged);
        assertTrue(same < 1e-4, "shallow = full merged within float32 rounding, got " + same);
        assertTrue(maxAbsDiff(shallow, unmerged) > 1e-3, "the shallow path is not the unmerged UNet");

        // a batch of a merged DeepCache item, a merged plain one and an unmerged one: one call per ratio, each its own
        DenoiseItem other = new DenoiseItem(x1, 400, c1, null, 1.0, null);
        DenoiseItem otherMerged = other.withTokenMerging(0.3);
        DeepCache.Slot slot2 = new DeepCache.Slot();
        List<DeepCache.Step> steps = new ArrayList<>(Arrays.asList(null, new DeepCache.Step(slot2, false), null));
        float[][] mixed = engine.denoise(new DenoiseBatch("tiny", SHAPE, List.of(other, merged, otherMerged)), steps);
        assertTrue(maxAbsDiff(mixed[0], alone(other)) < 1e-4, "unmerged item as alone");
        assertTrue(maxAbsDiff(mixed[1], plainMerged) < 1e-4, "merged DeepCache item as alone");
        assertTrue(maxAbsDiff(mixed[2], alone(otherMerged)) < 1e-4, "ratio 0.3 item as alone");
        assertTrue(slot2.covers(2), "the merged item's full step filled its slot (prompt and negative rows)");
    }
}
