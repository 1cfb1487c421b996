package dev.sdserve.job;

import dev.sdserve.engine.LoraWeight;

import java.util.List;

/**
 * A validated request with every default filled in; what the scheduler runs and what results report.
 * {@code guidanceCutoff} in (0, 1]: see {@link GenerationRequest}; 1 = off.
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
        double guidanceCutoff) {

    public ResolvedRequest {
        loras = List.copyOf(loras);
    }

    /** A request with every evaluation guided (no guidance truncation). */
    public ResolvedRequest(String prompt, String negativePrompt, String model, List<LoraWeight> loras, int width,
                           int height, int steps, String sampler, double guidance, long seed, int clipSkip, int images,
                           PreviewOptions preview, SloClass sloClass, long deadlineMillis, int priority, String tenant,
                           boolean bestEffort) {
        this(prompt, negativePrompt, model, loras, width, height, steps, sampler, guidance, seed, clipSkip, images,
                preview, sloClass, deadlineMillis, priority, tenant, bestEffort, 1.0);
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
