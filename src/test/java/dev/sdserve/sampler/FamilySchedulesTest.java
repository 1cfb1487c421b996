package dev.sdserve.sampler;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.sdserve.testutil.Shared;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The scheduler configs SDXL base and SD 2.1 ship ({@link SchedulerConfig#forModel}) give every golden pipeline's
 * timesteps, sigmas and init_noise_sigma with the service's sampler of the same kind: SDXL's "leading" spacing for
 * every sampler, SD 2.x's DDIM/PNDM leading and Euler/DPM++ linspace, v-prediction (and the 512-base epsilon PNDM).
 */
class FamilySchedulesTest {
    @Test
    void shippedConfigsGiveTheGoldenSchedules() throws IOException {
        int checked = 0;
        for (String set : List.of("sdxl-tiny", "sd2v-tiny")) {
            JsonNode root = new ObjectMapper().readTree(Shared.golden(set).resolve("golden.json").toFile());
            String family = set.startsWith("sdxl") ? "sdxl" : "sd2";
            int steps = root.path("params").path("pipeline").path("num_inference_steps").asInt();
            List<String> names = new ArrayList<>();
            root.path("pipelines").fieldNames().forEachRemaining(names::add);
            for (String name : names) {
                JsonNode p = root.path("pipelines").path(name);
                String prediction = p.path("config").path("prediction_type").asText();
                DiffusersSampler fromGolden = Samplers.forDiffusers(p.path("class").asText(),
                        SchedulerConfig.fromJson(p.path("config")));
                DiffusersSampler shipped = Samplers.create(fromGolden.id(), SchedulerConfig.forModel(family, prediction));
                for (DiffusersSampler s : List.of(fromGolden, shipped)) {
                    SamplingPlan plan = s.plan(steps);
                    String what = set + " " + name + " (" + s.id() + ")";
                    assertEquals(p.path("steps").asInt(), s.evaluations(steps), what);
                    double[] want = doubles(p.path("timesteps"));
                    assertEquals(want.length, plan.timesteps().length, what);
                    for (int i = 0; i < want.length; i++) {
                        assertEquals(want[i], plan.timesteps()[i], 1e-4, what + " timestep " + i);
                    }
                    if (p.has("sigmas")) {
                        double[] sig = doubles(p.path("sigmas"));
                        for (int i = 0; i < sig.length; i++) {
                            assertEquals(sig[i], plan.sigmas()[i], 1e-5 * Math.max(1, sig[i]), what + " sigma " + i);
                        }
                    }
                    assertEquals((float) p.path("init_noise_sigma").asDouble(), (float) plan.initNoiseSigma(), 1e-6f, what);
                    assertEquals(prediction, s.cfg.predictionType, what);
                    checked++;
                }
            }
        }
        assertTrue(checked >= 16, "pipelines checked: " + checked);
        assertEquals("leading", new ResolvedConfig(ResolvedConfig.Family.EULER, SchedulerConfig.forModel("sdxl", "epsilon"))
                .timestepSpacing);
        assertEquals("linspace", new ResolvedConfig(ResolvedConfig.Family.EULER, SchedulerConfig.forModel("sd2", "v_prediction"))
                .timestepSpacing);
        assertEquals(SchedulerConfig.SD15, SchedulerConfig.forModel("sd1", "epsilon"));
    }

    private static double[] doubles(JsonNode a) {
        double[] out = new double[a.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = a.get(i).asDouble();
        }
        return out;
    }
}
