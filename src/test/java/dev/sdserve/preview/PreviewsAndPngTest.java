package dev.sdserve.preview;

import dev.sdserve.engine.LatentShape;
import org.junit.jupiter.api.Test;

import javax.imageio.ImageIO;
import java.awt.image.BufferedImage;
import java.io.ByteArrayInputStream;
import java.util.Iterator;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

class PreviewsAndPngTest {

    @Test
    void quantisationMatchesDiffusers() {
        assertEquals(0, Png.quantize(0f));
        assertEquals(255, Png.quantize(1f));
        assertEquals(0, Png.quantize(-0.3f));
        assertEquals(255, Png.quantize(1.7f));
        assertEquals(0, Png.quantize(Float.NaN));
        assertEquals(128, Png.quantize(0.5f));   // 127.5 → 128 (half to even)
        assertEquals(51, Png.quantize(0.2f));
        assertEquals(1, Png.quantize(0.002f));   // 0.51 → 1
        // 0.5/255 → 0.5 → 0 under half-to-even (Math.round would give 1)
        float x = 0.5f / 255f;
        if (x * 255f == 0.5f) {
            assertEquals(0, Png.quantize(x));
        }
    }

    @Test
    void pngRoundTripsPixels() throws Exception {
        int w = 3, h = 2;
        float[] img = new float[w * h * 3];
        for (int i = 0; i < img.length; i++) {
            img[i] = i / (float) (img.length - 1);
        }
        BufferedImage back = ImageIO.read(new ByteArrayInputStream(Png.encode(img, w, h)));
        assertEquals(w, back.getWidth());
        assertEquals(h, back.getHeight());
        for (int y = 0; y < h; y++) {
            for (int x = 0; x < w; x++) {
                int rgb = back.getRGB(x, y);
                int i = (y * w + x) * 3;
                assertEquals(Png.quantize(img[i]), rgb >> 16 & 0xFF);
                assertEquals(Png.quantize(img[i + 1]), rgb >> 8 & 0xFF);
                assertEquals(Png.quantize(img[i + 2]), rgb & 0xFF);
            }
        }
        assertThrows(IllegalArgumentException.class, () -> Png.encode(new float[5], 2, 2));
    }

    @Test
    void pngTextChunkHook() throws Exception {
        byte[] png = Png.encode(new float[4 * 4 * 3], 4, 4, Map.of("parameters", "a cat, Steps: 20"));
        String raw = new String(png, java.nio.charset.StandardCharsets.ISO_8859_1);
        assertTrue(raw.contains("tEXtparameters\0a cat, Steps: 20"), "tEXt chunk present");
        assertNotNull(ImageIO.read(new ByteArrayInputStream(png)));
    }

    @Test
    void latentProjectionUsesThePublishedFactors() {
        // 1x1 latent with channels (1, 0, 0, 0) → (0.298, 0.207, 0.208) mapped to [0, 1]
        LatentShape one = new LatentShape(4, 1, 1);
        float[] rgb = Previews.latentToRgb(new float[]{1, 0, 0, 0}, one);
        assertArrayEquals(new float[]{(0.298f + 1) / 2, (0.207f + 1) / 2, (0.208f + 1) / 2}, rgb, 1e-6f);
        // channels (0.5, -1, 2, 1): hand-computed dot products
        float[] z = {0.5f, -1f, 2f, 1f};
        float r = 0.5f * 0.298f - 0.187f + 2 * -0.158f - 0.184f;
        float g = 0.5f * 0.207f - 0.286f + 2 * 0.189f - 0.271f;
        float b = 0.5f * 0.208f - 0.173f + 2 * 0.264f - 0.473f;
        assertArrayEquals(new float[]{(r + 1) / 2, (g + 1) / 2, (b + 1) / 2}, Previews.latentToRgb(z, one), 1e-6f);
        // clamped
        assertArrayEquals(new float[]{1, 1, 1}, Previews.latentToRgb(new float[]{10, 10, 10, 0}, one), 0f);
    }

    @Test
    void previewUsesTheGivenProjection() throws Exception {
        LatentShape s = new LatentShape(4, 2, 2);
        float[] z = new float[s.size()];
        java.util.Arrays.fill(z, 0, 4, 1f); // channel 0 = 1 everywhere
        float[][] w = {{0f, 0.5f, 0f}, {0f, 0f, 0f}, {0f, 0f, 0f}, {0f, 0f, 0f}};
        var red = new dev.sdserve.engine.projection.LatentProjection(w, new float[]{1f, 0f, 0.25f}, "fitted");
        BufferedImage img = ImageIO.read(new ByteArrayInputStream(Previews.encode(z, s, red, 16, 16, 16, "png")));
        int rgb = img.getRGB(8, 8);
        assertEquals(255, rgb >> 16 & 0xFF);
        assertEquals(128, rgb >> 8 & 0xFF);
        assertEquals(64, rgb & 0xFF);
    }

    @Test
    void previewIsScaledToMaxEdgeKeepingAspect() throws Exception {
        LatentShape s = new LatentShape(4, 8, 12); // image 96 x 64
        float[] z = new float[s.size()];
        for (int i = 0; i < z.length; i++) {
            z[i] = (float) Math.sin(i);
        }
        BufferedImage png = ImageIO.read(new ByteArrayInputStream(Previews.encode(z, s, 96, 64, 48, "png")));
        assertEquals(48, png.getWidth());
        assertEquals(32, png.getHeight());
        BufferedImage jpg = ImageIO.read(new ByteArrayInputStream(Previews.encode(z, s, 96, 64, 48, "jpeg")));
        assertEquals(48, jpg.getWidth());
        // never upscaled beyond the image itself
        BufferedImage big = ImageIO.read(new ByteArrayInputStream(Previews.encode(z, s, 96, 64, 1024, "png")));
        assertEquals(96, big.getWidth());
        assertThrows(IllegalArgumentException.class, () -> Previews.encode(z, s, 96, 64, 48, "gif"));
    }

    @Test
    void bilinearResizeOfAConstantAndARamp() {
        float[] c = new float[4 * 4 * 3];
        java.util.Arrays.fill(c, 0.25f);
        for (float v : Previews.resize(c, 4, 4, 9, 7)) {
            assertEquals(0.25f, v, 1e-6f);
        }
        // 2 pixels 0 and 1 → 4 pixels: centres at 0.25, 0.75, 1.25, 1.75 of the source grid (−0.5 offset, clamped)
        float[] ramp = {0, 0, 0, 1, 1, 1};
        float[] out = Previews.resize(ramp, 2, 1, 4, 1);
        assertEquals(0f, out[0], 1e-6f);
        assertEquals(0.25f, out[3], 1e-6f);
        assertEquals(0.75f, out[6], 1e-6f);
        assertEquals(1f, out[9], 1e-6f);
    }
}
