package dev.sdserve.image;

import org.junit.jupiter.api.Test;

import javax.imageio.ImageIO;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.io.InputStream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;

/**
 * Lanczos resampling and A1111's resize modes against Pillow's own outputs (fixtures made by
 * {@code make_fixtures.py} beside them with Pillow 9.4.0): every byte equal.
 */
class ImageResizeTest {

    /** The fixture script's source image: integer formulas, so both sides make the same pixels. */
    static Image8 source(int w, int h) {
        Image8 im = Image8.blank(w, h, 3);
        for (int y = 0; y < h; y++) {
            for (int x = 0; x < w; x++) {
                im.set(x, y, 0, (x * 37 + y * 11) % 256);
                im.set(x, y, 1, (x * x + 3 * y * y) % 256);
                im.set(x, y, 2, (x * y * 5 + 40) % 256);
            }
        }
        return im;
    }

    static Image8 fixture(String name) throws IOException {
        try (InputStream in = ImageResizeTest.class.getResourceAsStream(name)) {
            assertNotNull(in, name);
            BufferedImage b = ImageIO.read(in);
            boolean grey = b.getType() == BufferedImage.TYPE_BYTE_GRAY;
            Image8 im = Image8.blank(b.getWidth(), b.getHeight(), grey ? 1 : 3);
            for (int y = 0; y < b.getHeight(); y++) {
                for (int x = 0; x < b.getWidth(); x++) {
                    if (grey) {
                        im.set(x, y, 0, b.getRaster().getSample(x, y, 0));
                    } else {
                        int rgb = b.getRGB(x, y);
                        im.set(x, y, 0, (rgb >> 16) & 0xff);
                        im.set(x, y, 1, (rgb >> 8) & 0xff);
                        im.set(x, y, 2, rgb & 0xff);
                    }
                }
            }
            return im;
        }
    }

    private static void assertSame(Image8 want, Image8 got, String what) {
        assertEquals(want.width(), got.width(), what + " width");
        assertEquals(want.height(), got.height(), what + " height");
        int diff = 0, maxDiff = 0;
        for (int i = 0; i < want.data().length; i++) {
            int d = Math.abs((want.data()[i] & 0xff) - (got.data()[i] & 0xff));
            if (d != 0) {
                diff++;
                maxDiff = Math.max(maxDiff, d);
            }
        }
        assertEquals(0, diff, what + ": " + diff + " bytes differ from Pillow's, by up to " + maxDiff);
    }

    @Test
    void lanczosMatchesPillowUpAndDown() throws IOException {
        Image8 src = source(37, 23);
        assertSame(fixture("lanczos_37x23_to_64x48.png"), PilResample.lanczos(src, 64, 48), "up");
        assertSame(fixture("lanczos_37x23_to_16x11.png"), PilResample.lanczos(src, 16, 11), "down");
    }

    @Test
    void greyConversionAndGreyResizeMatchPillow() throws IOException {
        Image8 grey = source(37, 23).toGrey();
        assertSame(fixture("grey_37x23.png"), grey, "convert('L')");
        assertSame(fixture("lanczos_grey_37x23_to_24x40.png"), PilResample.lanczos(grey, 24, 40), "grey resize");
    }

    @Test
    void a1111ResizeModesMatch() throws IOException {
        Image8 src = source(37, 23);
        for (int mode = 0; mode <= 2; mode++) {
            assertSame(fixture("a1111_mode" + mode + "_32x32.png"), Resize.apply(mode, src, 32, 32), "mode " + mode + " 32x32");
            assertSame(fixture("a1111_mode" + mode + "_24x40.png"), Resize.apply(mode, src, 24, 40), "mode " + mode + " 24x40");
        }
    }
}
