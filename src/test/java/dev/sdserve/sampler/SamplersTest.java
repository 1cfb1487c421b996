package dev.sdserve.sampler;

import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class SamplersTest {
    @Test
    void registry() {
        List<Samplers.Info> all = Samplers.list();
        assertEquals(11, all.size());
        Map<String, String> names = Map.ofEntries(Map.entry("euler_a", "Euler a"), Map.entry("euler", "Euler"),
                Map.entry("euler_karras", "Euler Karras"), Map.entry("lms", "LMS"), Map.entry("heun", "Heun"),
                Map.entry("dpmpp_2m", "DPM++ 2M"), Map.entry("dpmpp_2m_karras", "DPM++ 2M Karras"),
                Map.entry("dpmpp_2m_sde_karras", "DPM++ 2M SDE Karras"), Map.entry("ddim", "DDIM"),
                Map.entry("pndm", "PLMS"), Map.entry("unipc", "UniPC"));
        for (Samplers.Info i : all) {
            assertEquals(names.get(i.id()), i.displayName());
            assertEquals(i.id().equals("euler_a") || i.id().equals("dpmpp_2m_sde_karras"), i.stochastic(), i.id());
            DiffusersSampler s = Samplers.create(i.id());
            assertEquals(i.id(), s.id());
            assertEquals(i.displayName(), s.displayName());
            assertEquals(i.stochastic(), s.stochastic());
        }
        assertEquals("euler_a", Samplers.info("EULER A").id());
        assertEquals("euler_a", Samplers.info("euler_ancestral").id());
        assertEquals("dpmpp_2m_sde_karras", Samplers.info("dpm++ 2m sde karras").id());
        assertEquals("pndm", Samplers.info("plms").id());
        assertEquals("unipc", Samplers.info(" UniPC ").id());
        assertSame(Samplers.create("ddim"), Samplers.create("DDIM"));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Samplers.info("k_dpm_fast"));
        assertTrue(e.getMessage().contains("k_dpm_fast") && e.getMessage().contains("DPM++ 2M Karras")
                && e.getMessage().contains("euler_a"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> Samplers.info(null));
        assertEquals(null, Samplers.find("nope"));
        assertEquals("heun", Samplers.find("Heun").id());
        assertEquals(11, Samplers.ids().size());
    }

    @Test
    void configParsingAndValidation() {
        SchedulerConfig c = SchedulerConfig.fromJson("""
                {"_class_name": "EulerDiscreteScheduler", "num_train_timesteps": 1000, "beta_start": 0.00085,
                 "beta_end": 0.012, "beta_schedule": "scaled_linear", "trained_betas": null, "steps_offset": 1,
                 "prediction_type": "v_prediction", "timestep_spacing": "trailing", "sigma_min": null,
                 "lambda_min_clipped": null, "disable_corrector": []}""");
        assertEquals("v_prediction", c.values().get("prediction_type"));
        DiffusersSampler euler = Samplers.create("euler", c);
        assertTrue(euler.cfg.vPrediction());
        assertEquals("trailing", euler.cfg.timestepSpacing);
        assertEquals(Double.NEGATIVE_INFINITY, Samplers.create("dpmpp_2m", c).cfg.lambdaMinClipped);
        // a variant's defining settings win over the base config
        assertTrue(Samplers.create("euler_karras", c.with("use_karras_sigmas", false)).cfg.useKarrasSigmas);
        // missing keys take the diffusers class defaults (DDIM: clip_sample and set_alpha_to_one default true)
        DiffusersSampler ddim = Samplers.create("ddim", SchedulerConfig.EMPTY);
        assertTrue(ddim.cfg.clipSample);
        assertTrue(ddim.cfg.setAlphaToOne);
        assertEquals("linear", ddim.cfg.betaSchedule);
        assertEquals("leading", ddim.cfg.timestepSpacing);
        assertEquals("linspace", Samplers.create("unipc", SchedulerConfig.EMPTY).cfg.timestepSpacing);

        assertMessage("thresholding", () -> Samplers.create("ddim", SchedulerConfig.SD15.with("thresholding", true)));
        assertMessage("timestep_spacing", () -> Samplers.create("euler", SchedulerConfig.SD15.with("timestep_spacing", "odd")));
        assertMessage("prediction_type", () -> Samplers.create("euler", SchedulerConfig.SD15.with("prediction_type", "flow")));
        assertMessage("beta_schedule", () -> Samplers.create("euler", SchedulerConfig.SD15.with("beta_schedule", "exp")).plan(10));
        // "pndm" is PLMS: it sets skip_prk_steps itself; the PNDM class without it (PRK warm-up) is not implemented
        assertTrue(Samplers.create("pndm", SchedulerConfig.EMPTY.with("skip_prk_steps", false)).evaluations(10) == 11);
        assertMessage("skip_prk_steps", () -> new DiffusersSampler("x", "x", ResolvedConfig.Family.PNDM, false, SchedulerConfig.EMPTY));
        assertMessage("beta_end", () -> Samplers.create("euler", SchedulerConfig.SD15.with("beta_end", "high")));
        assertMessage("JSON", () -> SchedulerConfig.fromJson("{nope"));
        assertMessage("steps", () -> Samplers.create("euler").plan(1001));
    }

    @Test
    void otherBetaSchedules() {
        // linear schedule: sigma table from betas linspace(1e-4, 0.02)
        DiffusersSampler s = Samplers.create("euler", SchedulerConfig.EMPTY);
        double[] ac = new double[1000];
        double a = 1;
        for (int i = 0; i < 1000; i++) {
            a *= 1 - (1e-4 + (0.02 - 1e-4) * i / 999);
            ac[i] = a;
        }
        double want = Math.sqrt((1 - ac[999]) / ac[999]);
        assertEquals(want, s.plan(10).initNoiseSigma(), want * 1e-4);
        // cosine schedule builds and stays finite
        DiffusersSampler cos = Samplers.create("dpmpp_2m", SchedulerConfig.SD15.with("beta_schedule", "squaredcos_cap_v2"));
        for (double sg : cos.plan(20).sigmas()) {
            assertTrue(Double.isFinite(sg));
        }
        assertFalse(cos.plan(20).sigmas()[0] <= 0);
    }

    static void assertMessage(String fragment, org.junit.jupiter.api.function.Executable e) {
        IllegalArgumentException ex = assertThrows(IllegalArgumentException.class, e);
        assertTrue(ex.getMessage().contains(fragment), ex.getMessage());
    }
}
