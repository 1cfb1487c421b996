package dev.sdserve.image;

import org.junit.jupiter.api.Test;

import java.io.IOException;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A1111's inpainting image operations against Pillow's outputs ({@code make_fixtures.py}, Pillow 9.4.0), and the
 * mask operations' own properties.
 */
class InpaintImagesTest {
    static Image8 mask(int w, int h) {
        Image8 m = Image8.blank(w, h, 1);
        for (int y = 0; y < h; y++) {
            for (int x = 0; x < w; x++) {
                boolean inside = (10 <= x && x < 30 && 8 <= y && y < 25) || (x - 36) * (x - 36) + (y - 30) * (y - 30) <= 64;
                m.set(x, y, 0, inside ? 255 : (x * 3) % 50);
            }
        }
        return m;
    }

    private static void assertSameBytes(Image8 want, Image8 got, String what) {
        assertEquals(want.width(), got.width(), what);
        assertEquals(want.height(), got.height(), what);
        int diff = 0, max = 0;
        for (int i = 0; i < want.data().length; i++) {
            int d = Math.abs((want.data()[i] & 0xff) - (got.data()[i] & 0xff));
            diff += d != 0 ? 1 : 0;
            max = Math.max(max, d);
        }
        assertEquals(0, diff, what + ": " + diff + " bytes differ from Pillow's, by up to " + max);
    }

    @Test
    void maskFixtureIsTheFormula() throws IOException {
        assertSameBytes(ImageResizeTest.fixture("mask_48x40.png"), mask(48, 40), "mask");
    }

    @Test
    void fillMatchesA1111() throws IOException {
        Image8 src = ImageResizeTest.source(48, 40);
        assertSameBytes(ImageResizeTest.fixture("fill_48x40.png"), PilCompose.fill(src, mask(48, 40)), "masking.fill");
    }

    @Test
    void overlayMatchesA1111() throws IOException {
        Image8 src = ImageResizeTest.source(48, 40);
        Image8 gen = ImageResizeTest.fixture("generated_48x40.png");
        Image8 got = PilCompose.overlay(gen, src, PilCompose.overlayMask(mask(48, 40)));
        assertSameBytes(ImageResizeTest.fixture("overlay_48x40.png"), got, "apply_overlay");
        // outside the mask (0) the original comes back exactly, where the doubled mask is 255 the generated image
        Image8 m = mask(48, 40);
        for (int y = 0; y < 40; y++) {
            for (int x = 0; x < 48; x++) {
                for (int c = 0; c < 3; c++) {
                    if (m.get(x, y, 0) == 0) {
                        assertEquals(src.get(x, y, c), got.get(x, y, c));
                    } else if (m.get(x, y, 0) >= 128) {
                        assertEquals(gen.get(x, y, c), got.get(x, y, c));
                    }
                }
            }
        }
    }

    @Test
    void binaryMaskFromAlphaOrGrey() {
        Image8 rgba = Image8.blank(3, 1, 4);
        int[] alpha = {0, 128, 129};
        for (int x = 0; x < 3; x++) {
            rgba.set(x, 0, 0, 10);
            rgba.set(x, 0, 3, alpha[x]);
        }
        assertArrayEquals(new byte[]{0, 0, (byte) 255}, Masks.fromImage(rgba).data(), "alpha > 128 repaints");
        Image8 rgb = Image8.blank(2, 1, 3);
        java.util.Arrays.fill(rgb.data(), (byte) 200);
        assertEquals(200, Masks.fromImage(rgb).get(0, 0, 0));
        assertEquals(55, Masks.invert(Masks.fromImage(rgb)).get(1, 0, 0));
    }

    @Test
    void blurIsA1111sSeparableGaussian() {
        // a vertical edge (0 | 255) blurred with σ = 4: a monotone ramp, antisymmetric about the edge, flat far away
        Image8 m = Image8.blank(40, 9, 1);
        for (int y = 0; y < 9; y++) {
            for (int x = 20; x < 40; x++) {
                m.set(x, y, 0, 255);
            }
        }
        Image8 b = Masks.blur(m, 4);
        double[] k = Masks.gaussianKernel(2 * (int) (2.5 * 4 + 0.5) + 1, 4); // 21 taps
        assertEquals(21, k.length);
        for (int x = 1; x < 40; x++) {
            assertTrue(b.get(x, 4, 0) >= b.get(x - 1, 4, 0), "monotone at " + x);
        }
        for (int x = 10; x < 20; x++) {
            assertEquals(255, b.get(x, 4, 0) + b.get(39 - x, 4, 0), 1, "antisymmetric at " + x);
        }
        double left = 0;
        for (int j = 1; j <= 10; j++) {
            left += k[10 + j];
        }
        assertEquals(Math.round(255 * left), b.get(19, 4, 0), 1, "the kernel's tail past the edge");
        assertEquals(0, b.get(5, 4, 0));
        assertEquals(255, b.get(35, 0, 0));
        assertEquals(3, Masks.reflect101(-3, 10));
        assertEquals(7, Masks.reflect101(11, 10));
    }

    @Test
    void latentGridIsNearestNeighbourOfTheBinarisedMask() {
        float[] m = new float[16 * 8];
        for (int y = 0; y < 8; y++) {
            for (int x = 0; x < 16; x++) {
                m[y * 16 + x] = x >= 4 && y >= 4 ? 0.6f : 0.4f;
            }
        }
        float[] lat = dev.sdserve.engine.InpaintingInputs.latentMask(dev.sdserve.engine.InpaintingInputs.binarize(m), 16, 8, 2, 1);
        assertArrayEquals(new float[]{0f, 0f}, lat); // row 0 of the image decides: 0.4 < 0.5
        float[] lat2 = dev.sdserve.engine.InpaintingInputs.latentMask(dev.sdserve.engine.InpaintingInputs.binarize(m), 16, 8, 4, 2);
        assertArrayEquals(new float[]{0, 0, 0, 0, 0, 1, 1, 1}, lat2);
        float[] rgb = {0.2f, 0.4f, 0.6f, 0.2f, 0.4f, 0.6f};
        assertArrayEquals(new float[]{0.2f, 0.4f, 0.6f, 0.5f, 0.5f, 0.5f}, dev.sdserve.engine.InpaintingInputs.maskedImage(rgb, new float[]{0f, 1f}));
    }
}
