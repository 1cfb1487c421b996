package dev.sdserve.job;

import dev.sdserve.engine.LoraWeight;

import java.util.List;

/**
 * A validated request with every default filled in; what the scheduler runs and what results report. {@code image}
 * is the prepared init image and mask of an img2img or inpainting request, null for txt2img.
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
        ResolvedImage image) {

    public ResolvedRequest {
        loras = List.copyOf(loras);
    }

    /** A txt2img request (no init image). */
    public ResolvedRequest(String prompt, String negativePrompt, String model, List<LoraWeight> loras, int width,
                           int height, int steps, String sampler, double guidance, long seed, int clipSkip, int images,
                           PreviewOptions preview, SloClass sloClass, long deadlineMillis, int priority, String tenant,
                           boolean bestEffort) {
        this(prompt, negativePrompt, model, loras, width, height, steps, sampler, guidance, seed, clipSkip, images,
                preview, sloClass, deadlineMillis, priority, tenant, bestEffort, null);
    }

    /** Seed of image {@code i} of the request (A1111 convention: seed, seed+1, …). */
    public long seedOf(int i) {
        return seed + i;
    }
}
