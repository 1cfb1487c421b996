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
 */
public record ModelInfo(String name, int latentChannels, int vaeScale, int contextTokens, int contextDim,
                        double scalingFactor, String architecture, int defaultImageSize) {
}
