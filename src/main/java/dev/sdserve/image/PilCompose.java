package dev.sdserve.image;

/**
 * The Pillow operations AUTOMATIC1111 uses to prepare and finish an inpainting job, reproduced with Pillow's own
 * integer arithmetic: pasting through a mask into premultiplied RGBa, the Gaussian blur (three extended box blurs per
 * axis), RGBa → RGBA, and {@code alpha_composite}. On top of them: {@link #fill} ({@code inpainting_fill} 0,
 * A1111's {@code masking.fill}) and {@link #overlay} (A1111's {@code apply_overlay}: the original pasted back
 * outside the mask).
 */
public final class PilCompose {
    private PilCompose() {
    }

    private static int div255(int a) {
        int tmp = a + 128;
        return ((tmp >> 8) + tmp) >> 8;
    }

    /**
     * {@code Image.new('RGBa').paste(rgb.convert('RGBA').convert('RGBa'), mask=alpha)}: every band (alpha 255
     * included) times alpha / 255, rounded.
     */
    static Image8 premultiplied(Image8 rgb, Image8 alpha) {
        int n = rgb.width() * rgb.height();
        byte[] out = new byte[n * 4];
        for (int i = 0; i < n; i++) {
            int a = alpha.data()[i] & 0xff;
            for (int c = 0; c < 3; c++) {
                out[i * 4 + c] = (byte) div255((rgb.data()[i * 3 + c] & 0xff) * a);
            }
            out[i * 4 + 3] = (byte) div255(255 * a);
        }
        return new Image8(rgb.width(), rgb.height(), 4, out);
    }

    /** Pillow's RGBa → RGBA: colour · 255 / alpha (truncated, clipped) where 0 &lt; alpha &lt; 255. */
    static Image8 unpremultiply(Image8 rgba) {
        byte[] d = rgba.data().clone();
        for (int i = 0; i < d.length; i += 4) {
            int a = d[i + 3] & 0xff;
            if (a != 0 && a != 255) {
                for (int c = 0; c < 3; c++) {
                    d[i + c] = (byte) Math.min(255, 255 * (d[i + c] & 0xff) / a);
                }
            }
        }
        return new Image8(rgba.width(), rgba.height(), 4, d);
    }

    /** Pillow's {@code alpha_composite(dst, src)} of RGBA images, in place into {@code dst}. */
    static void alphaComposite(Image8 dst, Image8 src) {
        final int bits = 7;
        byte[] o = dst.data(), s = src.data();
        for (int i = 0; i < o.length; i += 4) {
            long sa = s[i + 3] & 0xff;
            if (sa == 0) {
                continue;
            }
            long da = o[i + 3] & 0xff;
            long blend = da * (255 - sa);
            long outa255 = sa * 255 + blend;
            long coef1 = sa * 255 * 255 * (1L << bits) / outa255;
            long coef2 = 255 * (1L << bits) - coef1;
            for (int c = 0; c < 3; c++) {
                long tmp = (s[i + c] & 0xff) * coef1 + (o[i + c] & 0xff) * coef2 + (0x80L << bits);
                o[i + c] = (byte) ((((tmp >> 8) + tmp) >> 8) >> bits);
            }
            long a = outa255 + 0x80;
            o[i + 3] = (byte) (((a >> 8) + a) >> 8);
        }
    }

    /** Pillow's {@code GaussianBlur(radius)} of a 4-band image: three extended box blurs along x, then along y. */
    static Image8 gaussianBlur(Image8 im, float radius) {
        if (radius == 0) {
            return new Image8(im.width(), im.height(), im.bands(), im.data().clone());
        }
        float r = boxRadius(radius, 3);
        int w = im.width(), h = im.height(), bands = im.bands();
        int[] a = new int[w * h * bands];
        for (int i = 0; i < a.length; i++) {
            a[i] = im.data()[i] & 0xff;
        }
        int[] line = new int[Math.max(w, h) * bands];
        int[] outLine = new int[Math.max(w, h) * bands];
        for (int pass = 0; pass < 3; pass++) {
            for (int y = 0; y < h; y++) {
                System.arraycopy(a, y * w * bands, line, 0, w * bands);
                boxLine(line, outLine, w, bands, r);
                System.arraycopy(outLine, 0, a, y * w * bands, w * bands);
            }
        }
        for (int pass = 0; pass < 3; pass++) {
            for (int x = 0; x < w; x++) {
                for (int y = 0; y < h; y++) {
                    System.arraycopy(a, (y * w + x) * bands, line, y * bands, bands);
                }
                boxLine(line, outLine, h, bands, r);
                for (int y = 0; y < h; y++) {
                    System.arraycopy(outLine, y * bands, a, (y * w + x) * bands, bands);
                }
            }
        }
        byte[] out = new byte[a.length];
        for (int i = 0; i < a.length; i++) {
            out[i] = (byte) a[i];
        }
        return new Image8(w, h, bands, out);
    }

    /** Pillow's {@code _gaussian_blur_radius}: the extended box radius whose 3-pass variance matches σ = radius. */
    static float boxRadius(float radius, int passes) {
        float sigma2 = radius * radius / passes;
        float bigL = (float) Math.sqrt(12.0 * sigma2 + 1.0);
        float l = (float) Math.floor((bigL - 1.0) / 2.0);
        float a = (2 * l + 1) * (l * (l + 1) - 3 * sigma2);
        a /= 6 * (sigma2 - (l + 1) * (l + 1));
        return l + a;
    }

    /** Pillow's {@code ImagingLineBoxBlur32} (and the weights of {@code ImagingHorizontalBoxBlur}). */
    private static void boxLine(int[] in, int[] out, int size, int bands, float floatRadius) {
        int radius = (int) floatRadius;
        long ww = (long) ((float) (1 << 24) / (floatRadius * 2 + 1)) & 0xffffffffL;
        long fw = (((1L << 24) - (radius * 2L + 1) * ww) / 2) & 0xffffffffL;
        int lastx = size - 1;
        int edgeA = Math.min(radius + 1, size);
        int edgeB = Math.max(size - radius - 1, 0);
        for (int b = 0; b < bands; b++) {
            long acc = (long) in[b] * (radius + 1);
            for (int x = 0; x < edgeA - 1; x++) {
                acc += in[x * bands + b];
            }
            acc += (long) in[lastx * bands + b] * (radius - edgeA + 1);
            if (edgeA <= edgeB) {
                for (int x = 0; x < edgeA; x++) {
                    acc = acc - in[b] + in[(x + radius) * bands + b];
                    out[x * bands + b] = save(acc, ww, fw, in[b], in[(x + radius + 1) * bands + b]);
                }
                for (int x = edgeA; x < edgeB; x++) {
                    acc = acc - in[(x - radius - 1) * bands + b] + in[(x + radius) * bands + b];
                    out[x * bands + b] = save(acc, ww, fw, in[(x - radius - 1) * bands + b], in[(x + radius + 1) * bands + b]);
                }
                for (int x = edgeB; x <= lastx; x++) {
                    acc = acc - in[(x - radius - 1) * bands + b] + in[lastx * bands + b];
                    out[x * bands + b] = save(acc, ww, fw, in[(x - radius - 1) * bands + b], in[lastx * bands + b]);
                }
            } else {
                for (int x = 0; x < edgeB; x++) {
                    acc = acc - in[b] + in[(x + radius) * bands + b];
                    out[x * bands + b] = save(acc, ww, fw, in[b], in[lastx * bands + b]);
                }
                for (int x = edgeB; x < edgeA; x++) {
                    acc = acc - in[b] + in[lastx * bands + b];
                    out[x * bands + b] = save(acc, ww, fw, in[b], in[lastx * bands + b]);
                }
                for (int x = edgeA; x <= lastx; x++) {
                    acc = acc - in[(x - radius - 1) * bands + b] + in[lastx * bands + b];
                    out[x * bands + b] = save(acc, ww, fw, in[(x - radius - 1) * bands + b], in[lastx * bands + b]);
                }
            }
        }
    }

    private static int save(long acc, long ww, long fw, int left, int right) {
        long bulk = (acc * ww + (long) (left + right) * fw) & 0xffffffffL;
        return (int) (((bulk + (1L << 23)) >> 24) & 0xff);
    }

    /**
     * A1111's {@code masking.fill} ({@code inpainting_fill} 0, "fill"): the region to repaint filled with the
     * surrounding colours, blurred at radii 256, 64, 16, 4, 2 and composited over each other, the known region kept.
     *
     * @param rgb  the image (3 bands)
     * @param mask grey mask, 255 = repaint
     */
    public static Image8 fill(Image8 rgb, Image8 mask) {
        Image8 masked = premultiplied(rgb, Masks.invert(mask));
        Image8 mod = Image8.blank(rgb.width(), rgb.height(), 4);
        int[][] passes = {{256, 1}, {64, 1}, {16, 2}, {4, 4}, {2, 2}, {0, 1}};
        for (int[] p : passes) {
            Image8 blurred = unpremultiply(gaussianBlur(masked, p[0]));
            for (int k = 0; k < p[1]; k++) {
                alphaComposite(mod, blurred);
            }
        }
        byte[] out = new byte[rgb.width() * rgb.height() * 3];
        for (int i = 0, n = rgb.width() * rgb.height(); i < n; i++) {
            System.arraycopy(mod.data(), i * 4, out, i * 3, 3);
        }
        return new Image8(rgb.width(), rgb.height(), 3, out);
    }

    /**
     * A1111's {@code apply_overlay}: the original composited over the generated image with alpha 255 − m, where
     * {@code maskForOverlay} m is the (blurred) mask doubled and clipped, so the known region comes back exactly
     * and the repainted one is the model's.
     */
    public static Image8 overlay(Image8 generated, Image8 original, Image8 maskForOverlay) {
        Image8 ov = unpremultiply(premultiplied(original, Masks.invert(maskForOverlay)));
        int n = generated.width() * generated.height();
        byte[] base = new byte[n * 4];
        for (int i = 0; i < n; i++) {
            System.arraycopy(generated.data(), i * 3, base, i * 4, 3);
            base[i * 4 + 3] = (byte) 255;
        }
        Image8 dst = new Image8(generated.width(), generated.height(), 4, base);
        alphaComposite(dst, ov);
        byte[] out = new byte[n * 3];
        for (int i = 0; i < n; i++) {
            System.arraycopy(dst.data(), i * 4, out, i * 3, 3);
        }
        return new Image8(generated.width(), generated.height(), 3, out);
    }

    /** A1111's mask for the overlay: the resized mask doubled and clipped to 255. */
    public static Image8 overlayMask(Image8 mask) {
        byte[] d = new byte[mask.data().length];
        for (int i = 0; i < d.length; i++) {
            d[i] = (byte) Math.min(255, 2 * (mask.data()[i] & 0xff));
        }
        return new Image8(mask.width(), mask.height(), 1, d);
    }
}
