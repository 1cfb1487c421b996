package dev.sdserve.admission;

import dev.sdserve.engine.fake.FakeEngine;
import dev.sdserve.job.GenerationRequest;
import dev.sdserve.job.ResolvedRequest;
import dev.sdserve.job.ServeException;
import dev.sdserve.model.ModelDefaults;
import dev.sdserve.sampler.LibrarySamplers;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.*;

/** A model's recommended settings fill what a request leaves unset; explicit values win; other models keep the server's. */
class RecommendedDefaultsTest {
    private static final long NOW = 1_000_000L;
    private final FakeEngine engine = new FakeEngine(new FakeEngine.Config().models(8, 512, "shapes", "plain", "bad", "half"));
    private final AdmissionConfig config = new AdmissionConfig();
    private final Validation v;

    RecommendedDefaultsTest() {
        config.defaultModel = "shapes";
        config.modelDefaults = n -> switch (n) {
            case "shapes" -> new ModelDefaults("DPM++ 2M", 25, 5.0, 128, 96, 2);
            case "bad" -> new ModelDefaults("no_such_sampler", null, null, null, null, null);
            case "half" -> new ModelDefaults(null, null, 4.0, null, null, null);
            default -> ModelDefaults.NONE;
        };
        v = new Validation(config, engine::describe, new LibrarySamplers(), () -> 7L);
    }

    private ResolvedRequest resolve(GenerationRequest r) {
        return v.resolve(r, NOW);
    }

    @Test
    void unsetFieldsTakeTheModelsRecommendations() {
        ResolvedRequest r = resolve(GenerationRequest.ofPrompt("a red circle"));
        assertEquals("shapes", r.model());
        assertEquals("dpmpp_2m", r.sampler(), "an A1111 display name in the sidecar resolves to the id");
        assertEquals(25, r.steps());
        assertEquals(5.0, r.guidance());
        assertEquals(128, r.width());
        assertEquals(96, r.height());
        assertEquals(2, r.clipSkip());
    }

    @Test
    void explicitValuesWin() {
        GenerationRequest g = GenerationRequest.ofPrompt("a red circle").withSampler("euler").withSteps(7)
                .withGuidance(0.0).withSize(64, 256);
        ResolvedRequest r = resolve(new GenerationRequest(g.prompt(), null, null, null, g.width(), g.height(),
                g.steps(), g.sampler(), g.guidance(), null, 1, null, null, null, null, null, null, null));
        assertEquals("euler", r.sampler());
        assertEquals(7, r.steps());
        assertEquals(0.0, r.guidance(), "guidance 0 given explicitly is kept (not 'unset')");
        assertEquals(64, r.width());
        assertEquals(256, r.height());
        assertEquals(1, r.clipSkip());
    }

    @Test
    void zeroSizeAndBlankSamplerCountAsUnset() {
        // what gRPC's proto3 zeros and an empty sampler string look like after the transports' mapping
        ResolvedRequest r = resolve(GenerationRequest.ofPrompt("x").withSize(0, 0).withSampler("  "));
        assertEquals(128, r.width());
        assertEquals(96, r.height());
        assertEquals("dpmpp_2m", r.sampler());
    }

    @Test
    void modelsWithoutRecommendationsKeepTheServerDefaults() {
        ResolvedRequest r = resolve(GenerationRequest.ofPrompt("x").withModel("plain"));
        assertEquals("euler_a", r.sampler());
        assertEquals(20, r.steps());
        assertEquals(7.5, r.guidance());
        assertEquals(512, r.width(), "the model's own size (ModelInfo)");
        ResolvedRequest h = resolve(GenerationRequest.ofPrompt("x").withModel("half"));
        assertEquals(4.0, h.guidance(), "a partial recommendation applies field by field");
        assertEquals("euler_a", h.sampler());
        assertEquals(20, h.steps());
    }

    @Test
    void aRecommendedSamplerTheServerLacksIsTheModelsFault() {
        ServeException e = assertThrows(ServeException.class, () -> resolve(GenerationRequest.ofPrompt("x").withModel("bad")));
        assertEquals(ServeException.Code.FAILED_PRECONDITION, e.code());
        assertTrue(e.getMessage().contains("model 'bad'") && e.getMessage().contains("no_such_sampler"), e.getMessage());
        // giving a sampler sidesteps it
        assertEquals("euler", resolve(GenerationRequest.ofPrompt("x").withModel("bad").withSampler("euler")).sampler());
    }

    @Test
    void recommendedValuesAreStillRangeChecked() {
        config.modelDefaults = n -> new ModelDefaults(null, 500, null, null, null, null);
        Validation strict = new Validation(config, engine::describe, new LibrarySamplers(), () -> 7L);
        ServeException e = assertThrows(ServeException.class, () -> strict.resolve(GenerationRequest.ofPrompt("x"), NOW));
        assertEquals("steps", e.field(), e.getMessage());
    }
}
