package dev.sdserve.engine;

import java.util.List;

/**
 * One sample of a UNet batch.
 *
 * @param latentInput the model input (the sampler's latent already scaled for the model), NCHW without batch
 * @param timestep    the model timestep (may be fractional for k-diffusion samplers)
 * @param cond        the prompt's conditioning
 * @param uncond      the negative prompt's conditioning, or null for no classifier-free guidance
 * @param guidance    guidance scale (ignored without uncond)
 * @param loras       the request's UNet LoRAs
 */
public record DenoiseItem(float[] latentInput, double timestep, float[] cond, float[] uncond, double guidance,
                          List<LoraWeight> loras) {
    public DenoiseItem {
        loras = loras == null ? List.of() : List.copyOf(loras);
    }

    public boolean guided() {
        return uncond != null;
    }
}
