package dev.sdserve.job;

import dev.sdserve.engine.LoraWeight;

import java.util.List;

/** A validated request with every default filled in; what the scheduler runs and what results report. */
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
        boolean bestEffort) {

    public ResolvedRequest {
        loras = List.copyOf(loras);
    }

    /** Seed of image {@code i} of the request (A1111 convention: seed, seed+1, …). */
    public long seedOf(int i) {
        return seed + i;
    }
}
