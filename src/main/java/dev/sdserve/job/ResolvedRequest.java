package dev.sdserve.job;

import dev.sdserve.engine.LoraWeight;

import java.util.List;

/**
 * A validated request with every default filled in; what the scheduler runs and what results report.
 *
 * @param padCondUncond A1111's {@code pad_cond_uncond}: pad the shorter of the prompt's and the negative prompt's
 *                      contexts with empty-prompt chunks (false, A1111's default: each half at its own length)
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
        boolean padCondUncond) {

    public ResolvedRequest {
        loras = List.copyOf(loras);
    }

    /** A request with A1111's default prompt handling (no pad_cond_uncond). */
    public ResolvedRequest(String prompt, String negativePrompt, String model, List<LoraWeight> loras, int width,
                           int height, int steps, String sampler, double guidance, long seed, int clipSkip, int images,
                           PreviewOptions preview, SloClass sloClass, long deadlineMillis, int priority, String tenant,
                           boolean bestEffort) {
        this(prompt, negativePrompt, model, loras, width, height, steps, sampler, guidance, seed, clipSkip, images,
                preview, sloClass, deadlineMillis, priority, tenant, bestEffort, false);
    }

    /** Seed of image {@code i} of the request (A1111 convention: seed, seed+1, …). */
    public long seedOf(int i) {
        return seed + i;
    }
}
