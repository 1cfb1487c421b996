package dev.sdserve.scheduler;

import dev.sdserve.engine.EncodeItem;
import dev.sdserve.engine.LatentShape;
import dev.sdserve.engine.LoraWeight;
import dev.sdserve.engine.ModelInfo;
import dev.sdserve.engine.Stage;
import dev.sdserve.sampler.Sampler;
import dev.sdserve.sampler.SamplerState;

import java.util.List;

/**
 * One scheduling iteration's decision: exactly one engine call. The {@link Planner} makes it, the {@link StepExecutor}
 * runs it and answers with a {@link StepResult}; nothing else passes between them (vLLM's {@code SchedulerOutput}).
 *
 * <p>A plan names the stage, the model (and what it expects), the latent shape of the call (null where a stage
 * mixes shapes: text encoding) and its members in the order the executor batches them. Each member carries what
 * the executor needs of its request for this stage and nothing more: the prompts to encode, the sampler states to
 * step and the options the planner chose for this step, the latents to decode. Members are the planner's
 * decisions, made under its lock; the executor only reads them, except that it advances a denoise member's sampler
 * states in place (the scheduler thread is their only writer).
 *
 * <p>To add a stage: a {@link Stage} constant, a {@link Member} record with that stage's inputs, the planner's
 * choice of members, the executor's call and the planner's {@code updateFromOutput} case. To add a per-request,
 * per-step option (a prompt schedule's conditioning for this step, an inpainting mask, SDXL's extra conditioning,
 * guidance truncation): a field of {@link StepOptions}, filled by the planner for the member's current step and
 * passed on by the executor to the engine.
 */
public record StepPlan(Stage stage, String model, ModelInfo info, LatentShape shape, List<Member> members) {
    public StepPlan {
        members = List.copyOf(members);
    }

    /** One request's part in the call. */
    public sealed interface Member permits EncodeMember, DenoiseMember, DecodeMember {
        String jobId();
    }

    /**
     * Text encoding: the request's prompts (its prompt, then its negative prompt when guided), then its initial
     * noise and sampler states: one per image, from {@code seeds}, on {@code shape}.
     */
    public record EncodeMember(String jobId, List<EncodeItem> prompts, Sampler sampler, int steps, LatentShape shape,
                               List<Long> seeds) implements Member {
    }

    /** One denoising step of every image of the request: its sampler states and the options of this step. */
    public record DenoiseMember(String jobId, SamplerState[] states, StepOptions options) implements Member {
    }

    /**
     * Decoding: the request's final latents, one per image; or, with {@code previewStep} > 0, the denoised estimates
     * of that step for a full preview (the request goes on denoising afterwards).
     */
    public record DecodeMember(String jobId, List<float[]> latents, int previewStep) implements Member {
        public DecodeMember(String jobId, List<float[]> latents) {
            this(jobId, latents, 0);
        }
    }

    /**
     * What a request's next model evaluation uses, as the planner chose it for this step: the conditioning and
     * the unconditional conditioning (null: no classifier-free guidance), the guidance scale and the LoRAs.
     */
    public record StepOptions(float[] cond, float[] uncond, double guidance, List<LoraWeight> loras) {
    }
}
