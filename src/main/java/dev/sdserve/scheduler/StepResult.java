package dev.sdserve.scheduler;

import dev.sdserve.engine.LatentShape;
import dev.sdserve.engine.Stage;
import dev.sdserve.job.ServeException;
import dev.sdserve.sampler.SamplerState;

import java.util.List;

/**
 * What the {@link StepExecutor} made of a {@link StepPlan}: one outcome per member, in the plan's order, and the engine
 * calls it took (more than one when a failed batch was retried split in halves). The planner applies it
 * ({@code updateFromOutput}): progress, stage changes, results, failures, cost measurements.
 */
public record StepResult(List<Outcome> outcomes, List<EngineCall> calls) {
    public StepResult {
        outcomes = List.copyOf(outcomes);
        calls = List.copyOf(calls);
    }

    /**
     * One member's outcome.
     *
     * @param error         why it failed (after the retries), or null
     * @param callMillis    duration of the engine call that carried it (scheduler clock)
     * @param endNanos      when its part of the work ended (scheduler clock)
     * @param conditionings text encoding: one per prompt of the member, in its order
     * @param states        text encoding: the new sampler states, one per image
     * @param images        decoding: RGB images (HWC floats in [0, 1]), one per latent
     * @param pooled        text encoding: each prompt's pooled text embedding (SDXL's added conditioning), null
     *                      entries (or null) for families without one
     * @param extraChannels image encoding for an inpainting UNet: its extra input channels, one per image (null:
     *                      none)
     */
    public record Outcome(ServeException error, double callMillis, long endNanos, float[][] conditionings,
                          SamplerState[] states, List<float[]> images, float[][] pooled, float[][] extraChannels) {
        public Outcome(ServeException error, double callMillis, long endNanos, float[][] conditionings,
                       SamplerState[] states, List<float[]> images) {
            this(error, callMillis, endNanos, conditionings, states, images, null, null);
        }

        static Outcome failed(ServeException error) {
            return new Outcome(error, 0, 0, null, null, null);
        }
    }

    /**
     * One engine call as measured: what the cost model learns from and the metrics count.
     *
     * @param batch    what the engine batched: prompts, UNet samples (a guided image counts twice) or latents
     * @param endNanos when it returned (scheduler clock)
     * @param shallow  a denoise call of DeepCache shallow steps only (the cost model learns their own cost)
     */
    public record EngineCall(Stage stage, String model, LatentShape shape, int batch, double millis, long endNanos,
                             boolean shallow) {
        /** A call other than a DeepCache shallow denoise step. */
        public EngineCall(Stage stage, String model, LatentShape shape, int batch, double millis, long endNanos) {
            this(stage, model, shape, batch, millis, endNanos, false);
        }
    }
}
