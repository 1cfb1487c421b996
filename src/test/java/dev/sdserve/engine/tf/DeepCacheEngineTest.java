package dev.sdserve.engine.tf;

import dev.sdserve.engine.DeepCache;
import dev.sdserve.engine.DenoiseBatch;
import dev.sdserve.engine.DenoiseItem;
import dev.sdserve.engine.LatentShape;
import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.List;

import static dev.sdserve.testutil.Floats.maxAbsDiff;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** DeepCache's graphs on the tiny SD 1.5-shaped model: the shallow path, fed the feature of the same input, is the full UNet. */
class DeepCacheEngineTest extends TinyGoldenEngine {
    static final LatentShape SHAPE = new LatentShape(4, 16, 16);

    private static float[][] run(List<DenoiseItem> items, List<DeepCache.Step> steps) {
        return engine.denoise(new DenoiseBatch("tiny", SHAPE, items), steps);
    }

    @Test
    void shallowStepFromTheSameInputIsTheFullStep() throws Exception {
        float[] x0 = g.row("unet.x", 0), x1 = g.row("unet.x", 1);
        float[] c0 = g.row("unet.ctx", 0), c1 = g.row("unet.ctx", 1);
        DenoiseItem guided = new DenoiseItem(x0, 999, c0, c1, 7.5, null);
        DenoiseItem plain = new DenoiseItem(x1, 250, c1, null, 1.0, null);
        float[][] reference = engine.denoise(new DenoiseBatch("tiny", SHAPE, List.of(guided, plain)));

        DeepCache.Slot slot = new DeepCache.Slot();
        java.util.ArrayList<DeepCache.Step> steps = new java.util.ArrayList<>(Arrays.asList(new DeepCache.Step(slot, false), null));
        float[][] full = run(List.of(guided, plain), steps);
        // the full DeepCache step is the plain UNet (an extra output of the same graph), for both members
        assertArrayEquals(reference[0], full[0]);
        assertArrayEquals(reference[1], full[1]);
        assertNotNull(slot.rows());
        assertEquals(2, slot.rows().length, "guided: the prompt's and the negative's features");
        assertEquals(32 * 16 * 16, slot.rows()[0].length, "level 0's channels (32) at the latent's 16×16");

        // interval 1 in effect: the shallow path on the feature of the same x, t, ctx is the full UNet
        float[][] shallow = run(List.of(guided), List.of(new DeepCache.Step(slot, true)));
        double err = maxAbsDiff(shallow[0], reference[0]);
        // (the rows batch differently, 2 against 3 in the full call, and a guided prediction amplifies rounding 7.5×)
        assertTrue(err < 1e-4, "shallow = full within float32 rounding (the conformance tolerance), got " + err);

        // a later step (another timestep and latent) on the stale feature differs from its full evaluation
        DenoiseItem later = guided.withLatent(x1, 500);
        float[] fullLater = engine.denoise(new DenoiseBatch("tiny", SHAPE, List.of(later)))[0];
        float[] shallowLater = run(List.of(later), List.of(new DeepCache.Step(slot, true)))[0];
        double d = maxAbsDiff(fullLater, shallowLater);
        assertTrue(d > 1e-3, "the stale deep feature changes the prediction, got " + d);
    }

    @Test
    void shallowStepWithoutAFeatureRunsFullAndFillsTheSlot() throws Exception {
        float[] x0 = g.row("unet.x", 0);
        float[] c0 = g.row("unet.ctx", 0);
        DenoiseItem item = new DenoiseItem(x0, 600, c0, null, 1.0, null);
        float[] reference = engine.denoise(new DenoiseBatch("tiny", SHAPE, List.of(item)))[0];
        DeepCache.Slot slot = new DeepCache.Slot();
        float[] got = run(List.of(item), List.of(new DeepCache.Step(slot, true)))[0];
        assertArrayEquals(reference, got);
        assertEquals(1, slot.rows().length);
        slot.clear();
        assertEquals(0, slot.bytes());
    }
}
