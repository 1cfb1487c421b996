package dev.sdserve.job;

/**
 * The pixels of an img2img or inpainting request, ready for the VAE (made by the image room's preparer).
 *
 * @param width        target width (pixels)
 * @param height       target height
 * @param pixels       what the VAE encodes: HWC RGB in [0, 1] (resized; the region to repaint filled unless the
 *                     inpainting fill is "original")
 * @param originalRgb  the resized init image, 8-bit RGB interleaved, for the overlay
 * @param mask         null (img2img), or the binarised mask at full size, 1 = repaint, row-major
 * @param overlayMask  null, or A1111's 8-bit mask for the overlay (the blurred resized mask doubled)
 * @param maskLatent   null, or the mask on the latent grid (one value per latent cell, row-major)
 * @param maskedPixels null, or diffusers' masked image (repaint region 0.5, i.e. 0 in the VAE's range), HWC in [0, 1]
 */
public record PreparedImage(int width, int height, float[] pixels, byte[] originalRgb, float[] mask,
                            byte[] overlayMask, float[] maskLatent, float[] maskedPixels) {
    public boolean inpainting() {
        return mask != null;
    }
}
