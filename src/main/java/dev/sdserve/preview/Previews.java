package dev.sdserve.preview;

import dev.sdserve.engine.LatentShape;
import dev.sdserve.engine.projection.LatentProjection;

import javax.imageio.IIOImage;
import javax.imageio.ImageIO;
import javax.imageio.ImageWriteParam;
import javax.imageio.ImageWriter;
import javax.imageio.stream.ImageOutputStream;
import java.awt.image.BufferedImage;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.Iterator;
import java.util.Locale;

/**
 * Step previews without the VAE: a latent (the denoised estimate x̂0, or the noisy sample) through the model's
 * {@link LatentProjection}, bilinearly scaled so the longest edge is {@code maxEdge}, encoded as PNG or JPEG; or the
 * latent itself ({@link LatentProjection#float16}) for clients that render it.
 */
public final class Previews {
    private Previews() {
    }

    /** The latent through the SD 1.x fallback projection ({@link LatentProjection#SD1_CHEAP}), HWC in [0, 1]. */
    public static float[] latentToRgb(float[] latent, LatentShape shape) {
        return LatentProjection.SD1_CHEAP.toRgb(latent, shape);
    }

    /** Preview size: the longest edge becomes {@code maxEdge} (aspect kept, at least 1 pixel). */
    public static int[] previewSize(int width, int height, int maxEdge) {
        if (maxEdge <= 0) {
            return new int[]{width, height};
        }
        double s = maxEdge / (double) Math.max(width, height);
        return new int[]{Math.max(1, (int) Math.round(width * s)), Math.max(1, (int) Math.round(height * s))};
    }

    /** Bilinear resize of an HWC RGB float image (align-corners=false sampling). */
    public static float[] resize(float[] rgb, int w, int h, int nw, int nh) {
        if (nw == w && nh == h) {
            return rgb;
        }
        float[] out = new float[nw * nh * 3];
        double sx = w / (double) nw;
        double sy = h / (double) nh;
        for (int y = 0; y < nh; y++) {
            double fy = Math.max(0, (y + 0.5) * sy - 0.5);
            int y0 = Math.min((int) fy, h - 1);
            int y1 = Math.min(y0 + 1, h - 1);
            double wy = fy - y0;
            for (int x = 0; x < nw; x++) {
                double fx = Math.max(0, (x + 0.5) * sx - 0.5);
                int x0 = Math.min((int) fx, w - 1);
                int x1 = Math.min(x0 + 1, w - 1);
                double wx = fx - x0;
                for (int c = 0; c < 3; c++) {
                    double a = rgb[(y0 * w + x0) * 3 + c] * (1 - wx) + rgb[(y0 * w + x1) * 3 + c] * wx;
                    double b = rgb[(y1 * w + x0) * 3 + c] * (1 - wx) + rgb[(y1 * w + x1) * 3 + c] * wx;
                    out[(y * nw + x) * 3 + c] = (float) (a * (1 - wy) + b * wy);
                }
            }
        }
        return out;
    }

    /** An encoded preview of a latent through the SD 1.x fallback projection. */
    public static byte[] encode(float[] latent, LatentShape shape, int imageWidth, int imageHeight, int maxEdge,
                                String format) {
        return encode(latent, shape, LatentProjection.SD1_CHEAP, imageWidth, imageHeight, maxEdge, format);
    }

    /**
     * An encoded preview of a latent.
     *
     * @param projection  the model's latent → RGB map
     * @param imageWidth  the request's image width (the preview keeps its aspect)
     * @param imageHeight the request's image height
     * @param maxEdge     longest edge of the preview in pixels (≤ 0: latent resolution)
     * @param format      "png" or "jpeg"
     */
    public static byte[] encode(float[] latent, LatentShape shape, LatentProjection projection, int imageWidth,
                                int imageHeight, int maxEdge, String format) {
        return encodeCells(projection.toRgb(latent, shape), shape, imageWidth, imageHeight, maxEdge, format);
    }

    /**
     * An encoded preview of RGB per latent cell (HWC in [0, 1], the latent grid of {@code shape}: a projection's or
     * a decoder readout's), scaled to the request's aspect as {@link #encode} does.
     */
    public static byte[] encodeCells(float[] rgb, LatentShape shape, int imageWidth, int imageHeight, int maxEdge,
                                     String format) {
        int[] size = maxEdge <= 0 ? new int[]{shape.width(), shape.height()}
                : previewSize(imageWidth, imageHeight, Math.min(maxEdge, Math.max(imageWidth, imageHeight)));
        float[] scaled = resize(rgb, shape.width(), shape.height(), size[0], size[1]);
        BufferedImage img = Png.toImage(scaled, size[0], size[1]);
        return write(img, format);
    }

    /**
     * An encoded preview of a decoded image (HWC in [0, 1], {@code width}×{@code height}, e.g. a full preview's VAE
     * decode), scaled so its longest edge is at most {@code maxEdge} (≤ 0: as it is).
     */
    public static byte[] encodeImage(float[] rgb, int width, int height, int maxEdge, String format) {
        int[] size = maxEdge <= 0 ? new int[]{width, height}
                : previewSize(width, height, Math.min(maxEdge, Math.max(width, height)));
        float[] scaled = resize(rgb, width, height, size[0], size[1]);
        return write(Png.toImage(scaled, size[0], size[1]), format);
    }

    static byte[] write(BufferedImage img, String format) {
        String f = format == null ? "png" : format.toLowerCase(Locale.ROOT);
        if (f.equals("png")) {
            return Png.write(img, null);
        }
        if (!f.equals("jpeg") && !f.equals("jpg")) {
            throw new IllegalArgumentException("preview format must be png or jpeg, not " + format);
        }
        try {
            Iterator<ImageWriter> it = ImageIO.getImageWritersByFormatName("jpeg");
            if (!it.hasNext()) {
                throw new IllegalStateException("no JPEG writer available");
            }
            ImageWriter writer = it.next();
            ByteArrayOutputStream bos = new ByteArrayOutputStream();
            try (ImageOutputStream out = ImageIO.createImageOutputStream(bos)) {
                writer.setOutput(out);
                ImageWriteParam p = writer.getDefaultWriteParam();
                p.setCompressionMode(ImageWriteParam.MODE_EXPLICIT);
                p.setCompressionQuality(0.8f);
                writer.write(null, new IIOImage(img, null, null), p);
            } finally {
                writer.dispose();
            }
            return bos.toByteArray();
        } catch (IOException e) {
            throw new UncheckedIOException("JPEG encoding failed", e);
        }
    }
}
