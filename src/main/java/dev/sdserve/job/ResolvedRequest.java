package dev.sdserve.job;

import dev.sdserve.engine.LoraWeight;

import java.util.List;

/**
 * A validated request with every default filled in; what the scheduler runs and what results report.
 *
 * @param padCondUncond  A1111's {@code pad_cond_uncond}: pad the shorter of the prompt's and the negative prompt's
 *                       contexts with empty-prompt chunks (false, A1111's default: each half at its own length)
 * @param image          the prepared init image and mask of an img2img or inpainting request, null for txt2img
 * @param guidanceCutoff in (0, 1]: see {@link GenerationRequest}; 1 = off
 * @param deepCacheInterval DeepCache's interval, ≥ 1 (1 = off: every evaluation runs the whole UNet)
 * @param tokenMerging   in [0, 0.9]: see {@link GenerationRequest}; 0 = off
 */
public record ResolvedRequest(
        String prompt,
        String negativePrompt,
        String model,
        List<LoraWeight> loras,
        int width,
        int height,
        int steps,
        String sampler,
        double guidance,
        long seed,
        int clipSkip,
        int images,
        PreviewOptions preview,
        SloClass sloClass,
        long deadlineMillis,
        int priority,
        String tenant,
        boolean bestEffort,
        boolean padCondUncond,
        ResolvedImage image,
        double guidanceCutoff,
        int deepCacheInterval,
        double tokenMerging) {

    public ResolvedRequest {
        loras = List.copyOf(loras);
    }

    /** A txt2img request with A1111's default prompt handling and every evaluation guided. */
    public ResolvedRequest(String prompt, String negativePrompt, String model, List<LoraWeight> loras, int width,
                           int height, int steps, String sampler, double guidance, long seed, int clipSkip, int images,
                           PreviewOptions preview, SloClass sloClass, long deadlineMillis, int priority, String tenant,
                           boolean bestEffort) {
        this(prompt, negativePrompt, model, loras, width, height, steps, sampler, guidance, seed, clipSkip, images,
                preview, sloClass, deadlineMillis, priority, tenant, bestEffort, false, null, 1.0, 1, 0);
    }

    /** As the txt2img constructor, with pad_cond_uncond given. */
    public ResolvedRequest(String prompt, String negativePrompt, String model, List<LoraWeight> loras, int width,
                           int height, int steps, String sampler, double guidance, long seed, int clipSkip, int images,
                           PreviewOptions preview, SloClass sloClass, long deadlineMillis, int priority, String tenant,
                           boolean bestEffort, boolean padCondUncond) {
        this(prompt, negativePrompt, model, loras, width, height, steps, sampler, guidance, seed, clipSkip, images,
                preview, sloClass, deadlineMillis, priority, tenant, bestEffort, padCondUncond, null, 1.0, 1, 0);
    }

    /** As the txt2img constructor, starting from an image. */
    public ResolvedRequest(String prompt, String negativePrompt, String model, List<LoraWeight> loras, int width,
                           int height, int steps, String sampler, double guidance, long seed, int clipSkip, int images,
                           PreviewOptions preview, SloClass sloClass, long deadlineMillis, int priority, String tenant,
                           boolean bestEffort, ResolvedImage image) {
        this(prompt, negativePrompt, model, loras, width, height, steps, sampler, guidance, seed, clipSkip, images,
                preview, sloClass, deadlineMillis, priority, tenant, bestEffort, false, image, 1.0, 1, 0);
    }

    /** As the txt2img constructor, with guidance truncation. */
    public ResolvedRequest(String prompt, String negativePrompt, String model, List<LoraWeight> loras, int width,
                           int height, int steps, String sampler, double guidance, long seed, int clipSkip, int images,
                           PreviewOptions preview, SloClass sloClass, long deadlineMillis, int priority, String tenant,
                           boolean bestEffort, double guidanceCutoff) {
        this(prompt, negativePrompt, model, loras, width, height, steps, sampler, guidance, seed, clipSkip, images,
                preview, sloClass, deadlineMillis, priority, tenant, bestEffort, false, null, guidanceCutoff, 1, 0);
    }

    /** As the canonical constructor before DeepCache and token merging (interval 1, ratio 0: both off). */
    public ResolvedRequest(String prompt, String negativePrompt, String model, List<LoraWeight> loras, int width,
                           int height, int steps, String sampler, double guidance, long seed, int clipSkip, int images,
                           PreviewOptions preview, SloClass sloClass, long deadlineMillis, int priority, String tenant,
                           boolean bestEffort, boolean padCondUncond, ResolvedImage image, double guidanceCutoff) {
        this(prompt, negativePrompt, model, loras, width, height, steps, sampler, guidance, seed, clipSkip, images,
                preview, sloClass, deadlineMillis, priority, tenant, bestEffort, padCondUncond, image, guidanceCutoff, 1, 0);
    }

    /**
     * Model evaluations (of {@code totalEvals}) that run classifier-free guidance: all of them without guidance
     * truncation, else the first ⌈cutoff × total⌉ (at least one); 0 when the request is not guided.
     */
    public int guidedEvals(int totalEvals) {
        if (guidance <= 1.0) {
            return 0;
        }
        if (guidanceCutoff >= 1.0) {
            return totalEvals;
        }
        return Math.max(1, Math.min(totalEvals, (int) Math.ceil(guidanceCutoff * totalEvals - 1e-9)));
    }

    /** Seed of image {@code i} of the request (A1111 convention: seed, seed+1, …). */
    public long seedOf(int i) {
        return seed + i;
    }
}
