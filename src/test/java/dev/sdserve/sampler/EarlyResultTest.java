package dev.sdserve.sampler;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.*;

/**
 * {@link SamplerState#earlyResult()}: what a job decodes when it stops early (A1111's interrupt): nothing before the
 * first step, x̂0 of the latest step after it, the final sample once done; a 4-channel inpainting keeps its known
 * region as the clean image latent, as the finished trajectory does.
 */
class EarlyResultTest {
    @Test
    void beforeDuringAndAfterTheTrajectory() {
        for (Samplers.Info info : Samplers.list()) {
            SamplerState st = Samplers.create(info.id()).start(8, ImageStartTest.randn(41), new TorchGenerator(3));
            assertNull(st.earlyResult(), info.id() + ": nothing to decode before the first step");
            for (int k = 0; k < 3; k++) {
                st.advance(StatelessnessTest.model(st.modelInput(), st.timestep()));
            }
            assertArrayEquals(st.denoised(), st.earlyResult(), info.id());
            while (!st.done()) {
                st.advance(StatelessnessTest.model(st.modelInput(), st.timestep()));
            }
            assertArrayEquals(st.latents(), st.earlyResult(), info.id());
        }
    }

    @Test
    void anInpaintingStoppedEarlyKeepsTheImageWhereTheMaskKeepsIt() {
        float[] x0 = ImageStartTest.randn(31), n = ImageStartTest.randn(32);
        float[] mask = new float[36];
        for (int i = 0; i < mask.length; i++) {
            mask[i] = i % 3 == 0 ? 1f : 0f; // one cell in three repainted
        }
        for (Samplers.Info info : Samplers.list()) {
            SamplerState st = Samplers.create(info.id()).start(10, ImageInit.inpaint(x0, n, 0.8, mask), new TorchGenerator(5));
            for (int k = 0; k < 2; k++) {
                st.advance(StatelessnessTest.model(st.modelInput(), st.timestep()));
            }
            float[] early = st.earlyResult();
            float[] estimate = st.denoised();
            for (int i = 0; i < early.length; i++) {
                float want = mask[i % 36] == 0f ? x0[i] : estimate[i];
                assertEquals(want, early[i], 0f, info.id() + " value " + i);
            }
        }
    }
}
