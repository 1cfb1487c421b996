package dev.sdserve.sampler;

import dev.sdserve.testutil.Shared;
import org.junit.jupiter.api.Test;

import java.nio.file.Path;
import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Every sampler state's denoised estimate x̂0 of its latest evaluation (what previews show). */
class DenoisedEstimateTest {

    /**
     * The golden set's preview cases, each sampler driven by the recorded guided ε (no engine): σ, timestep, UNet
     * input and x̂0 of every evaluation against diffusers'.
     */
    @Test
    void matchesTheGoldenPreviewCasesOfEverySampler() throws Exception {
        Path set = Shared.golden("sd15-tiny");
        List<PreviewCases.Case> cases = PreviewCases.load(set);
        assertEquals(Samplers.list().size(), cases.size(), "a preview case per sampler");
        for (PreviewCases.Case c : cases) {
            PreviewCases.Recorded r = PreviewCases.run(c, (k, x, t) -> c.eps().get(k));
            assertEquals(c.evaluations(), r.sigma().length, c.name() + " evaluations");
            assertEquals(c.noise().size() - c.unusedDraws(), r.drawsUsed(), c.name() + " draws");
            for (int k = 0; k < c.evaluations(); k++) {
                String at = c.name() + " evaluation " + k;
                assertEquals(c.sigma()[k], r.sigma()[k], 1e-6 * c.sigma()[k], at + " sigma");
                assertEquals(c.timestep()[k], r.timestep()[k], 1e-3, at + " timestep");
                assertEquals(k, r.denoisedEvaluation()[k], at);
                assertTrue(SamplerConformance.relativeError(r.xIn().get(k), c.xIn().get(k)) < 1e-5, at + " x_in");
                double e = SamplerConformance.relativeError(r.denoised().get(k), c.denoised().get(k));
                assertTrue(e < 1e-5, at + " x̂0 relative error " + e);
            }
        }
    }

    /**
     * For Gaussian data the exact model's E[x0 | x_t] is known in closed form; every sampler, with an epsilon and with
     * a v-prediction model, must report it as x̂0 at every evaluation (timestep samplers and σ samplers, both of
     * Heun's evaluations, the multistep solvers' histories notwithstanding).
     */
    @Test
    void isTheExactPosteriorMeanForGaussianDataWithEpsilonAndV() {
        double s = 0.8;
        float[] noise = new float[4 * 6 * 5];
        Random rnd = new Random(7);
        for (int i = 0; i < noise.length; i++) {
            noise[i] = (float) rnd.nextGaussian();
        }
        int exact = 0, all = 0;
        for (boolean v : new boolean[]{false, true}) {
            AnalyticModel model = new AnalyticModel(s, v);
            SchedulerConfig cfg = v ? SchedulerConfig.SD15.with("prediction_type", "v_prediction") : SchedulerConfig.SD15;
            for (Samplers.Info info : Samplers.list()) {
                DiffusersSampler sampler = Samplers.create(info.id(), cfg);
                SamplerState st = sampler.start(12, noise, new TorchGenerator(3));
                assertNull(st.denoised(), "no estimate before the first evaluation");
                assertEquals(-1, st.denoisedEvaluation());
                while (!st.done()) {
                    int k = st.evaluation();
                    double t = st.timestep();
                    double sigma = st.sigma();
                    float[] in = st.modelInput().clone();
                    st.advance(model.predict(in, t));
                    // E[x0 | x_t] = √ᾱ s² / (ᾱ s² + 1 − ᾱ) · x_t, x_t the (VP) model input, ᾱ = 1/(σ²+1) of the timestep
                    double sg = model.sigma(t);
                    double abar = 1 / (1 + sg * sg);
                    double c = Math.sqrt(abar) * s * s / (abar * s * s + 1 - abar);
                    float[] want = new float[in.length];
                    for (int i = 0; i < in.length; i++) {
                        want[i] = (float) (c * in[i]);
                    }
                    String at = info.id() + (v ? " (v)" : " (eps)") + " evaluation " + k;
                    all++;
                    assertEquals(k, st.denoisedEvaluation(), at);
                    if (Math.abs(sg - sigma) > 1e-4 * sg) {
                        // DPM-Solver and UniPC with Karras sigmas give the UNet the rounded timestep, as diffusers
                        // does, while their math (and x̂0) uses the exact σ: the model's σ(t) is only near it
                        assertEquals(Math.rint(model.timestepOf(sigma)), t, 1e-9, at + ": the timestep is σ's, rounded");
                        assertTrue(sampler.diffusersClass().matches("DPMSolverMultistepScheduler|UniPCMultistepScheduler"), at);
                        continue;
                    }
                    double e = SamplerConformance.relativeError(st.denoised(), want);
                    assertTrue(e < 1e-4, at + ": x̂0 relative error " + e);
                    exact++;
                }
                float[] a = st.denoised();
                assertFalse(a == st.denoised(), "a new array on every call");
                assertArrayEquals(a, st.denoised());
            }
        }
        assertTrue(exact > 0.75 * all, exact + " of " + all + " evaluations checked exactly");
    }
}
