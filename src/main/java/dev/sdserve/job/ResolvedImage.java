package dev.sdserve.job;

/**
 * The image part of a validated request: what the scheduler encodes with the VAE and how the trajectory starts.
 *
 * @param strength   denoising strength in (0, 1]
 * @param options    resize mode, mask blur, inpainting fill, mask inversion
 * @param overlay    paste the original back outside the mask after decoding (inpainting)
 * @param prepared   the pixels: resized (and filled) init image, masks, masked image, overlay inputs
 * @param initWidth  the init image's own width
 * @param initHeight the init image's own height
 */
public record ResolvedImage(double strength, ImageOptions options, boolean overlay, PreparedImage prepared,
                            int initWidth, int initHeight) {

    public boolean inpainting() {
        return prepared.inpainting();
    }
}
