package dev.sdserve.sampler;

import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Trajectories that start at a strength (img2img, inpainting) for every sampler, as diffusers' pipelines cut the
 * schedule: {@code init_timestep = min(int(steps·strength), steps)}, {@code t_start = steps − init_timestep}, the
 * scheduler entered at {@code timesteps[t_start·order:]} (Heun's order 2), the image latent noised with the scheduler's
 * {@code add_noise} at the first kept timestep. The golden cases (ddim, euler, dpmpp_2m, euler a) run in
 * {@code conformance}; these check the other samplers' structure and the blend's invariants.
 */
class ImageStartTest {
    static final int SIZE = 4 * 6 * 6;

    static float[] randn(long seed) {
        float[] x = new float[SIZE];
        new TorchGenerator(seed).fill(x);
        return x;
    }

    @Test
    void everySamplerKeepsTheStepsDiffusersKeeps() {
        for (Samplers.Info info : Samplers.list()) {
            DiffusersSampler s = Samplers.create(info.id());
            for (int steps : new int[]{7, 10, 20}) {
                double[] ts = s.plan(steps).timesteps();
                for (double strength : new double[]{0.3, 0.5, 0.6, 0.75, 1.0}) {
                    int kept = Math.min((int) (steps * strength), steps);
                    int tStart = steps - kept;
                    StrengthCut cut = s.strengthCut(steps, strength);
                    String what = info.id() + " " + steps + " steps at " + strength;
                    assertEquals(kept, cut.keptSteps(), what);
                    int expectedEvals = switch (info.id()) {
                        case "heun" -> 2 * kept - 1;     // timesteps[2·t_start:] of [t0, t1, t1, …, t_{m−1}, t_{m−1}]
                        case "pndm" -> kept + 1;         // PLMS repeats its second timestep: m + 1 evaluations
                        default -> kept;
                    };
                    assertEquals(expectedEvals, cut.evaluations(), what);
                    assertEquals(ts.length - expectedEvals, cut.beginIndex(), what);
                    assertEquals(tStart * (info.id().equals("heun") ? 2 : 1), cut.beginIndex(), what);
                    assertEquals(ts[cut.beginIndex()], cut.firstTimestep(), what);

                    SamplerState st = s.start(steps, ImageInit.img2img(randn(1), randn(2), strength), new TorchGenerator(3));
                    assertEquals(expectedEvals, st.totalEvaluations(), what);
                    List<Double> seen = new ArrayList<>();
                    while (!st.done()) {
                        assertEquals(seen.size(), st.evaluation(), what);
                        seen.add(st.timestep());
                        st.advance(StatelessnessTest.model(st.modelInput(), st.timestep()));
                    }
                    for (int i = 0; i < seen.size(); i++) {
                        assertEquals(ts[cut.beginIndex() + i], seen.get(i), what + " timestep " + i);
                    }
                    for (float v : st.latents()) {
                        assertTrue(Float.isFinite(v), what);
                    }
                }
            }
        }
    }

    @Test
    void strengthOutsideTheRangeOrKeepingNoStepIsRefused() {
        DiffusersSampler s = Samplers.create("euler");
        for (double bad : new double[]{0, -0.1, 1.01, Double.NaN}) {
            assertThrows(IllegalArgumentException.class, () -> s.strengthCut(10, bad), "strength " + bad);
        }
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> s.strengthCut(10, 0.05));
        assertTrue(e.getMessage().contains("0.1"), e.getMessage());
        assertEquals(1, s.strengthCut(10, 0.1).keptSteps());
        // Python's int() of the float product: 0.7 · 10 = 7.000000000000001 keeps 7, 0.29 · 100 = 28.999999999999996 keeps 28
        assertEquals(7, s.strengthCut(10, 0.7).keptSteps());
        assertEquals(28, s.strengthCut(100, 0.29).keptSteps());
    }

    @Test
    void startLatentIsTheSchedulersAddNoise() {
        float[] x0 = randn(11), n = randn(12);
        // σ samplers: x0 + σ·n at the first kept sigma
        DiffusersSampler euler = Samplers.create("euler");
        StrengthCut cut = euler.strengthCut(10, 0.6);
        double sigma = euler.plan(10).sigmas()[cut.beginIndex()];
        float[] got = euler.start(10, ImageInit.img2img(x0, n, 0.6), null).latents();
        for (int i = 0; i < SIZE; i++) {
            assertEquals(x0[i] + sigma * n[i], got[i], 1e-5);
        }
        // DDIM: sqrt(ᾱ)·x0 + sqrt(1 − ᾱ)·n; the scaled input is the sample itself
        DiffusersSampler ddim = Samplers.create("ddim");
        SamplerState st = ddim.start(10, ImageInit.img2img(x0, n, 0.6), null);
        int t = (int) st.timestep();
        double ac = ddim.schedule.alphasCumprod[t];
        float[] in = st.modelInput();
        for (int i = 0; i < SIZE; i++) {
            assertEquals(Math.sqrt(ac) * x0[i] + Math.sqrt(1 - ac) * n[i], in[i], 1e-5);
        }
        // DPM-Solver: α·x0 + σ·α·n with α = 1/sqrt(σ² + 1)
        DiffusersSampler dpm = Samplers.create("dpmpp_2m");
        double s2 = dpm.plan(10).sigmas()[dpm.strengthCut(10, 0.3).beginIndex()];
        double a = 1 / Math.sqrt(s2 * s2 + 1);
        float[] d = dpm.start(10, ImageInit.img2img(x0, n, 0.3), null).latents();
        for (int i = 0; i < SIZE; i++) {
            assertEquals(a * x0[i] + s2 * a * n[i], d[i], 1e-5);
        }
    }

    @Test
    void inpaintingAtFullStrengthStartsFromNoiseLikeTxt2img() {
        float[] n = randn(21);
        for (String id : List.of("euler", "ddim", "heun", "dpmpp_2m_karras")) {
            DiffusersSampler s = Samplers.create(id);
            float[] want = s.start(10, n, new TorchGenerator(1)).latents();
            float[] got = s.start(10, ImageInit.inpaint(null, n, 1.0, null), new TorchGenerator(1)).latents();
            assertArrayEquals(want, got, id);
            // img2img at strength 1 still noises the image latent (diffusers' img2img pipeline)
            float[] img = s.start(10, ImageInit.img2img(randn(22), n, 1.0), new TorchGenerator(1)).latents();
            assertNotEquals(want[0], img[0], id);
        }
    }

    @Test
    void blendKeepsTheKnownRegionAtTheNextNoiseLevelAndCleanAtTheEnd() {
        float[] x0 = randn(31), n = randn(32);
        float[] mask = new float[36];
        for (int i = 0; i < mask.length; i++) {
            mask[i] = i % 3 == 0 ? 1f : 0f; // one cell in three repainted
        }
        for (Samplers.Info info : Samplers.list()) {
            DiffusersSampler s = Samplers.create(info.id());
            SamplerState st = s.start(10, ImageInit.inpaint(x0, n, 0.8, mask), new TorchGenerator(5));
            StrengthCut cut = s.strengthCut(10, 0.8);
            int k = 0;
            while (!st.done()) {
                st.advance(StatelessnessTest.model(st.modelInput(), st.timestep()));
                k++;
                float[] lat = st.latents();
                float[] known = st.done() ? x0 : s.addNoise(10, cut.beginIndex() + k, x0, n);
                for (int i = 0; i < SIZE; i++) {
                    if (mask[i % 36] == 0f) {
                        assertEquals(known[i], lat[i], 0f, info.id() + " evaluation " + k + " value " + i);
                    }
                }
            }
            // a mask of ones repaints everything: the plain inpainting trajectory (to float32 rounding: the blend
            // stores the sample in float32, as diffusers' pipeline holds it, the plain state in double)
            float[] ones = new float[36];
            java.util.Arrays.fill(ones, 1f);
            SamplerState a = s.start(10, ImageInit.inpaint(x0, n, 0.8, ones), new TorchGenerator(5));
            SamplerState b = s.start(10, ImageInit.inpaint(x0, n, 0.8, null), new TorchGenerator(5));
            while (!a.done()) {
                a.advance(StatelessnessTest.model(a.modelInput(), a.timestep()));
                b.advance(StatelessnessTest.model(b.modelInput(), b.timestep()));
                assertArrayEquals(b.latents(), a.latents(), 1e-5f, info.id());
            }
        }
    }

    @Test
    void lmsFromMidScheduleUsesTheHigherOrderFirstCoefficientAlone() {
        // diffusers zips order-min(step_index + 1, 4) coefficients with the one derivative it has: the first step
        // from begin index b is x + c0·d, c0 the integral over [σ_b, σ_{b+1}] of the Lagrange basis polynomial of σ_b
        // on the nodes σ_b, σ_{b−1}, … (computed here by Simpson's rule)
        DiffusersSampler lms = Samplers.create("lms");
        float[] x0 = randn(41), n = randn(42);
        StrengthCut cut = lms.strengthCut(10, 0.5);
        int b = cut.beginIndex();
        int order = Math.min(b + 1, 4);
        double[] sig = lms.plan(10).sigmas();
        double c0 = simpson(tau -> {
            double p = 1;
            for (int j = 1; j < order; j++) {
                p *= (tau - sig[b - j]) / (sig[b] - sig[b - j]);
            }
            return p;
        }, sig[b], sig[b + 1], 20000);
        assertNotEquals(sig[b + 1] - sig[b], c0, 1e-3, "order > 1 here: not an Euler step");
        SamplerState st = lms.start(10, ImageInit.img2img(x0, n, 0.5), null);
        float[] before = st.latents();
        float[] eps = StatelessnessTest.model(st.modelInput(), st.timestep());
        st.advance(eps);
        float[] after = st.latents();
        for (int i = 0; i < SIZE; i++) {
            assertEquals(before[i] + c0 * eps[i], after[i], 2e-5, "value " + i);
        }
    }

    private static double simpson(java.util.function.DoubleUnaryOperator f, double a, double b, int n) {
        double h = (b - a) / n, s = f.applyAsDouble(a) + f.applyAsDouble(b);
        for (int i = 1; i < n; i++) {
            s += f.applyAsDouble(a + i * h) * (i % 2 == 0 ? 2 : 4);
        }
        return s * h / 3;
    }

    @Test
    void imageTrajectoriesInterleavedWithOthersEqualAlone() {
        List<java.util.function.Supplier<SamplerState>> make = List.of(
                () -> Samplers.create("heun").start(9, ImageInit.img2img(randn(51), randn(52), 0.55), null),
                () -> Samplers.create("euler_a").start(8, randn(53), new TorchGenerator(54)),
                () -> Samplers.create("pndm").start(10, ImageInit.inpaint(randn(55), randn(56), 0.7, maskOf(36)), null),
                () -> Samplers.create("dpmpp_2m_sde_karras").start(12, ImageInit.img2img(randn(57), randn(58), 0.4), new TorchGenerator(59)),
                () -> Samplers.create("unipc").start(6, ImageInit.inpaint(randn(60), randn(61), 1.0, maskOf(36)), null));
        List<List<float[]>> alone = new ArrayList<>();
        for (var m : make) {
            SamplerState s = m.get();
            List<float[]> tr = new ArrayList<>();
            while (!s.done()) {
                s.advance(StatelessnessTest.model(s.modelInput(), s.timestep()));
                tr.add(s.latents());
            }
            alone.add(tr);
        }
        List<SamplerState> states = new ArrayList<>();
        List<List<float[]>> together = new ArrayList<>();
        for (var m : make) {
            states.add(m.get());
            together.add(new ArrayList<>());
        }
        boolean any = true;
        while (any) {
            any = false;
            List<float[]> outs = new ArrayList<>();
            for (SamplerState s : states) {
                outs.add(s.done() ? null : StatelessnessTest.model(s.modelInput().clone(), s.timestep()));
            }
            for (int i = 0; i < states.size(); i++) {
                if (outs.get(i) != null) {
                    states.get(i).advance(outs.get(i));
                    together.get(i).add(states.get(i).latents());
                    any = true;
                }
            }
        }
        for (int i = 0; i < make.size(); i++) {
            assertEquals(alone.get(i).size(), together.get(i).size());
            for (int k = 0; k < alone.get(i).size(); k++) {
                assertArrayEquals(alone.get(i).get(k), together.get(i).get(k), "request " + i + " step " + k);
            }
        }
    }

    private static float[] maskOf(int cells) {
        float[] m = new float[cells];
        for (int i = 0; i < cells; i++) {
            m[i] = i < cells / 2 ? 1f : 0f;
        }
        return m;
    }
}
