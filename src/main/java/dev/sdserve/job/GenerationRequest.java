package dev.sdserve.job;

import dev.sdserve.engine.LoraWeight;

import java.util.List;

/**
 * A request as the service understands it, after transport decoding and before validation. Nullable fields are
 * "not given": {@link Validation} fills defaults and checks ranges, producing the resolved form.
 *
 * @param deadlineMillis absolute deadline in epoch milliseconds of the service clock, or null for the SLO class default
 * @param bestEffort     admit even when the deadline cannot be met (the request is run when there is room)
 * @param padCondUncond  A1111's {@code pad_cond_uncond}: when the prompt's and the negative prompt's contexts have
 *                       different chunk counts, pad the shorter with empty-prompt chunks; null/false (A1111's
 *                       default) evaluates each half at its own length
 * @param image          the init image, mask and their options (img2img, inpainting); null for txt2img
 * @param guidanceCutoff guidance truncation: the fraction of the model evaluations (from the start) that keep
 *                       classifier-free guidance; the rest run the prompt's half only. Null: the server's default;
 *                       1: off (every evaluation guided)
 * @param deepCacheInterval DeepCache: a full UNet step every this many model evaluations, the shallow path (on
 *                       the cached deep feature) between; null: the server's default; 0 or 1: off
 * @param tokenMerging   token merging (ToMe for SD, A1111's {@code token_merging_ratio}): the share of the tokens merged
 *                       in the self-attention at full latent resolution. Null: the server's default; 0: off
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
        Boolean padCondUncond,
        ImageInput image,
        Double guidanceCutoff,
        Integer deepCacheInterval,
        Double tokenMerging) {

    public GenerationRequest {
        loras = loras == null ? List.of() : List.copyOf(loras);
    }

    /** This request with token merging at {@code ratio} (null: the server's default). */
    public GenerationRequest withTokenMerging(Double ratio) {
        return new GenerationRequest(prompt, negativePrompt, model, loras, width, height, steps, sampler, guidance, seed,
                clipSkip, images, preview, sloClass, deadlineMillis, priority, tenant, bestEffort, padCondUncond, image,
                guidanceCutoff, deepCacheInterval, ratio);
    }

    /** A txt2img request without prompt or step options (the server's defaults apply). */
    public GenerationRequest(String prompt, String negativePrompt, String model, List<LoraWeight> loras, Integer width,
                             Integer height, Integer steps, String sampler, Double guidance, Long seed, Integer clipSkip,
                             Integer images, PreviewOptions preview, SloClass sloClass, Long deadlineMillis,
                             Integer priority, String tenant, Boolean bestEffort) {
        this(prompt, negativePrompt, model, loras, width, height, steps, sampler, guidance, seed, clipSkip, images,
                preview, sloClass, deadlineMillis, priority, tenant, bestEffort, null, null, null, null, null);
    }

    /** A request as the canonical constructor before DeepCache and token merging (neither option given). */
    public GenerationRequest(String prompt, String negativePrompt, String model, List<LoraWeight> loras, Integer width,
                             Integer height, Integer steps, String sampler, Double guidance, Long seed, Integer clipSkip,
                             Integer images, PreviewOptions preview, SloClass sloClass, Long deadlineMillis,
                             Integer priority, String tenant, Boolean bestEffort, Boolean padCondUncond,
                             ImageInput image, Double guidanceCutoff) {
        this(prompt, negativePrompt, model, loras, width, height, steps, sampler, guidance, seed, clipSkip, images,
                preview, sloClass, deadlineMillis, priority, tenant, bestEffort, padCondUncond, image, guidanceCutoff,
                null, null);
    }

    /** This request with DeepCache's interval (null: the server's default). */
    public GenerationRequest withDeepCacheInterval(Integer n) {
        return new GenerationRequest(prompt, negativePrompt, model, loras, width, height, steps, sampler, guidance,
                seed, clipSkip, images, preview, sloClass, deadlineMillis, priority, tenant, bestEffort, padCondUncond,
                image, guidanceCutoff, n, tokenMerging);
    }

    /** A request with only a prompt; everything else defaults. */
    public static GenerationRequest ofPrompt(String prompt) {
        return new GenerationRequest(prompt, null, null, null, null, null, null, null, null, null, null, null, null,
                null, null, null, null, null);
    }

    /** This request with another prompt. */
    public GenerationRequest withPrompt(String p) {
        return new GenerationRequest(p, negativePrompt, model, loras, width, height, steps, sampler, guidance, seed, clipSkip, images, preview, sloClass,
                deadlineMillis, priority, tenant, bestEffort, padCondUncond, image, guidanceCutoff, deepCacheInterval, tokenMerging);
    }

    /** This request with another negative prompt. */
    public GenerationRequest withNegative(String n) {
        return new GenerationRequest(prompt, n, model, loras, width, height, steps, sampler, guidance, seed, clipSkip, images, preview, sloClass,
                deadlineMillis, priority, tenant, bestEffort, padCondUncond, image, guidanceCutoff, deepCacheInterval, tokenMerging);
    }

    /** This request with A1111's pad_cond_uncond set (null: not given). */
    public GenerationRequest withPadCondUncond(Boolean pad) {
        return new GenerationRequest(prompt, negativePrompt, model, loras, width, height, steps, sampler, guidance, seed, clipSkip, images, preview,
                sloClass, deadlineMillis, priority, tenant, bestEffort, pad, image, guidanceCutoff, deepCacheInterval, tokenMerging);
    }

    /** This request starting from an image (img2img, inpainting); null: txt2img. */
    public GenerationRequest withImage(ImageInput i) {
        return new GenerationRequest(prompt, negativePrompt, model, loras, width, height, steps, sampler, guidance, seed, clipSkip, images, preview,
                sloClass, deadlineMillis, priority, tenant, bestEffort, padCondUncond, i, guidanceCutoff, deepCacheInterval, tokenMerging);
    }

    /** This request with guidance truncation (null: the server's default). */
    public GenerationRequest withGuidanceCutoff(Double f) {
        return new GenerationRequest(prompt, negativePrompt, model, loras, width, height, steps, sampler, guidance, seed, clipSkip, images, preview,
                sloClass, deadlineMillis, priority, tenant, bestEffort, padCondUncond, image, f, deepCacheInterval, tokenMerging);
    }

    public GenerationRequest withSeed(Long s) {
        return new GenerationRequest(prompt, negativePrompt, model, loras, width, height, steps, sampler, guidance, s, clipSkip, images, preview, sloClass,
                deadlineMillis, priority, tenant, bestEffort, padCondUncond, image, guidanceCutoff, deepCacheInterval, tokenMerging);
    }

    public GenerationRequest withSteps(Integer s) {
        return new GenerationRequest(prompt, negativePrompt, model, loras, width, height, s, sampler, guidance, seed, clipSkip, images, preview, sloClass,
                deadlineMillis, priority, tenant, bestEffort, padCondUncond, image, guidanceCutoff, deepCacheInterval, tokenMerging);
    }

    public GenerationRequest withSampler(String s) {
        return new GenerationRequest(prompt, negativePrompt, model, loras, width, height, steps, s, guidance, seed, clipSkip, images, preview, sloClass,
                deadlineMillis, priority, tenant, bestEffort, padCondUncond, image, guidanceCutoff, deepCacheInterval, tokenMerging);
    }

    public GenerationRequest withModel(String m) {
        return new GenerationRequest(prompt, negativePrompt, m, loras, width, height, steps, sampler, guidance, seed, clipSkip, images, preview, sloClass,
                deadlineMillis, priority, tenant, bestEffort, padCondUncond, image, guidanceCutoff, deepCacheInterval, tokenMerging);
    }

    public GenerationRequest withSize(Integer w, Integer h) {
        return new GenerationRequest(prompt, negativePrompt, model, loras, w, h, steps, sampler, guidance, seed, clipSkip, images, preview, sloClass,
                deadlineMillis, priority, tenant, bestEffort, padCondUncond, image, guidanceCutoff, deepCacheInterval, tokenMerging);
    }

    public GenerationRequest withGuidance(Double g) {
        return new GenerationRequest(prompt, negativePrompt, model, loras, width, height, steps, sampler, g, seed, clipSkip, images, preview, sloClass,
                deadlineMillis, priority, tenant, bestEffort, padCondUncond, image, guidanceCutoff, deepCacheInterval, tokenMerging);
    }

    public GenerationRequest withPreview(PreviewOptions p) {
        return new GenerationRequest(prompt, negativePrompt, model, loras, width, height, steps, sampler, guidance, seed, clipSkip, images, p, sloClass,
                deadlineMillis, priority, tenant, bestEffort, padCondUncond, image, guidanceCutoff, deepCacheInterval, tokenMerging);
    }

    public GenerationRequest withDeadline(SloClass c, Long deadline, Boolean be) {
        return new GenerationRequest(prompt, negativePrompt, model, loras, width, height, steps, sampler, guidance, seed, clipSkip, images, preview, c,
                deadline, priority, tenant, be, padCondUncond, image, guidanceCutoff, deepCacheInterval, tokenMerging);
    }

    public GenerationRequest withTenant(String t, Integer prio) {
        return new GenerationRequest(prompt, negativePrompt, model, loras, width, height, steps, sampler, guidance, seed, clipSkip, images, preview,
                sloClass, deadlineMillis, prio, t, bestEffort, padCondUncond, image, guidanceCutoff, deepCacheInterval, tokenMerging);
    }
}
