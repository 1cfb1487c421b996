package dev.sdserve.image;

import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.io.InputStream;
import java.util.Base64;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** PNG, JPEG and WebP bytes (written by Pillow, {@code make_fixtures.py}) decode to the pixels that were saved. */
class ImageDecodingTest {
    static byte[] bytes(String name) throws IOException {
        try (InputStream in = ImageDecodingTest.class.getResourceAsStream(name)) {
            return in.readAllBytes();
        }
    }

    static int maxDiff(Image8 a, Image8 b) {
        assertEquals(a.width(), b.width());
        assertEquals(a.height(), b.height());
        assertEquals(a.bands(), b.bands());
        int m = 0;
        for (int i = 0; i < a.data().length; i++) {
            m = Math.max(m, Math.abs((a.data()[i] & 0xff) - (b.data()[i] & 0xff)));
        }
        return m;
    }

    @Test
    void losslessFormatsDecodeExactly() throws IOException {
        Image8 src = ImageResizeTest.source(37, 23);
        assertEquals(0, maxDiff(src, ImageDecoding.decode(bytes("src.png"), 1 << 20)), "png");
        assertEquals(0, maxDiff(src, ImageDecoding.decode(bytes("src_lossless.webp"), 1 << 20)), "lossless webp");
        Image8 grey = ImageDecoding.decode(bytes("src_grey.png"), 1 << 20);
        assertEquals(1, grey.bands());
        assertEquals(0, maxDiff(src.toGrey(), grey), "grey png keeps its values");
    }

    @Test
    void alphaIsKept() throws IOException {
        Image8 mask = InpaintImagesTest.mask(37, 23);
        for (String f : new String[]{"src_rgba.png", "src_rgba_lossless.webp"}) {
            Image8 im = ImageDecoding.decode(bytes(f), 1 << 20);
            assertEquals(4, im.bands(), f);
            for (int y = 0; y < 23; y++) {
                for (int x = 0; x < 37; x++) {
                    assertEquals(mask.get(x, y, 0), im.get(x, y, 3), f + " alpha at " + x + "," + y);
                }
            }
            assertTrue(im.hasTransparency());
            // A1111 flattens onto white: a transparent pixel becomes white, an opaque one keeps its colour
            Image8 flat = im.toRgb(0xffffff);
            assertEquals(3, flat.bands());
        }
    }

    @Test
    void lossyFormatsDecodeAsPillowDoes() throws IOException {
        // JPEG decodes exactly as libjpeg-turbo; lossy WebP within a few levels of libwebp (TwelveMonkeys upsamples
        // the chroma more simply than libwebp's "fancy" upsampling: on a smooth picture 3.6 levels on average)
        String[][] cases = {{"src_q95.jpg", "src_q95_decoded.png", "0.01"}, {"smooth_lossy.webp", "smooth_lossy_webp_decoded.png", "5"}};
        for (String[] c : cases) {
            Image8 im = ImageDecoding.decode(bytes(c[0]), 1 << 20);
            Image8 pil = ImageResizeTest.fixture(c[1]);
            double mean = 0;
            for (int i = 0; i < im.data().length; i++) {
                mean += Math.abs((im.data()[i] & 0xff) - (pil.data()[i] & 0xff));
            }
            mean /= im.data().length;
            // decoders may round the inverse transform and the colour conversion differently
            System.out.printf("%s: mean |ours − Pillow's| = %.3f, max %d%n", c[0], mean, maxDiff(im, pil));
            assertTrue(mean < Double.parseDouble(c[2]), c[0] + ": mean absolute difference from Pillow's decoding " + mean);
        }
    }

    @Test
    void lossyWebpOfABusyPictureDecodes() throws IOException {
        Image8 im = ImageDecoding.decode(bytes("src_lossy.webp"), 1 << 20);
        assertEquals(37, im.width());
        assertEquals(3, im.bands());
    }

    @Test
    void badInputIsRefusedWithAClearMessage() throws IOException {
        var e = assertThrows(ImageDecoding.BadImageException.class, () -> ImageDecoding.decode("hello".getBytes(), 100));
        assertTrue(e.getMessage().contains("not an image"), e.getMessage());
        byte[] png = bytes("src.png");
        var big = assertThrows(ImageDecoding.BadImageException.class, () -> ImageDecoding.decode(png, 37 * 23 - 1));
        assertTrue(big.getMessage().contains("37x23"), big.getMessage());
        byte[] cut = java.util.Arrays.copyOf(png, 60);
        var broken = assertThrows(ImageDecoding.BadImageException.class, () -> ImageDecoding.decode(cut, 1 << 20));
        assertTrue(broken.getMessage().contains("cannot be decoded"), broken.getMessage());
        assertThrows(ImageDecoding.BadImageException.class, () -> ImageDecoding.decode(new byte[0], 10));
    }

    @Test
    void base64AndDataUrls() throws IOException {
        byte[] png = bytes("src.png");
        String b64 = Base64.getEncoder().encodeToString(png);
        assertEquals(0, maxDiff(ImageDecoding.decode(ImageDecoding.base64(b64), 1 << 20),
                ImageDecoding.decode(ImageDecoding.base64("data:image/png;base64," + b64), 1 << 20)));
        assertThrows(ImageDecoding.BadImageException.class, () -> ImageDecoding.base64("!!!not base64"));
        assertThrows(ImageDecoding.BadImageException.class, () -> ImageDecoding.base64(""));
    }
}
