package dev.sdserve.sampler;

import java.util.ArrayList;
import java.util.List;

/**
 * The standard-normal draws an img2img or inpainting request makes before its first step, in the order diffusers'
 * pipelines make them from the request's generator (the order the golden sets record): the VAE posterior sample of
 * the init image (when the image latent is used), the latent noise, then the VAE posterior sample of the masked image
 * (inpainting). The stochastic samplers' step noise follows from the same generator.
 *
 * @param imagePosterior  eps of the init image's posterior sample, or null when the image is not encoded
 * @param latentNoise     the latent noise (added to the image latent, or the whole start at strength 1)
 * @param maskedPosterior eps of the masked image's posterior sample, or null (img2img)
 */
public record ImageDraws(float[] imagePosterior, float[] latentNoise, float[] maskedPosterior) {
    /** Names of the draws as the golden sets record them. */
    public static final String IMAGE = "vae_posterior_sample:image";
    public static final String NOISE = "latent_noise";
    public static final String MASKED = "vae_posterior_sample:masked_image";

    /** img2img: the image's posterior sample, then the noise. */
    public static ImageDraws img2img(NoiseSource g, int latentSize) {
        return draw(g, latentSize, true, false);
    }

    /**
     * Inpainting: the image is encoded for a 4-channel UNet (its latent is blended back) or below strength 1 (the
     * start noises it); the masked image always (diffusers encodes it for both kinds of UNet).
     */
    public static ImageDraws inpaint(NoiseSource g, int latentSize, boolean inpaintingUnet, double strength) {
        return draw(g, latentSize, !inpaintingUnet || strength < 1.0, true);
    }

    private static ImageDraws draw(NoiseSource g, int size, boolean image, boolean masked) {
        float[] a = image ? fill(g, size) : null;
        float[] n = fill(g, size);
        float[] m = masked ? fill(g, size) : null;
        return new ImageDraws(a, n, m);
    }

    private static float[] fill(NoiseSource g, int size) {
        float[] x = new float[size];
        g.fill(x);
        return x;
    }

    /** The names of these draws in order. */
    public List<String> names() {
        List<String> out = new ArrayList<>(3);
        if (imagePosterior != null) {
            out.add(IMAGE);
        }
        out.add(NOISE);
        if (maskedPosterior != null) {
            out.add(MASKED);
        }
        return out;
    }
}
