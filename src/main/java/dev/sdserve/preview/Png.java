package dev.sdserve.preview;

import javax.imageio.IIOImage;
import javax.imageio.ImageIO;
import javax.imageio.ImageTypeSpecifier;
import javax.imageio.ImageWriteParam;
import javax.imageio.ImageWriter;
import javax.imageio.metadata.IIOInvalidTreeException;
import javax.imageio.metadata.IIOMetadata;
import javax.imageio.metadata.IIOMetadataNode;
import javax.imageio.stream.ImageOutputStream;
import java.awt.image.BufferedImage;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.Iterator;
import java.util.Map;

/** Encodes final images: float RGB in [0, 1] → 8-bit PNG, quantised as diffusers does. */
public final class Png {
    private Png() {
    }

    /**
     * 8-bit value of a float channel as diffusers' {@code numpy_to_pil} computes it: clamp to [0, 1], multiply by
     * 255 in float32, round half to even (numpy's rounding). NaN → 0.
     */
    public static int quantize(float x) {
        if (!(x > 0)) {
            return 0;
        }
        if (x >= 1) {
            return 255;
        }
        return (int) Math.rint(x * 255f);
    }

    /** Image of HWC floats as an RGB BufferedImage. */
    public static BufferedImage toImage(float[] hwcRgb01, int width, int height) {
        if (hwcRgb01.length != width * height * 3) {
            throw new IllegalArgumentException("image of " + hwcRgb01.length + " floats is not " + width + "x" + height + "x3");
        }
        BufferedImage img = new BufferedImage(width, height, BufferedImage.TYPE_INT_RGB);
        int[] row = new int[width];
        for (int y = 0; y < height; y++) {
            int base = y * width * 3;
            for (int x = 0; x < width; x++) {
                int i = base + x * 3;
                row[x] = quantize(hwcRgb01[i]) << 16 | quantize(hwcRgb01[i + 1]) << 8 | quantize(hwcRgb01[i + 2]);
            }
            img.setRGB(0, y, width, 1, row, 0, width);
        }
        return img;
    }

    public static byte[] encode(float[] hwcRgb01, int width, int height) {
        return encode(hwcRgb01, width, height, Map.of());
    }

    /**
     * Encodes with optional PNG text chunks ({@code tEXt}, keyword → value; e.g. A1111's "parameters"). The hook for
     * generation metadata: an empty map writes none.
     */
    public static byte[] encode(float[] hwcRgb01, int width, int height, Map<String, String> text) {
        return write(toImage(hwcRgb01, width, height), text);
    }

    /** Writes a BufferedImage as PNG with optional text chunks. */
    public static byte[] write(BufferedImage img, Map<String, String> text) {
        try {
            ByteArrayOutputStream bos = new ByteArrayOutputStream();
            if (text == null || text.isEmpty()) {
                if (!ImageIO.write(img, "png", bos)) {
                    throw new IllegalStateException("no PNG writer available");
                }
                return bos.toByteArray();
            }
            Iterator<ImageWriter> it = ImageIO.getImageWritersByFormatName("png");
            if (!it.hasNext()) {
                throw new IllegalStateException("no PNG writer available");
            }
            ImageWriter writer = it.next();
            try (ImageOutputStream out = ImageIO.createImageOutputStream(bos)) {
                writer.setOutput(out);
                ImageWriteParam param = writer.getDefaultWriteParam();
                IIOMetadata meta = writer.getDefaultImageMetadata(ImageTypeSpecifier.createFromRenderedImage(img), param);
                addText(meta, text);
                writer.write(null, new IIOImage(img, null, meta), param);
            } finally {
                writer.dispose();
            }
            return bos.toByteArray();
        } catch (IOException e) {
            throw new UncheckedIOException("PNG encoding failed", e);
        }
    }

    private static void addText(IIOMetadata meta, Map<String, String> text) throws IIOInvalidTreeException {
        String fmt = "javax_imageio_png_1.0";
        IIOMetadataNode root = new IIOMetadataNode(fmt);
        IIOMetadataNode chunk = new IIOMetadataNode("tEXt");
        for (Map.Entry<String, String> e : text.entrySet()) {
            IIOMetadataNode entry = new IIOMetadataNode("tEXtEntry");
            entry.setAttribute("keyword", e.getKey());
            entry.setAttribute("value", e.getValue());
            chunk.appendChild(entry);
        }
        root.appendChild(chunk);
        meta.mergeTree(fmt, root);
    }
}
