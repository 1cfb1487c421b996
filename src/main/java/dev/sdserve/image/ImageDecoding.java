package dev.sdserve.image;

import javax.imageio.ImageIO;
import javax.imageio.ImageReader;
import javax.imageio.spi.IIORegistry;
import javax.imageio.spi.ImageReaderSpi;
import javax.imageio.stream.ImageInputStream;
import java.awt.color.ColorSpace;
import java.awt.image.BufferedImage;
import java.awt.image.Raster;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.util.Base64;
import java.util.Iterator;

/**
 * Decodes the images clients send (init images and masks): PNG and JPEG through the JDK's ImageIO, WebP (lossy,
 * lossless, with alpha) through TwelveMonkeys' ImageIO plugin. The size is read from the header first, so a file
 * announcing more pixels than allowed is refused before it is decoded.
 */
public final class ImageDecoding {
    /** Refusals of an image, with a message meant for the client. */
    public static final class BadImageException extends IllegalArgumentException {
        public BadImageException(String message) {
            super(message);
        }
    }

    static {
        // register the WebP reader explicitly: ImageIO's classpath scan may not see plugins under every class loader
        try {
            IIORegistry.getDefaultInstance().registerServiceProvider(
                    new com.twelvemonkeys.imageio.plugins.webp.WebPImageReaderSpi(), ImageReaderSpi.class);
        } catch (LinkageError e) {
            // without the plugin WebP is refused with a clear message below
        }
    }

    private ImageDecoding() {
    }

    /** The container format from the first bytes: "png", "jpeg", "webp", or null. */
    public static String sniff(byte[] b) {
        if (b.length >= 8 && (b[0] & 0xff) == 0x89 && b[1] == 'P' && b[2] == 'N' && b[3] == 'G') {
            return "png";
        }
        if (b.length >= 3 && (b[0] & 0xff) == 0xFF && (b[1] & 0xff) == 0xD8 && (b[2] & 0xff) == 0xFF) {
            return "jpeg";
        }
        if (b.length >= 12 && b[0] == 'R' && b[1] == 'I' && b[2] == 'F' && b[3] == 'F'
                && b[8] == 'W' && b[9] == 'E' && b[10] == 'B' && b[11] == 'P') {
            return "webp";
        }
        return null;
    }

    /**
     * Decodes PNG, JPEG or WebP bytes into an 8-bit image: grey images keep one band, colour images three, images
     * with an alpha channel four (straight alpha).
     *
     * @param maxPixels the most pixels (width × height) accepted
     * @throws BadImageException when the bytes are not such an image, cannot be decoded, or are too large
     */
    public static Image8 decode(byte[] bytes, long maxPixels) {
        if (bytes == null || bytes.length == 0) {
            throw new BadImageException("is empty: expected PNG, JPEG or WebP image bytes");
        }
        String format = sniff(bytes);
        if (format == null) {
            throw new BadImageException("is not an image: expected PNG, JPEG or WebP bytes (" + bytes.length
                    + " bytes starting " + hex(bytes) + ")");
        }
        try (ImageInputStream in = ImageIO.createImageInputStream(new ByteArrayInputStream(bytes))) {
            Iterator<ImageReader> readers = ImageIO.getImageReadersByFormatName(format);
            if (!readers.hasNext()) {
                throw new BadImageException("is " + format + ", which this server cannot decode");
            }
            ImageReader r = readers.next();
            try {
                r.setInput(in, true, true);
                int w = r.getWidth(0), h = r.getHeight(0);
                if ((long) w * h > maxPixels) {
                    throw new BadImageException("is too large: " + w + "x" + h + " = " + (long) w * h
                            + " pixels, at most " + maxPixels + " are accepted");
                }
                return toImage8(r.read(0));
            } finally {
                r.dispose();
            }
        } catch (IOException | RuntimeException e) {
            if (e instanceof BadImageException b) {
                throw b;
            }
            throw new BadImageException("is a " + format + " file that cannot be decoded: " + e.getMessage());
        }
    }

    /**
     * The bytes of a base64 image as A1111 clients send it: plain base64, or a data URL
     * ({@code data:image/png;base64,...}).
     */
    public static byte[] base64(String s) {
        if (s == null || s.isBlank()) {
            throw new BadImageException("is empty: expected a base64-encoded PNG, JPEG or WebP image");
        }
        String b = s.strip();
        if (b.startsWith("data:")) {
            int comma = b.indexOf(',');
            if (comma < 0) {
                throw new BadImageException("is a data URL without data");
            }
            b = b.substring(comma + 1);
        }
        try {
            return Base64.getMimeDecoder().decode(b);
        } catch (IllegalArgumentException e) {
            throw new BadImageException("is not valid base64: " + e.getMessage());
        }
    }

    static Image8 toImage8(BufferedImage img) {
        int w = img.getWidth(), h = img.getHeight();
        boolean alpha = img.getColorModel().hasAlpha();
        boolean grey = img.getColorModel().getColorSpace().getType() == ColorSpace.TYPE_GRAY;
        if (grey) {
            // read the samples: getRGB would convert linear grey to sRGB and change the values
            Raster r = img.getRaster();
            int bits = img.getColorModel().getComponentSize(0);
            int bands = alpha ? 4 : 1;
            Image8 out = Image8.blank(w, h, bands);
            for (int y = 0; y < h; y++) {
                for (int x = 0; x < w; x++) {
                    int v = scale8(r.getSample(x, y, 0), bits);
                    if (alpha) {
                        int a = scale8(r.getSample(x, y, 1), img.getColorModel().getComponentSize(1));
                        out.set(x, y, 0, v);
                        out.set(x, y, 1, v);
                        out.set(x, y, 2, v);
                        out.set(x, y, 3, a);
                    } else {
                        out.set(x, y, 0, v);
                    }
                }
            }
            return out;
        }
        int bands = alpha ? 4 : 3;
        int[] argb = img.getRGB(0, 0, w, h, null, 0, w);
        byte[] d = new byte[w * h * bands];
        for (int i = 0; i < argb.length; i++) {
            int p = argb[i];
            d[i * bands] = (byte) (p >> 16);
            d[i * bands + 1] = (byte) (p >> 8);
            d[i * bands + 2] = (byte) p;
            if (alpha) {
                d[i * bands + 3] = (byte) (p >>> 24);
            }
        }
        return new Image8(w, h, bands, d);
    }

    private static int scale8(int v, int bits) {
        if (bits == 8) {
            return v;
        }
        int max = (1 << bits) - 1;
        return (int) Math.round(v * 255.0 / max);
    }

    private static String hex(byte[] b) {
        StringBuilder s = new StringBuilder();
        for (int i = 0; i < Math.min(8, b.length); i++) {
            s.append(String.format("%02x", b[i] & 0xff));
        }
        return s.toString();
    }
}
