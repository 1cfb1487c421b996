package dev.sdserve.engine;

import java.util.List;

/**
 * One sample of a UNet batch.
 *
 * @param latentInput  the model input (the sampler's latent already scaled for the model), NCHW without batch
 * @param timestep     the model timestep (may be fractional for k-diffusion samplers)
 * @param cond         the prompt's conditioning (context)
 * @param uncond       the negative prompt's conditioning, or null for no classifier-free guidance
 * @param guidance     guidance scale (ignored without uncond)
 * @param loras        the request's UNet LoRAs
 * @param added        the prompt side's added conditioning (SDXL: pooled embedding and size), null for SD 1.x/2.x
 * @param addedUncond  the negative side's (SDXL with guidance), null for SD 1.x/2.x
 * @param extraChannels channels the UNet takes after the latent's, NCHW without batch at the latent's height and
 *                     width, unscaled (an inpainting UNet's mask and masked-image latent: 1 + 4 channels), the same
 *                     for the conditional and unconditional rows; null when the UNet takes the latent alone
 * @param tokenMerging the share of the self-attention tokens merged at full resolution (token merging, ToMe for SD;
 *                     0 = off); items with different ratios run in separate UNet calls
 */
public record DenoiseItem(float[] latentInput, double timestep, float[] cond, float[] uncond, double guidance,
                          List<LoraWeight> loras, AddedConditioning added, AddedConditioning addedUncond,
                          float[] extraChannels, double tokenMerging) {
    public DenoiseItem {
        loras = loras == null ? List.of() : List.copyOf(loras);
    }

    /** A sample without token merging. */
    public DenoiseItem(float[] latentInput, double timestep, float[] cond, float[] uncond, double guidance,
                       List<LoraWeight> loras, AddedConditioning added, AddedConditioning addedUncond,
                       float[] extraChannels) {
        this(latentInput, timestep, cond, uncond, guidance, loras, added, addedUncond, extraChannels, 0);
    }

    /** This item with token merging at {@code ratio} (0 = off). */
    public DenoiseItem withTokenMerging(double ratio) {
        return new DenoiseItem(latentInput, timestep, cond, uncond, guidance, loras, added, addedUncond, extraChannels,
                ratio);
    }

    /** An SD 1.x/2.x sample (no added conditioning). */
    public DenoiseItem(float[] latentInput, double timestep, float[] cond, float[] uncond, double guidance,
                       List<LoraWeight> loras) {
        this(latentInput, timestep, cond, uncond, guidance, loras, null, null, null);
    }

    public boolean guided() {
        return uncond != null;
    }

    /** The same sample with other added conditioning on the prompt side. */
    public DenoiseItem withAdded(AddedConditioning a) {
        return new DenoiseItem(latentInput, timestep, cond, uncond, guidance, loras, a, addedUncond, extraChannels,
                tokenMerging);
    }

    /** The same sample with another latent input (a sampler's next evaluation). */
    public DenoiseItem withLatent(float[] x, double t) {
        return new DenoiseItem(x, t, cond, uncond, guidance, loras, added, addedUncond, extraChannels, tokenMerging);
    }

    /** A sample with added conditioning (SDXL) and no extra channels. */
    public DenoiseItem(float[] latentInput, double timestep, float[] cond, float[] uncond, double guidance,
                       List<LoraWeight> loras, AddedConditioning added, AddedConditioning addedUncond) {
        this(latentInput, timestep, cond, uncond, guidance, loras, added, addedUncond, null);
    }

    /** This item with extra UNet input channels (see {@link #extraChannels}). */
    public DenoiseItem withExtraChannels(float[] extra) {
        return new DenoiseItem(latentInput, timestep, cond, uncond, guidance, loras, added, addedUncond, extra,
                tokenMerging);
    }
}
