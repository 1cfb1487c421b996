package dev.sdserve.sampler;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.sdserve.testutil.Shared;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Timesteps and init_noise_sigma of every golden pipeline, from its config and from the built-in SD 1.5 defaults. */
class GoldenScheduleTest {
    static final Path GOLDEN = Shared.golden("sd15-tiny");

    static JsonNode golden() throws IOException {
        return new ObjectMapper().readTree(GOLDEN.resolve("golden.json").toFile());
    }

    @Test
    void timestepsAndInitSigmaMatchDiffusers() throws IOException {
        JsonNode root = golden();
        int steps = root.path("params").path("pipeline").path("num_inference_steps").asInt();
        List<String> names = new ArrayList<>();
        root.path("pipelines").fieldNames().forEachRemaining(names::add);
        assertEquals(11, names.size(), "golden pipelines " + names);
        double maxDiff = 0;
        for (String name : names) {
            JsonNode p = root.path("pipelines").path(name);
            double[] want = new double[p.path("timesteps").size()];
            for (int i = 0; i < want.length; i++) {
                want[i] = p.path("timesteps").get(i).asDouble();
            }
            float wantSigma = (float) p.path("init_noise_sigma").asDouble();
            DiffusersSampler fromGolden = Samplers.create(name, SchedulerConfig.fromJson(p.path("config")));
            DiffusersSampler builtIn = Samplers.create(name);
            for (DiffusersSampler s : List.of(fromGolden, builtIn)) {
                SamplingPlan plan = s.plan(steps);
                double[] got = plan.timesteps();
                assertEquals(want.length, got.length, name + " evaluations");
                assertEquals(p.path("steps").asInt(), s.evaluations(steps), name + " evaluations()");
                for (int i = 0; i < want.length; i++) {
                    if (want[i] == Math.rint(want[i])) {
                        assertEquals(want[i], got[i], 0.0, name + " timestep " + i + " " + plan);
                    } else {
                        // Karras timesteps are fractional: numpy's float32 log (SIMD, not correctly rounded) makes
                        // diffusers' log-sigma table differ from a correctly rounded one in the last bit here and
                        // there, which moves a timestep by a few float32 ulps (< 1e-5 of a training step)
                        double diff = Math.abs(want[i] - (float) got[i]);
                        maxDiff = Math.max(maxDiff, diff);
                        assertTrue(diff <= 1e-4, name + " timestep " + i + ": " + got[i] + " vs " + want[i] + " " + plan);
                    }
                }
                assertEquals(wantSigma, (float) plan.initNoiseSigma(), 0.0, name + " init_noise_sigma");
            }
        }
        System.out.println("golden timesteps: fractional ones within " + maxDiff);
    }

    @Test
    void builtInDefaultsResolveToTheGoldenConfigs() throws IOException {
        // every key diffusers listed in the golden config resolves to the same value from the SD 1.5 defaults
        JsonNode root = golden();
        root.path("pipelines").fields().forEachRemaining(e -> {
            ResolvedConfig fromGolden = Samplers.create(e.getKey(), SchedulerConfig.fromJson(e.getValue().path("config"))).cfg;
            ResolvedConfig builtIn = Samplers.create(e.getKey()).cfg;
            String k = e.getKey();
            assertEquals(fromGolden.family, builtIn.family, k);
            assertEquals(fromGolden.numTrainTimesteps, builtIn.numTrainTimesteps, k);
            assertEquals(fromGolden.betaStart, builtIn.betaStart, k);
            assertEquals(fromGolden.betaEnd, builtIn.betaEnd, k);
            assertEquals(fromGolden.betaSchedule, builtIn.betaSchedule, k);
            assertEquals(fromGolden.stepsOffset, builtIn.stepsOffset, k);
            assertEquals(fromGolden.timestepSpacing, builtIn.timestepSpacing, k);
            assertEquals(fromGolden.setAlphaToOne, builtIn.setAlphaToOne, k);
            assertEquals(fromGolden.useKarrasSigmas, builtIn.useKarrasSigmas, k);
            assertEquals(fromGolden.predictionType, builtIn.predictionType, k);
            assertEquals(fromGolden.algorithmType, builtIn.algorithmType, k);
            assertEquals(fromGolden.solverType, builtIn.solverType, k);
            assertEquals(fromGolden.solverOrder, builtIn.solverOrder, k);
            assertEquals(fromGolden.finalSigmasType, builtIn.finalSigmasType, k);
            assertEquals(fromGolden.clipSample, builtIn.clipSample, k);
            assertEquals(fromGolden.lowerOrderFinal, builtIn.lowerOrderFinal, k);
            assertEquals(fromGolden.lambdaMinClipped, builtIn.lambdaMinClipped, k);
        });
    }

    @Test
    void sigmasOfTheEulerFamilyAreTheTrainingSigmasAtTheTimesteps() throws IOException {
        // independent check: alphas_cumprod in plain double precision (no float32 emulation; diffusers' float32
        // 1 - beta loses up to 4e-5 of sigma near t = 0)
        double[] ac = AnalyticModel.alphasCumprod(0.00085, 0.012, 1000);
        SamplingPlan plan = Samplers.create("euler").plan(10);
        double[] ts = plan.timesteps(), sig = plan.sigmas();
        assertEquals(11, sig.length);
        for (int i = 0; i < 10; i++) {
            double want = Math.sqrt((1 - ac[(int) ts[i]]) / ac[(int) ts[i]]);
            assertEquals(want, sig[i], want * 5e-5, "sigma " + i);
        }
        assertEquals(0.0, sig[10]);
        // Karras: rho = 7 spacing between sigma_min and sigma_max
        double[] ks = Samplers.create("dpmpp_2m_karras").plan(10).sigmas();
        double smin = Math.sqrt((1 - ac[0]) / ac[0]), smax = Math.sqrt((1 - ac[999]) / ac[999]);
        for (int i = 0; i < 10; i++) {
            double r = i / 9.0;
            double want = Math.pow(Math.pow(smax, 1 / 7.0) + r * (Math.pow(smin, 1 / 7.0) - Math.pow(smax, 1 / 7.0)), 7);
            assertEquals(want, ks[i], want * 5e-5, "karras sigma " + i);
        }
    }

    @Test
    void otherSpacingsAndStepCounts() {
        // hand-computed from diffusers' formulas
        SchedulerConfig trailing = SchedulerConfig.SD15.with("timestep_spacing", "trailing");
        assertArrayEq(new double[] {999, 799, 599, 399, 199}, Samplers.create("ddim", trailing).plan(5).timesteps());
        assertArrayEq(new double[] {999, 666, 332}, Samplers.create("euler", trailing).plan(3).timesteps());
        SchedulerConfig linspace = SchedulerConfig.SD15.with("timestep_spacing", "linspace");
        assertArrayEq(new double[] {999, 500, 0}, Samplers.create("ddim", linspace).plan(3).timesteps());
        SchedulerConfig leading = SchedulerConfig.SD15.with("timestep_spacing", "leading");
        SamplingPlan eulerLeading = Samplers.create("euler", leading).plan(4);
        assertArrayEq(new double[] {751, 501, 251, 1}, eulerLeading.timesteps());
        double s = eulerLeading.sigmas()[0];
        assertEquals((float) Math.sqrt(s * s + 1), (float) eulerLeading.initNoiseSigma(), 1e-6);
        // DPM-Solver leading: step_ratio = 1000 // 5
        assertArrayEq(new double[] {801, 601, 401, 201}, Samplers.create("dpmpp_2m", leading).plan(4).timesteps());
        // linspace with fractional spacing: Euler keeps the fraction, DPM rounds half to even
        assertArrayEq(new double[] {999, 832.5f, 666, 499.5f, 333, 166.5f, 0}, Samplers.create("euler").plan(7).timesteps());
        assertEquals(2 * 25 - 1, Samplers.create("heun").evaluations(25));
        assertEquals(26, Samplers.create("pndm").evaluations(25));
        assertEquals(25, Samplers.create("unipc").evaluations(25));
    }

    static void assertArrayEq(double[] want, double[] got) {
        assertEquals(java.util.Arrays.toString(want), java.util.Arrays.toString(got));
        assertTrue(want.length == got.length);
    }
}
