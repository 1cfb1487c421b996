package dev.sdserve.image;

import org.junit.jupiter.api.Test;
import org.w3c.dom.Node;

import javax.imageio.ImageIO;
import javax.imageio.ImageReader;
import javax.imageio.metadata.IIOMetadata;
import javax.imageio.stream.ImageInputStream;
import java.awt.image.BufferedImage;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Map;
import java.util.zip.CRC32;

import static org.junit.jupiter.api.Assertions.*;

class PngTextTest {
    static byte[] samplePng() throws IOException {
        BufferedImage img = new BufferedImage(7, 5, BufferedImage.TYPE_INT_RGB);
        for (int y = 0; y < 5; y++) {
            for (int x = 0; x < 7; x++) {
                img.setRGB(x, y, (x * 36) << 16 | (y * 60) << 8 | ((x + y) * 20));
            }
        }
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        assertTrue(ImageIO.write(img, "png", out));
        return out.toByteArray();
    }

    /** Text chunks as javax.imageio's PNG reader sees them (an independent reader): keyword → text. */
    static Map<String, String> imageIoText(byte[] png) throws IOException {
        Map<String, String> m = new HashMap<>();
        try (ImageInputStream in = ImageIO.createImageInputStream(new ByteArrayInputStream(png))) {
            ImageReader r = ImageIO.getImageReadersByFormatName("png").next();
            r.setInput(in);
            IIOMetadata md = r.getImageMetadata(0);
            Node root = md.getAsTree("javax_imageio_png_1.0");
            for (Node n = root.getFirstChild(); n != null; n = n.getNextSibling()) {
                if (n.getNodeName().equals("tEXt") || n.getNodeName().equals("iTXt")) {
                    for (Node e = n.getFirstChild(); e != null; e = e.getNextSibling()) {
                        String key = e.getAttributes().getNamedItem("keyword").getNodeValue();
                        String val = e.getAttributes().getNamedItem(n.getNodeName().equals("tEXt") ? "value" : "text").getNodeValue();
                        m.put(key, val);
                    }
                }
            }
            r.dispose();
        }
        return m;
    }

    private static void assertSamePixels(byte[] a, byte[] b) throws IOException {
        BufferedImage x = ImageIO.read(new ByteArrayInputStream(a));
        BufferedImage y = ImageIO.read(new ByteArrayInputStream(b));
        assertEquals(x.getWidth(), y.getWidth());
        assertEquals(x.getHeight(), y.getHeight());
        for (int j = 0; j < x.getHeight(); j++) {
            for (int i = 0; i < x.getWidth(); i++) {
                assertEquals(x.getRGB(i, j), y.getRGB(i, j));
            }
        }
    }

    /** Walks the chunks checking every CRC: a hand-rolled reader independent of PngText. */
    private static void assertCrcsValid(byte[] png) {
        int pos = 8;
        while (pos < png.length) {
            int len = ((png[pos] & 0xff) << 24) | ((png[pos + 1] & 0xff) << 16) | ((png[pos + 2] & 0xff) << 8) | (png[pos + 3] & 0xff);
            CRC32 c = new CRC32();
            c.update(png, pos + 4, 4 + len);
            int p = pos + 8 + len;
            long stored = ((png[p] & 0xffL) << 24) | ((png[p + 1] & 0xff) << 16) | ((png[p + 2] & 0xff) << 8) | (png[p + 3] & 0xff);
            assertEquals(c.getValue(), stored, "CRC of chunk at " + pos);
            pos = p + 4;
        }
        assertEquals(png.length, pos);
    }

    private static int indexOf(byte[] hay, byte[] needle) {
        outer:
        for (int i = 0; i + needle.length <= hay.length; i++) {
            for (int j = 0; j < needle.length; j++) {
                if (hay[i + j] != needle[j]) {
                    continue outer;
                }
            }
            return i;
        }
        return -1;
    }

    @Test
    void latin1TextBecomesTextChunkWithTheReferenceBytes() throws IOException {
        byte[] png = samplePng();
        byte[] out = PngText.withText(png, "parameters", "hello");
        // Reference bytes: length 16, "tEXt", "parameters\0hello", CRC computed by Python's zlib.crc32 = 0x2893c3c2.
        byte[] expected = new byte[4 + 4 + 16 + 4];
        expected[3] = 16;
        System.arraycopy("tEXtparameters\0hello".getBytes(StandardCharsets.ISO_8859_1), 0, expected, 4, 20);
        expected[24] = 0x28;
        expected[25] = (byte) 0x93;
        expected[26] = (byte) 0xc3;
        expected[27] = (byte) 0xc2;
        int at = indexOf(out, expected);
        assertEquals(8 + 25, at, "chunk right after IHDR (8-byte signature + 25-byte IHDR)");
        assertEquals(png.length + expected.length, out.length);
        assertCrcsValid(out);
        assertSamePixels(png, out);
        assertEquals("hello", imageIoText(out).get("parameters"));
    }

    @Test
    void nonLatin1TextBecomesUncompressedItxt() throws IOException {
        byte[] out = PngText.withText(samplePng(), "parameters", "猫 café");
        byte[] body = "iTXtparameters\0\0\0\0\0".getBytes(StandardCharsets.ISO_8859_1);
        byte[] utf8 = "猫 café".getBytes(StandardCharsets.UTF_8);
        byte[] chunk = Arrays.copyOf(body, body.length + utf8.length + 4);
        System.arraycopy(utf8, 0, chunk, body.length, utf8.length);
        // CRC from Python's zlib.crc32 over type + data: 0x5bff6dba.
        int c = body.length + utf8.length;
        chunk[c] = 0x5b;
        chunk[c + 1] = (byte) 0xff;
        chunk[c + 2] = 0x6d;
        chunk[c + 3] = (byte) 0xba;
        assertTrue(indexOf(out, chunk) > 0, "iTXt chunk with the reference CRC present");
        assertCrcsValid(out);
        assertEquals("猫 café", imageIoText(out).get("parameters"));
        assertEquals("猫 café", PngText.get(out, "parameters").orElseThrow());
    }

    @Test
    void multiLineA1111TextRoundTripsAndReplacesAnOldChunk() throws IOException {
        String t1 = "a fox\nNegative prompt: blurry\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 1, Size: 7x5";
        String t2 = t1.replace("Seed: 1", "Seed: 2");
        byte[] once = PngText.withText(PngText.withText(samplePng(), "Software", "test"), "parameters", t1);
        byte[] twice = PngText.withText(once, "parameters", t2);
        Map<String, String> io = imageIoText(twice);
        assertEquals(t2, io.get("parameters"));
        assertEquals("test", io.get("Software"));
        assertEquals(2, PngText.read(twice).size(), "old parameters chunk replaced, not duplicated");
        assertEquals(once.length, twice.length);
        assertCrcsValid(twice);
    }

    @Test
    void rejectsNonPngAndTruncatedInput() throws IOException {
        byte[] png = samplePng();
        assertThrows(IllegalArgumentException.class, () -> PngText.withText("GIF89a....................".getBytes(), "k", "v"));
        assertThrows(IllegalArgumentException.class, () -> PngText.withText(Arrays.copyOf(png, png.length - 20), "k", "v"));
        assertThrows(IllegalArgumentException.class, () -> PngText.withText(png, "", "v"));
        assertThrows(IllegalArgumentException.class, () -> PngText.withText(png, " lead", "v"));
    }
}
