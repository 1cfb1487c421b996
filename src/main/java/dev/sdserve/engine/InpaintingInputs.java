package dev.sdserve.engine;

/**
 * How an inpainting mask becomes model input, as diffusers' inpainting pipeline does it: the mask binarised at 0.5,
 * the masked image ({@code image · (mask < 0.5)}), the mask on the latent grid (nearest neighbour), and an inpainting
 * UNet's extra input channels ({@link DenoiseItem#extraChannels()}: the latent mask, then the masked image's latent).
 * Masks are 1 where the model repaints.
 */
public final class InpaintingInputs {
    private InpaintingInputs() {
    }

    /** diffusers' mask binarisation: 1 where m ≥ 0.5, else 0. */
    public static float[] binarize(float[] m) {
        float[] b = new float[m.length];
        for (int i = 0; i < m.length; i++) {
            b[i] = m[i] >= 0.5f ? 1f : 0f;
        }
        return b;
    }

    /**
     * The mask on the latent grid: {@code torch.nn.functional.interpolate} with its default nearest mode (source
     * index floor(i · in/out)), one value per latent cell, row-major.
     */
    public static float[] latentMask(float[] mask, int width, int height, int latentWidth, int latentHeight) {
        if (mask.length != width * height) {
            throw new IllegalArgumentException("mask of " + mask.length + " values for " + width + "x" + height);
        }
        float sy = (float) height / latentHeight, sx = (float) width / latentWidth;
        float[] out = new float[latentWidth * latentHeight];
        for (int y = 0; y < latentHeight; y++) {
            int iy = Math.min((int) Math.floor(y * sy), height - 1);
            for (int x = 0; x < latentWidth; x++) {
                int ix = Math.min((int) Math.floor(x * sx), width - 1);
                out[y * latentWidth + x] = mask[iy * width + ix];
            }
        }
        return out;
    }

    /**
     * The masked image, {@code image · (mask < 0.5)} in [−1, 1], expressed in [0, 1] (HWC RGB, as the engine's
     * image encoder takes it): pixels to repaint become 0.5, the rest keep their value.
     */
    public static float[] maskedImage(float[] rgb01, float[] mask) {
        if (rgb01.length != mask.length * 3) {
            throw new IllegalArgumentException("image of " + rgb01.length + " floats, mask of " + mask.length);
        }
        float[] out = new float[rgb01.length];
        for (int i = 0; i < mask.length; i++) {
            boolean keep = mask[i] < 0.5f;
            for (int c = 0; c < 3; c++) {
                out[i * 3 + c] = keep ? rgb01[i * 3 + c] : 0.5f;
            }
        }
        return out;
    }

    /** An inpainting UNet's extra channels: the latent mask (1 channel), then the masked image's latent. */
    public static float[] extraChannels(float[] maskLatent, float[] maskedImageLatent) {
        if (maskedImageLatent.length % maskLatent.length != 0) {
            throw new IllegalArgumentException("latent of " + maskedImageLatent.length + " floats, mask of " + maskLatent.length);
        }
        float[] e = new float[maskLatent.length + maskedImageLatent.length];
        System.arraycopy(maskLatent, 0, e, 0, maskLatent.length);
        System.arraycopy(maskedImageLatent, 0, e, maskLatent.length, maskedImageLatent.length);
        return e;
    }
}
