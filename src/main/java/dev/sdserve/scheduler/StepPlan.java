package dev.sdserve.scheduler;

import dev.sdserve.engine.AddedConditioning;
import dev.sdserve.engine.DeepCache;
import dev.sdserve.engine.EncodeItem;
import dev.sdserve.engine.LatentShape;
import dev.sdserve.engine.LoraWeight;
import dev.sdserve.engine.ModelInfo;
import dev.sdserve.engine.Stage;
import dev.sdserve.job.PreparedImage;
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
 * <p>Stages: text encoding, then (img2img, inpainting) image encoding, denoising, decoding. To add a stage: a {@link Stage} constant, a {@link Member} record with that stage's inputs, the planner's
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
    public sealed interface Member permits EncodeMember, DenoiseMember, DecodeMember, ImageEncodeMember {
        String jobId();
    }

    /**
     * Text encoding: the request's prompts (its prompt, then its negative prompt when guided), then its initial
     * noise and sampler states: one per image, from {@code seeds}, on {@code shape}.
     */
    public record EncodeMember(String jobId, List<EncodeItem> prompts, Sampler sampler, int steps, LatentShape shape,
                               List<Long> seeds) implements Member {
    }

    /**
     * One denoising step of every image of the request: its sampler states and the options of this step;
     * {@code extraChannels} (one per image, or null) are an inpainting UNet's mask and masked-image latent.
     */
    public record DenoiseMember(String jobId, SamplerState[] states, StepOptions options, float[][] extraChannels)
            implements Member {
        public DenoiseMember(String jobId, SamplerState[] states, StepOptions options) {
            this(jobId, states, options, null);
        }
    }

    /**
     * Decoding: the request's final latents, one per image; {@code overlay} (null: none) the inpainting request's
     * prepared pixels whose original is pasted back outside the mask after decoding (A1111's overlay); or, with
     * {@code previewStep} > 0, the denoised estimates of that step for a full preview (the request goes on denoising
     * afterwards); with a {@code readout} too, a decoder preview (the decoder's trunk and that readout,
     * {@link dev.sdserve.engine.Engine#decoderPreview}: RGB per latent cell) instead of a VAE decode.
     */
    public record DecodeMember(String jobId, List<float[]> latents, PreparedImage overlay, int previewStep,
                               dev.sdserve.engine.projection.LatentProjection readout)
            implements Member {
        public DecodeMember(String jobId, List<float[]> latents) {
            this(jobId, latents, null, 0, null);
        }

        public DecodeMember(String jobId, List<float[]> latents, PreparedImage overlay) {
            this(jobId, latents, overlay, 0, null);
        }

        public DecodeMember(String jobId, List<float[]> latents, int previewStep) {
            this(jobId, latents, null, previewStep, null);
        }
    }

    /**
     * img2img / inpainting, after text encoding: the request's prepared pixels go through the VAE encoder (a
     * posterior sample per image from its seed's generator, as diffusers draws them), then its sampler states start
     * at the strength, one per image, from {@code seeds}, on {@code shape}.
     *
     * @param image          the prepared init image (and mask)
     * @param strength       the denoising strength
     * @param inpaintingUnet the model's UNet takes the mask and masked-image latent as extra channels (else a mask
     *                       is blended back after every step)
     * @param inpaintingFill A1111's inpainting_fill: 2 (latent noise) and 3 (latent nothing) replace the masked
     *                       region of the image latent with the latent noise or zeros; 0 and 1 act on the pixels
     */
    public record ImageEncodeMember(String jobId, PreparedImage image, double strength, boolean inpaintingUnet,
                                    int inpaintingFill, Sampler sampler, int steps, LatentShape shape, List<Long> seeds) implements Member {
    }

    /**
     * What a request's next model evaluation uses, as the planner chose it for this step: the conditioning and
     * the unconditional conditioning (null: no classifier-free guidance), the guidance scale and the LoRAs; for SDXL
     * the added conditioning (pooled embedding and size) of each side, null for SD 1.x / 2.x; the token merging
     * ratio (0 = off).
     */
    public record StepOptions(float[] cond, float[] uncond, double guidance, List<LoraWeight> loras,
                              AddedConditioning added, AddedConditioning addedUncond, DeepCache.Step[] deepCache,
                              double tokenMerging) {
        public StepOptions(float[] cond, float[] uncond, double guidance, List<LoraWeight> loras) {
            this(cond, uncond, guidance, loras, null, null);
        }

        /** Without DeepCache ({@code deepCache}: one step per image of the request, or null) nor token merging. */
        public StepOptions(float[] cond, float[] uncond, double guidance, List<LoraWeight> loras,
                           AddedConditioning added, AddedConditioning addedUncond) {
            this(cond, uncond, guidance, loras, added, addedUncond, null);
        }

        /** Without token merging. */
        public StepOptions(float[] cond, float[] uncond, double guidance, List<LoraWeight> loras,
                           AddedConditioning added, AddedConditioning addedUncond, DeepCache.Step[] deepCache) {
            this(cond, uncond, guidance, loras, added, addedUncond, deepCache, 0);
        }

        /** These options with token merging at {@code ratio} (0 = off). */
        public StepOptions withTokenMerging(double ratio) {
            return new StepOptions(cond, uncond, guidance, loras, added, addedUncond, deepCache, ratio);
        }
    }
}
