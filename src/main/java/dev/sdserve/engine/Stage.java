package dev.sdserve.engine;

/**
 * The kinds of engine call an iteration can plan: text encoding, a denoising step, decoding, and (img2img and
 * inpainting) encoding the init image with the VAE.
 */
public enum Stage {
    ENCODE, DENOISE, DECODE, IMAGE_ENCODE
}
