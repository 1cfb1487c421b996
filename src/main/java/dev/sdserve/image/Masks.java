package dev.sdserve.image;

/**
 * Inpainting masks: AUTOMATIC1111's preparation of the mask image (binary mask from an RGBA or grey image,
 * {@code inpainting_mask_invert}, {@code mask_blur}); diffusers' use of it (binarised at 0.5, masked image, latent
 * grid) is {@link dev.sdserve.engine.InpaintingInputs}. Masks are 1 (255) where the model repaints.
 */
public final class Masks {
    private Masks() {
    }

    /**
     * A1111's {@code create_binary_mask}: an RGBA image with any transparency gives its alpha channel thresholded
     * at 128 (opaque = repaint); any other image its grey value ({@code convert('L')}).
     */
    public static Image8 fromImage(Image8 mask) {
        if (mask.bands() == 4 && mask.hasTransparency()) {
            byte[] out = new byte[mask.width() * mask.height()];
            for (int i = 0; i < out.length; i++) {
                out[i] = (byte) ((mask.data()[i * 4 + 3] & 0xff) > 128 ? 255 : 0);
            }
            return new Image8(mask.width(), mask.height(), 1, out);
        }
        return mask.toGrey();
    }

    /** {@code ImageOps.invert}: 255 − v. */
    public static Image8 invert(Image8 grey) {
        byte[] out = new byte[grey.data().length];
        for (int i = 0; i < out.length; i++) {
            out[i] = (byte) (255 - (grey.data()[i] & 0xff));
        }
        return new Image8(grey.width(), grey.height(), grey.bands(), out);
    }

    /**
     * A1111's {@code mask_blur}: OpenCV's {@code GaussianBlur} of the grey mask along x with kernel size
     * 2·int(2.5·r + 0.5) + 1 and σ = r, then along y (border: reflect-101). OpenCV rounds its fixed-point kernel
     * sums; this computes in double and rounds once per pass (values may differ by one level).
     */
    public static Image8 blur(Image8 grey, int radius) {
        if (radius <= 0) {
            return grey;
        }
        if (grey.bands() != 1) {
            throw new IllegalArgumentException("blur a grey mask, not " + grey.bands() + " bands");
        }
        double[] k = gaussianKernel(2 * (int) (2.5 * radius + 0.5) + 1, radius);
        Image8 x = pass(grey, k, true);
        return pass(x, k, false);
    }

    /** OpenCV's getGaussianKernel(n, sigma): exp(−(i − (n−1)/2)² / 2σ²), normalised. */
    static double[] gaussianKernel(int n, double sigma) {
        double[] k = new double[n];
        double sum = 0;
        double c = (n - 1) / 2.0;
        for (int i = 0; i < n; i++) {
            double d = i - c;
            k[i] = Math.exp(-d * d / (2 * sigma * sigma));
            sum += k[i];
        }
        for (int i = 0; i < n; i++) {
            k[i] /= sum;
        }
        return k;
    }

    private static Image8 pass(Image8 in, double[] k, boolean horizontal) {
        int w = in.width(), h = in.height();
        int r = k.length / 2;
        byte[] out = new byte[w * h];
        int len = horizontal ? w : h;
        for (int y = 0; y < h; y++) {
            for (int x = 0; x < w; x++) {
                double s = 0;
                for (int j = -r; j <= r; j++) {
                    int p = reflect101((horizontal ? x : y) + j, len);
                    s += k[j + r] * in.get(horizontal ? p : x, horizontal ? y : p, 0);
                }
                out[y * w + x] = (byte) Math.max(0, Math.min(255, (int) Math.round(s)));
            }
        }
        return new Image8(w, h, 1, out);
    }

    /** OpenCV's BORDER_REFLECT_101 (gfedcb|abcdefgh|gfedcba). */
    static int reflect101(int p, int len) {
        if (len == 1) {
            return 0;
        }
        while (p < 0 || p >= len) {
            p = p < 0 ? -p : 2 * len - 2 - p;
        }
        return p;
    }

    /** The grey mask as floats in [0, 1] (1 = repaint), row-major. */
    public static float[] toUnit(Image8 grey) {
        if (grey.bands() != 1) {
            throw new IllegalArgumentException("a mask has one band, not " + grey.bands());
        }
        return grey.toFloats();
    }
}
