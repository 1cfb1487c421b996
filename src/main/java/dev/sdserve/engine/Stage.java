package dev.sdserve.engine;

/**
 * The kinds of engine call an iteration can plan: text encoding, a denoising step, decoding, (img2img and
 * inpainting) encoding the init image with the VAE, and decoder previews (the VAE decoder's trunk at latent
 * resolution and a fitted readout; planned with the decodes, costed on their own).
 */
public enum Stage {
    ENCODE, DENOISE, DECODE, IMAGE_ENCODE, PREVIEW
}
