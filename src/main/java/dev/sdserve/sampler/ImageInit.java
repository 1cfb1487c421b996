package dev.sdserve.sampler;

/**
 * How an image-conditioned trajectory (img2img, inpainting) starts and what it keeps. All arrays are latent-sized
 * (NCHW without batch) except {@code blendMask}.
 *
 * @param imageLatent     the init image's VAE latent (posterior sample × scaling factor); null only for an inpainting
 *                        UNet at strength 1, which starts from noise and never uses it
 * @param noise           the standard-normal latent noise drawn for the request (diffusers' {@code latent_noise})
 * @param strength        denoising strength in (0, 1]
 * @param pureNoiseAtFull inpainting: at strength 1 the trajectory starts from {@code noise · init_noise_sigma}, as
 *                        txt2img does (diffusers' inpainting pipeline); img2img (false) always noises the image
 *                        latent to the first kept timestep
 * @param blendMask       null, or the latent-grid mask (1 = repaint; one value per latent cell, or one per latent
 *                        value) of diffusers' 4-channel inpainting: after every step the known region is replaced by
 *                        the image latent re-noised to the next timestep
 */
public record ImageInit(float[] imageLatent, float[] noise, double strength, boolean pureNoiseAtFull, float[] blendMask) {
    public ImageInit {
        if (noise == null) {
            throw new IllegalArgumentException("an image start needs the latent noise");
        }
        boolean fromNoise = pureNoiseAtFull && strength == 1.0;
        if (imageLatent == null && (!fromNoise || blendMask != null)) {
            throw new IllegalArgumentException("an image start needs the image latent (only inpainting at strength 1"
                    + " without blending starts from noise alone)");
        }
        if (imageLatent != null && imageLatent.length != noise.length) {
            throw new IllegalArgumentException("image latent has " + imageLatent.length + " floats, noise " + noise.length);
        }
        if (!(strength > 0 && strength <= 1)) {
            throw new IllegalArgumentException("strength must be in (0, 1], got " + strength);
        }
        if (blendMask != null && (blendMask.length == 0 || noise.length % blendMask.length != 0)) {
            throw new IllegalArgumentException("blend mask of " + blendMask.length + " values does not tile a latent of "
                    + noise.length);
        }
    }

    /** img2img: the image latent noised to the strength's first timestep. */
    public static ImageInit img2img(float[] imageLatent, float[] noise, double strength) {
        return new ImageInit(imageLatent, noise, strength, false, null);
    }

    /**
     * Inpainting; {@code blendMask} non-null for a 4-channel UNet (known region blended back after every step), null
     * for an inpainting UNet (the mask and masked image go in as extra UNet input channels instead).
     */
    public static ImageInit inpaint(float[] imageLatent, float[] noise, double strength, float[] blendMask) {
        return new ImageInit(imageLatent, noise, strength, true, blendMask);
    }
}
