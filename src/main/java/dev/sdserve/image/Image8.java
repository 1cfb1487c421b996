package dev.sdserve.image;

import dev.sdserve.job.ImagePreparer;

import java.util.Arrays;

/**
 * An 8-bit image, row-major, interleaved: {@code bands} = 1 (grey, "L"), 3 (RGB) or 4 (RGBA, straight alpha).
 * Values are 0–255 held in bytes (read them with {@link #get}).
 */
public record Image8(int width, int height, int bands, byte[] data) implements ImagePreparer.Decoded {
    public Image8 {
        if (width < 1 || height < 1) {
            throw new IllegalArgumentException("image size " + width + "x" + height + " is empty");
        }
        if (bands != 1 && bands != 3 && bands != 4) {
            throw new IllegalArgumentException("an image has 1, 3 or 4 bands, not " + bands);
        }
        if ((long) width * height * bands != data.length) {
            throw new IllegalArgumentException(width + "x" + height + "x" + bands + " image with " + data.length + " bytes");
        }
    }

    /** A blank (zero) image. */
    public static Image8 blank(int width, int height, int bands) {
        return new Image8(width, height, bands, new byte[width * height * bands]);
    }

    /** Value of band {@code b} at (x, y), 0–255. */
    public int get(int x, int y, int b) {
        return data[(y * width + x) * bands + b] & 0xff;
    }

    public void set(int x, int y, int b, int v) {
        data[(y * width + x) * bands + b] = (byte) v;
    }

    /** Whether any pixel is not fully opaque (false for images without alpha). */
    public boolean hasTransparency() {
        if (bands != 4) {
            return false;
        }
        for (int i = 3; i < data.length; i += 4) {
            if ((data[i] & 0xff) != 255) {
                return true;
            }
        }
        return false;
    }

    /**
     * As RGB: grey is replicated, alpha is flattened onto {@code background} (0xRRGGBB) as A1111's
     * {@code images.flatten} does before img2img (white by default there).
     */
    public Image8 toRgb(int background) {
        if (bands == 3) {
            return this;
        }
        byte[] out = new byte[width * height * 3];
        int[] bg = {(background >> 16) & 0xff, (background >> 8) & 0xff, background & 0xff};
        for (int i = 0, n = width * height; i < n; i++) {
            for (int c = 0; c < 3; c++) {
                int v;
                if (bands == 1) {
                    v = data[i] & 0xff;
                } else {
                    int a = data[i * 4 + 3] & 0xff;
                    int s = data[i * 4 + c] & 0xff;
                    v = (s * a + bg[c] * (255 - a) + 127) / 255;
                }
                out[i * 3 + c] = (byte) v;
            }
        }
        return new Image8(width, height, 3, out);
    }

    /**
     * As grey ("L"): PIL's {@code convert('L')}, L = (R·299 + G·587 + B·114) / 1000 rounded (ITU-R 601-2), alpha
     * ignored.
     */
    public Image8 toGrey() {
        if (bands == 1) {
            return this;
        }
        byte[] out = new byte[width * height];
        for (int i = 0; i < out.length; i++) {
            int r = data[i * bands] & 0xff, g = data[i * bands + 1] & 0xff, b = data[i * bands + 2] & 0xff;
            // PIL: L24 = R·19595 + G·38470 + B·7471 (×65536 / 1000), + 0x8000, >> 16
            out[i] = (byte) ((r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16);
        }
        return new Image8(width, height, 1, out);
    }

    /** The image as floats in [0, 1], HWC, {@code bands} per pixel. */
    public float[] toFloats() {
        float[] f = new float[data.length];
        for (int i = 0; i < f.length; i++) {
            f[i] = (data[i] & 0xff) / 255f;
        }
        return f;
    }

    /**
     * An image from floats in [0, 1] (HWC), quantised as the service's PNGs are (diffusers' numpy_to_pil: clamp,
     * × 255 in float32, round half to even; NaN → 0).
     */
    public static Image8 fromFloats(float[] hwc, int width, int height, int bands) {
        byte[] b = new byte[hwc.length];
        for (int i = 0; i < b.length; i++) {
            float x = hwc[i];
            b[i] = (byte) (!(x > 0) ? 0 : x >= 1 ? 255 : (int) Math.rint(x * 255f));
        }
        return new Image8(width, height, bands, b);
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof Image8 i && i.width == width && i.height == height && i.bands == bands
                && Arrays.equals(i.data, data);
    }

    @Override
    public int hashCode() {
        return 31 * (31 * width + height) + Arrays.hashCode(data);
    }

    @Override
    public String toString() {
        return "Image8[" + width + "x" + height + "x" + bands + "]";
    }
}
