package dev.sdserve.job;

import dev.sdserve.engine.LoraWeight;

import java.util.List;

/**
 * A request as the service understands it, after transport decoding and before validation. Nullable fields are
 * "not given": {@link Validation} fills defaults and checks ranges, producing the resolved form.
 *
 * @param deadlineMillis absolute deadline in epoch milliseconds of the service clock, or null for the SLO class default
 * @param bestEffort     admit even when the deadline cannot be met (the request is run when there is room)
 * @param guidanceCutoff guidance truncation: the fraction of the model evaluations (from the start) that keep
 *                       classifier-free guidance; the rest run the prompt's half only. Null: the server's default;
 *                       1: off (every evaluation guided)
 */
public record GenerationRequest(
        String prompt,
        String negativePrompt,
        String model,
        List<LoraWeight> loras,
        Integer width,
        Integer height,
        Integer steps,
        String sampler,
        Double guidance,
        Long seed,
        Integer clipSkip,
        Integer images,
        PreviewOptions preview,
        SloClass sloClass,
        Long deadlineMillis,
        Integer priority,
        String tenant,
        Boolean bestEffort,
        Double guidanceCutoff) {

    public GenerationRequest {
        loras = loras == null ? List.of() : List.copyOf(loras);
    }

    /** A request without the cheaper-step options (the server's defaults apply). */
    public GenerationRequest(String prompt, String negativePrompt, String model, List<LoraWeight> loras, Integer width,
                             Integer height, Integer steps, String sampler, Double guidance, Long seed, Integer clipSkip,
                             Integer images, PreviewOptions preview, SloClass sloClass, Long deadlineMillis,
                             Integer priority, String tenant, Boolean bestEffort) {
        this(prompt, negativePrompt, model, loras, width, height, steps, sampler, guidance, seed, clipSkip, images,
                preview, sloClass, deadlineMillis, priority, tenant, bestEffort, null);
    }

    public GenerationRequest withGuidanceCutoff(Double f) {
        return new GenerationRequest(prompt, negativePrompt, model, loras, width, height, steps, sampler, guidance, seed,
                clipSkip, images, preview, sloClass, deadlineMillis, priority, tenant, bestEffort, f);
    }

    /** A request with only a prompt; everything else defaults. */
    public static GenerationRequest ofPrompt(String prompt) {
        return new GenerationRequest(prompt, null, null, null, null, null, null, null, null, null, null, null, null,
                null, null, null, null, null);
    }

    public GenerationRequest withSeed(Long s) {
        return new GenerationRequest(prompt, negativePrompt, model, loras, width, height, steps, sampler, guidance, s,
                clipSkip, images, preview, sloClass, deadlineMillis, priority, tenant, bestEffort, guidanceCutoff);
    }

    public GenerationRequest withSteps(Integer s) {
        return new GenerationRequest(prompt, negativePrompt, model, loras, width, height, s, sampler, guidance, seed,
                clipSkip, images, preview, sloClass, deadlineMillis, priority, tenant, bestEffort, guidanceCutoff);
    }

    public GenerationRequest withSampler(String s) {
        return new GenerationRequest(prompt, negativePrompt, model, loras, width, height, steps, s, guidance, seed,
                clipSkip, images, preview, sloClass, deadlineMillis, priority, tenant, bestEffort, guidanceCutoff);
    }

    public GenerationRequest withModel(String m) {
        return new GenerationRequest(prompt, negativePrompt, m, loras, width, height, steps, sampler, guidance, seed,
                clipSkip, images, preview, sloClass, deadlineMillis, priority, tenant, bestEffort, guidanceCutoff);
    }

    public GenerationRequest withSize(Integer w, Integer h) {
        return new GenerationRequest(prompt, negativePrompt, model, loras, w, h, steps, sampler, guidance, seed,
                clipSkip, images, preview, sloClass, deadlineMillis, priority, tenant, bestEffort, guidanceCutoff);
    }

    public GenerationRequest withGuidance(Double g) {
        return new GenerationRequest(prompt, negativePrompt, model, loras, width, height, steps, sampler, g, seed,
                clipSkip, images, preview, sloClass, deadlineMillis, priority, tenant, bestEffort, guidanceCutoff);
    }

    public GenerationRequest withPreview(PreviewOptions p) {
        return new GenerationRequest(prompt, negativePrompt, model, loras, width, height, steps, sampler, guidance, seed,
                clipSkip, images, p, sloClass, deadlineMillis, priority, tenant, bestEffort, guidanceCutoff);
    }

    public GenerationRequest withDeadline(SloClass c, Long deadline, Boolean be) {
        return new GenerationRequest(prompt, negativePrompt, model, loras, width, height, steps, sampler, guidance, seed,
                clipSkip, images, preview, c, deadline, priority, tenant, be, guidanceCutoff);
    }

    public GenerationRequest withTenant(String t, Integer prio) {
        return new GenerationRequest(prompt, negativePrompt, model, loras, width, height, steps, sampler, guidance, seed,
                clipSkip, images, preview, sloClass, deadlineMillis, prio, t, bestEffort, guidanceCutoff);
    }
}
