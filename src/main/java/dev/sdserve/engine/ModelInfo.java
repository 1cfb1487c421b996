package dev.sdserve.engine;

/**
 * What a caller needs to know about a resident model to plan work for it.
 *
 * @param name            registry name
 * @param latentChannels  channels of the latent (4 for SD 1.x)
 * @param vaeScale        pixels per latent cell (8 for SD 1.x)
 * @param contextTokens   tokens of a conditioning (77)
 * @param contextDim      width of a conditioning (768 for SD 1.5)
 * @param scalingFactor   VAE scaling factor (0.18215 for SD 1.x)
 * @param architecture    e.g. "sd1"
 * @param defaultImageSize image edge in pixels used when a request gives none (512 for SD 1.x, less for tiny models)
 * @param unetInChannels  input channels of the UNet (the latent's, or 9 for SD 1.x inpainting checkpoints)
 * @param predictionType  what the UNet predicts: "epsilon" or "v_prediction" (SD 2.x 768-v); samplers run on the
 *                        family's scheduler config with this prediction type
 */
public record ModelInfo(String name, int latentChannels, int vaeScale, int contextTokens, int contextDim,
                        double scalingFactor, String architecture, int defaultImageSize, int unetInChannels,
                        String predictionType) {
    public ModelInfo {
        predictionType = predictionType == null ? "epsilon" : predictionType;
    }

    /** An epsilon-prediction model. */
    public ModelInfo(String name, int latentChannels, int vaeScale, int contextTokens, int contextDim,
                     double scalingFactor, String architecture, int defaultImageSize, int unetInChannels) {
        this(name, latentChannels, vaeScale, contextTokens, contextDim, scalingFactor, architecture, defaultImageSize,
                unetInChannels, null);
    }

    /** A model whose UNet takes the latent alone. */
    public ModelInfo(String name, int latentChannels, int vaeScale, int contextTokens, int contextDim,
                     double scalingFactor, String architecture, int defaultImageSize) {
        this(name, latentChannels, vaeScale, contextTokens, contextDim, scalingFactor, architecture, defaultImageSize,
                latentChannels);
    }

    /**
     * An inpainting model: its UNet takes the latent plus a mask channel and the masked image's latent
     * (latent + 1 + latent channels, 9 for SD 1.x inpainting checkpoints).
     */
    public boolean inpainting() {
        return unetInChannels == 2 * latentChannels + 1;
    }

    /** UNet input channels beyond the latent's (0 for ordinary models, 5 for SD 1.x inpainting models). */
    public int extraChannels() {
        return unetInChannels - latentChannels;
    }
}
