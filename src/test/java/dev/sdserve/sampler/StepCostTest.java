package dev.sdserve.sampler;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertTrue;

/** Step math cost on an SD 1.5 512×512 latent (4×64×64 floats); a generous bound catches accidental blow-ups. */
class StepCostTest {
    @Test
    void stepsAreCheap() {
        int size = 4 * 64 * 64;
        float[] eps = new float[size];
        for (int i = 0; i < size; i++) {
            eps[i] = (float) Math.sin(i);
        }
        StringBuilder r = new StringBuilder();
        for (Samplers.Info info : Samplers.list()) {
            DiffusersSampler s = Samplers.create(info.id());
            long best = Long.MAX_VALUE;
            for (int rep = 0; rep < 4; rep++) {
                TorchGenerator g = new TorchGenerator(rep);
                float[] noise = new float[size];
                g.fill(noise);
                SamplerState st = s.start(20, noise, g);
                long t0 = System.nanoTime();
                while (!st.done()) {
                    st.modelInput();
                    st.advance(eps);
                }
                best = Math.min(best, (System.nanoTime() - t0) / st.totalEvaluations());
            }
            r.append(String.format("%s %.0f us/evaluation; ", info.id(), best / 1e3));
            assertTrue(best < 20_000_000, info.id() + " takes " + best + " ns per evaluation");
        }
        System.out.println(r);
    }
}
