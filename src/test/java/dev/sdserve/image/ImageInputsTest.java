package dev.sdserve.image;

import dev.sdserve.job.ImageOptions;
import dev.sdserve.job.PreparedImage;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class ImageInputsTest {
    /** 48×40 picture, mask: a 16×16 square at (16, 8) to repaint. */
    static Image8 square() {
        Image8 m = Image8.blank(48, 40, 1);
        for (int y = 8; y < 24; y++) {
            for (int x = 16; x < 32; x++) {
                m.set(x, y, 0, 255);
            }
        }
        return m;
    }

    @Test
    void img2imgIsTheResizedImage() {
        Image8 src = ImageResizeTest.source(37, 23);
        PreparedImage p = ImageInputs.prepare(src, null, 32, 24, 8, ImageOptions.DEFAULTS);
        assertArrayEquals(PilResample.lanczos(src, 32, 24).toFloats(), p.pixels());
        assertNull(p.mask());
        assertEquals(32, ImageInputs.defaultSize(37, 8));
        assertEquals(16, ImageInputs.defaultSize(23, 8));
        float[] decoded = new float[32 * 24 * 3];
        assertEquals(decoded, ImageInputs.finish(p, true, decoded), "img2img keeps the decoded picture");
    }

    @Test
    void inpaintingMaskLatentAndOverlay() {
        Image8 src = ImageResizeTest.source(48, 40);
        ImageOptions noBlur = new ImageOptions(0, 0, false, ImageOptions.ORIGINAL, 0xffffff);
        PreparedImage p = ImageInputs.prepare(src, square(), 48, 40, 8, noBlur);
        assertArrayEquals(src.toFloats(), p.pixels(), "original: nothing filled");
        float[] lat = p.maskLatent();
        assertEquals(6 * 5, lat.length);
        for (int cy = 0; cy < 5; cy++) {
            for (int cx = 0; cx < 6; cx++) {
                boolean in = cx >= 2 && cx < 4 && cy >= 1 && cy < 3;
                assertEquals(in ? 1f : 0f, lat[cy * 6 + cx], "cell " + cx + "," + cy);
            }
        }
        // masked pixels are 0.5 (0 in the VAE's range) exactly where the mask is
        assertEquals(0.5f, p.maskedPixels()[(10 * 48 + 20) * 3]);
        assertEquals(p.pixels()[(2 * 48 + 2) * 3], p.maskedPixels()[(2 * 48 + 2) * 3]);
        // finishing: the original outside the mask, the generated picture inside
        float[] gen = new float[48 * 40 * 3];
        java.util.Arrays.fill(gen, 0.2f);
        float[] out = ImageInputs.finish(p, true, gen);
        assertEquals(src.get(0, 0, 1) / 255f, out[1], 1e-6);
        assertEquals(Math.round(0.2f * 255) / 255f, out[(10 * 48 + 20) * 3], 1e-6);
    }

    @Test
    void invertFillAndBlurChangeWhatTheyShould() {
        Image8 src = ImageResizeTest.source(48, 40);
        PreparedImage inv = ImageInputs.prepare(src, square(), 48, 40, 8, new ImageOptions(0, 0, true, ImageOptions.ORIGINAL, 0));
        assertEquals(1f, inv.maskLatent()[0]);
        assertEquals(0f, inv.maskLatent()[6 + 2]);
        PreparedImage filled = ImageInputs.prepare(src, square(), 48, 40, 8, new ImageOptions(0, 0, false, ImageOptions.FILL, 0));
        int inside = (12 * 48 + 24) * 3, outside = (30 * 48 + 5) * 3;
        assertNotEquals(src.toFloats()[inside], filled.pixels()[inside], "the square is filled from its surroundings");
        assertEquals(src.toFloats()[outside], filled.pixels()[outside], "the rest is kept");
        PreparedImage blurred = ImageInputs.prepare(src, square(), 48, 40, 8, ImageOptions.DEFAULTS);
        int edge = 15; // one pixel left of the square: the blurred mask is below 0.5 there, but the overlay blends
        int m = blurred.overlayMask()[16 * 48 + edge] & 0xff;
        assertTrue(m > 0 && m < 255, "soft overlay edge " + m);
        assertEquals(0f, blurred.mask()[16 * 48 + edge]);
    }

    @Test
    void maskOfAnotherSizeIsRefused() {
        var e = assertThrows(dev.sdserve.job.ServeException.class, () -> ImageInputs.prepare(ImageResizeTest.source(48, 40),
                Image8.blank(40, 40, 1), 48, 40, 8, ImageOptions.DEFAULTS));
        assertTrue(e.getMessage().contains("40x40") && e.getMessage().contains("48x40"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> new ImageOptions(3, 4, false, 0, 0));
        assertThrows(IllegalArgumentException.class, () -> new ImageOptions(0, 4, false, 4, 0));
    }
}
