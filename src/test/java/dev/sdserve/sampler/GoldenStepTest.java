package dev.sdserve.sampler;

import dev.sdserve.testutil.Shared;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Checks the first steps of every golden pipeline without the UNet.
 *
 * <p>The guided model is one deterministic function of (model input, timestep). A step is affine in the model
 * output, so the golden latents of one sampler give back the model outputs diffusers used; several samplers ask the
 * model the same question at their first evaluations (same input, same timestep), so those outputs predict the
 * other samplers' golden latents:
 * <ul>
 *   <li>Euler, Euler Karras, LMS, Heun, Euler a: first input noise·σ_max/√(σ_max²+1) at t = 999; LMS and Heun also
 *   ask the same second question as Euler (their first step is Euler's).</li>
 *   <li>DPM++ 2M, DPM++ 2M Karras, DPM++ 2M SDE Karras, UniPC: first input = the noise at t = 999; UniPC's first
 *   step is DPM-Solver++'s first-order step, so the second question is shared too.</li>
 *   <li>DDIM and PLMS: first input = the noise at t = 901; PLMS's first step is DDIM's.</li>
 * </ul>
 * Every shared question is asserted (same timestep, same input), and the Euler recovery is checked against a hand
 * computation with an independent schedule.
 */
class GoldenStepTest {
    static final Path GOLDEN = Shared.golden("sd15-tiny");
    static final Map<String, SamplerConformance.Case> CASES = new HashMap<>();

    @BeforeAll
    static void load() throws IOException {
        for (String p : SamplerConformance.pipelines(GOLDEN)) {
            CASES.put(p, SamplerConformance.load(GOLDEN, p));
        }
    }

    static SamplerState replay(SamplerConformance.Case c, List<float[]> eps) {
        SamplerState s = c.sampler().start(c.steps(), c.initNoise(), new ReplayNoise(c.noise()));
        for (float[] e : eps) {
            s.advance(e);
        }
        return s;
    }

    /** The model outputs at evaluations 0..n-1 that reproduce the golden latents of a pipeline. */
    static List<float[]> recover(SamplerConformance.Case c, int n) {
        List<float[]> known = new ArrayList<>();
        int size = c.initNoise().length;
        for (int k = 0; k < n; k++) {
            float[] zeros = new float[size], ones = new float[size];
            Arrays.fill(ones, 1f);
            List<float[]> a = new ArrayList<>(known);
            a.add(zeros);
            List<float[]> b = new ArrayList<>(known);
            b.add(ones);
            float[] p = replay(c, a).latents(), pq = replay(c, b).latents();
            float[] want = c.latents().get(k);
            float[] eps = new float[size];
            for (int i = 0; i < size; i++) {
                eps[i] = (float) (((double) want[i] - p[i]) / ((double) pq[i] - p[i]));
            }
            known.add(eps);
        }
        return known;
    }

    /** Asserts that two pipelines ask the model the same question at evaluation k (given the outputs so far). */
    static void assertSameQuestion(String a, String b, List<float[]> eps, int k) {
        SamplerState sa = replay(CASES.get(a), eps.subList(0, k));
        SamplerState sb = replay(CASES.get(b), eps.subList(0, k));
        assertEquals(sa.timestep(), sb.timestep(), 1e-3, a + " vs " + b + " timestep at evaluation " + k);
        double err = SamplerConformance.relativeError(sb.modelInput(), sa.modelInput());
        assertTrue(err < 1e-6, a + " vs " + b + " model input at evaluation " + k + ": " + err);
    }

    /** Relative error of pipeline {@code b}'s latents after evaluations 0..n-1 with the given model outputs. */
    static double[] predict(String b, List<float[]> eps, int n) {
        SamplerConformance.Case c = CASES.get(b);
        double[] errs = new double[n];
        for (int k = 0; k < n; k++) {
            errs[k] = SamplerConformance.relativeError(replay(c, eps.subList(0, k + 1)).latents(), c.latents().get(k));
        }
        return errs;
    }

    static final double TOL = 2e-6;

    static void check(String source, String target, List<float[]> eps, int n, StringBuilder report) {
        for (int k = 0; k < n; k++) {
            assertSameQuestion(source, target, eps, k);
        }
        double[] errs = predict(target, eps, n);
        report.append(String.format("%-20s from %-9s evaluations 0..%d: rel. errors %s%n", target, source, n - 1, Arrays.toString(errs)));
        for (double e : errs) {
            assertTrue(e < TOL, target + " from " + source + ": " + Arrays.toString(errs));
        }
    }

    @Test
    void eulerFamily() {
        List<float[]> eps = recover(CASES.get("euler"), 2);
        // hand check of Euler's step with an independent schedule: x1 = x0 + (σ1 − σ0)·eps
        AnalyticModel m = new AnalyticModel(1, false);
        SamplerConformance.Case c = CASES.get("euler");
        double s0 = m.sigma(999), s1 = m.sigma(888);
        float[] x1 = c.latents().get(0);
        double num = 0, den = 0;
        for (int i = 0; i < x1.length; i++) {
            double e = (x1[i] - c.initNoise()[i] * s0) / (s1 - s0);
            num += (e - eps.get(0)[i]) * (e - eps.get(0)[i]);
            den += e * e;
        }
        assertTrue(Math.sqrt(num / den) < 1e-4, "euler eps vs hand computation: " + Math.sqrt(num / den));

        StringBuilder r = new StringBuilder();
        check("euler", "euler_karras", eps, 1, r);
        check("euler", "euler_ancestral", eps, 1, r);
        check("euler", "lms", eps, 2, r);
        check("euler", "heun", eps, 2, r);
        System.out.print(r);
    }

    @Test
    void multistepFamily() {
        List<float[]> eps = recover(CASES.get("dpmpp_2m"), 2);
        StringBuilder r = new StringBuilder();
        check("dpmpp_2m", "unipc", eps, 2, r);
        check("dpmpp_2m", "dpmpp_2m_karras", eps, 1, r);
        check("dpmpp_2m", "dpmpp_2m_sde_karras", eps, 1, r);
        System.out.print(r);
    }

    @Test
    void ddimAndPlms() {
        List<float[]> eps = recover(CASES.get("ddim"), 2);
        StringBuilder r = new StringBuilder();
        check("ddim", "pndm", eps, 2, r);
        System.out.print(r);
    }

    @Test
    void conformanceRunnerReplaysAPipeline() {
        // plumbing of SamplerConformance.run: the model is asked at exactly the golden timesteps, in order, and the
        // stochastic pipelines get the recorded noise (the outputs fed back are recovered through the sampler itself,
        // so this checks the runner, not the step math)
        for (var c : CASES.values()) {
            List<float[]> eps = recover(c, c.latents().size());
            int[] k = {0};
            SamplerConformance.Result r = SamplerConformance.run(c, (in, t) -> {
                assertEquals(c.timesteps()[k[0]], t, 1e-4, c.pipeline() + " timestep " + k[0]);
                return eps.get(k[0]++);
            });
            assertEquals(c.latents().size(), r.evaluations());
            assertTrue(r.finalRelativeError() < 1e-6 && r.maxStepError() < 1e-6, c.pipeline() + " " + Arrays.toString(r.stepErrors()));
        }
    }

    @Test
    void recordedLatentCounts() {
        for (var c : CASES.values()) {
            assertEquals(c.latents().size(), c.sampler().evaluations(c.steps()), c.pipeline());
            assertEquals(c.timesteps().length, c.sampler().evaluations(c.steps()), c.pipeline());
        }
    }
}
