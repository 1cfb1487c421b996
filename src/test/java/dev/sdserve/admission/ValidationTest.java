package dev.sdserve.admission;

import dev.sdserve.engine.LoraWeight;
import dev.sdserve.engine.fake.FakeEngine;
import dev.sdserve.job.GenerationRequest;
import dev.sdserve.job.PreviewOptions;
import dev.sdserve.job.ResolvedRequest;
import dev.sdserve.job.ServeException;
import dev.sdserve.job.SloClass;
import dev.sdserve.sampler.LibrarySamplers;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.function.UnaryOperator;

import static org.junit.jupiter.api.Assertions.*;

class ValidationTest {
    private final FakeEngine engine = new FakeEngine(new FakeEngine.Config().models(8, 512, "embedded", "other"));
    private final AdmissionConfig config = new AdmissionConfig();
    private final Validation v = new Validation(config, engine::describe, new LibrarySamplers(), () -> 0x1_2345_6789L);
    private static final long NOW = 1_000_000L;

    private static GenerationRequest base() {
        return GenerationRequest.ofPrompt("a cat");
    }

    private ServeException refused(UnaryOperator<GenerationRequest> change, String field, String... fragments) {
        ServeException e = assertThrows(ServeException.class, () -> v.resolve(change.apply(base()), NOW));
        assertEquals(ServeException.Code.INVALID_ARGUMENT, e.code(), e.getMessage());
        assertEquals(field, e.field(), e.getMessage());
        assertTrue(e.getMessage().startsWith(field + ": "), e.getMessage());
        for (String f : fragments) {
            assertTrue(e.getMessage().contains(f), "'" + e.getMessage() + "' should mention " + f);
        }
        return e;
    }

    @Test
    void defaults() {
        ResolvedRequest r = v.resolve(base(), NOW);
        assertEquals("a cat", r.prompt());
        assertEquals("", r.negativePrompt());
        assertEquals("embedded", r.model());
        assertEquals(512, r.width());
        assertEquals(512, r.height());
        assertEquals(20, r.steps());
        assertEquals("euler_a", r.sampler());
        assertEquals(7.5, r.guidance());
        assertEquals(0x2345_6789L, r.seed(), "random seed reduced to 32 bits and reported");
        assertEquals(1, r.clipSkip());
        assertEquals(1, r.images());
        assertEquals(new PreviewOptions(1, "png", 256), r.preview());
        assertEquals(SloClass.STANDARD, r.sloClass());
        assertEquals(NOW + 300_000, r.deadlineMillis());
        assertEquals("default", r.tenant());
        assertEquals(0, r.priority());
        assertFalse(r.bestEffort());
    }

    @Test
    void givenValuesAreKept() {
        GenerationRequest g = new GenerationRequest("p", "n", "other", List.of(new LoraWeight("style", 0.8)), 768, 256,
                30, "Euler", 0.0, 4_294_967_295L, 2, 1, new PreviewOptions(5, "jpg", 0), SloClass.INTERACTIVE, null, 3,
                "acme", true);
        ResolvedRequest r = v.resolve(g, NOW);
        assertEquals("other", r.model());
        assertEquals(768, r.width());
        assertEquals(256, r.height());
        assertEquals("euler", r.sampler(), "display name resolved to the id");
        assertEquals(0.0, r.guidance());
        assertEquals(4_294_967_295L, r.seed());
        assertEquals(new PreviewOptions(5, "jpeg", 256), r.preview());
        assertEquals(NOW + 30_000, r.deadlineMillis());
        assertEquals("acme", r.tenant());
        assertTrue(r.bestEffort());
        assertEquals(PreviewOptions.OFF, v.resolve(base().withPreview(new PreviewOptions(0, null, 0)), NOW).preview());
        assertEquals(new PreviewOptions(2, "latent", 256, "noisy", 5),
                v.resolve(base().withPreview(new PreviewOptions(2, "LATENT", 0, " Noisy", 5)), NOW).preview());
        assertEquals("denoised", v.resolve(base().withPreview(new PreviewOptions(2, "png", 0, null, 0)), NOW).preview().content());
    }

    @Test
    void everyFieldIsNamedWithItsRange() {
        refused(r -> r.withSize(65, null), "width", "multiple of 8", "64..2048", "65");
        refused(r -> r.withSize(null, 4096), "height", "64..2048");
        refused(r -> r.withSize(32, null), "width", "64..2048");
        refused(r -> r.withSteps(0), "steps", "1..150");
        refused(r -> r.withSteps(151), "steps", "1..150");
        refused(r -> r.withGuidance(Double.NaN), "guidance_scale", "finite", "0..30");
        refused(r -> r.withGuidance(30.5), "guidance_scale", "0..30");
        refused(r -> r.withGuidance(-1.0), "guidance_scale");
        refused(r -> r.withSeed(-1L), "seed", "0..4294967295");
        refused(r -> r.withSeed(1L << 32), "seed", "0..4294967295");
        refused(r -> r.withSampler("warp_drive"), "sampler", "warp_drive", "euler_a");
        refused(r -> r.withPreview(new PreviewOptions(1, "gif", 0)), "preview.format", "png, jpeg or latent");
        refused(r -> r.withPreview(new PreviewOptions(1, "png", 0, "blurry", 0)), "preview.content", "denoised or noisy");
        refused(r -> r.withPreview(new PreviewOptions(1, "png", 0, "noisy", -2)), "preview.full_every", "0..150");
        refused(r -> r.withPreview(new PreviewOptions(1, "png", 0, "denoised", 0, "vae")), "preview.projection",
                "auto, affine or decoder", "vae");
        refused(r -> r.withPreview(new PreviewOptions(1, "png", 8)), "preview.max_edge", "16..1024");
        refused(r -> r.withPreview(new PreviewOptions(-1, "png", 0)), "preview.every_steps", "0..150");
        refused(r -> new GenerationRequest("x".repeat(4001), null, null, null, null, null, null, null, null, null, null,
                null, null, null, null, null, null, null), "prompt", "4000");
        refused(r -> new GenerationRequest("p", "y".repeat(4001), null, null, null, null, null, null, null, null, null,
                null, null, null, null, null, null, null), "negative_prompt", "4000");
        refused(r -> withClipSkip(13), "clip_skip", "1..12");
        refused(r -> withClipSkip(0), "clip_skip", "1..12");
        refused(r -> withImages(9), "images", "1..8");
        refused(r -> withImages(0), "images", "1..8");
        refused(r -> withLoras(List.of(new LoraWeight("a", Double.NaN))), "loras[0].weight", "finite");
        refused(r -> withLoras(List.of(new LoraWeight("a", 1), new LoraWeight("b", 11))), "loras[1].weight", "-10.0..10.0");
        refused(r -> withLoras(List.of(new LoraWeight(" ", 1))), "loras[0].name");
        refused(r -> withLoras(java.util.Collections.nCopies(9, new LoraWeight("a", 1))), "loras", "at most 8");
        refused(r -> withSeedAndImages(4_294_967_295L, 2), "seed");
    }

    @Test
    void guidanceCutoffDefaultsToOffAndIsChecked() {
        assertEquals(1.0, v.resolve(base(), NOW).guidanceCutoff(), "off unless asked");
        assertEquals(0.6, v.resolve(base().withGuidanceCutoff(0.6), NOW).guidanceCutoff());
        config.defaultGuidanceCutoff = 0.8;
        assertEquals(0.8, v.resolve(base(), NOW).guidanceCutoff(), "the server's default");
        assertEquals(1.0, v.resolve(base().withGuidanceCutoff(1.0), NOW).guidanceCutoff(), "a request turns it off");
        config.defaultGuidanceCutoff = 1.0;
        refused(r -> r.withGuidanceCutoff(0.0), "guidance_cutoff", "(0, 1]");
        refused(r -> r.withGuidanceCutoff(1.5), "guidance_cutoff", "(0, 1]");
        refused(r -> r.withGuidanceCutoff(Double.NaN), "guidance_cutoff");
    }

    @Test
    void deepCacheIntervalDefaultsToOffAndIsChecked() {
        assertEquals(1, v.resolve(base(), NOW).deepCacheInterval(), "off unless asked");
        assertEquals(1, v.resolve(base().withDeepCacheInterval(0), NOW).deepCacheInterval(), "0 = off");
        assertEquals(3, v.resolve(base().withDeepCacheInterval(3), NOW).deepCacheInterval());
        config.defaultDeepCacheInterval = 2;
        assertEquals(2, v.resolve(base(), NOW).deepCacheInterval(), "the server's default");
        assertEquals(1, v.resolve(base().withDeepCacheInterval(1), NOW).deepCacheInterval(), "a request turns it off");
        config.defaultDeepCacheInterval = 1;
        refused(r -> r.withDeepCacheInterval(-1), "deep_cache_interval", "0..20");
        refused(r -> r.withDeepCacheInterval(21), "deep_cache_interval", "0..20");
    }

    @Test
    void unknownModelIsNotFound() {
        ServeException e = assertThrows(ServeException.class, () -> v.resolve(base().withModel("sdxl"), NOW));
        assertEquals(ServeException.Code.NOT_FOUND, e.code());
        assertTrue(e.getMessage().contains("sdxl"));
    }

    private static GenerationRequest withClipSkip(int c) {
        return new GenerationRequest("p", null, null, null, null, null, null, null, null, null, c, null, null, null,
                null, null, null, null);
    }

    private static GenerationRequest withImages(int n) {
        return new GenerationRequest("p", null, null, null, null, null, null, null, null, null, null, n, null, null,
                null, null, null, null);
    }

    private static GenerationRequest withSeedAndImages(long seed, int n) {
        return new GenerationRequest("p", null, null, null, null, null, null, null, null, seed, null, n, null, null,
                null, null, null, null);
    }

    private static GenerationRequest withLoras(List<LoraWeight> l) {
        return new GenerationRequest("p", null, null, l, null, null, null, null, null, null, null, null, null, null,
                null, null, null, null);
    }
}
