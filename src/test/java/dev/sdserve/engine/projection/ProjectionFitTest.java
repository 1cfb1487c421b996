package dev.sdserve.engine.projection;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.sdserve.engine.LatentShape;
import org.junit.jupiter.api.Test;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Random;
import java.util.concurrent.atomic.AtomicInteger;

import static org.junit.jupiter.api.Assertions.*;

class ProjectionFitTest {
    static final float[][] W = {{0.10f, -0.05f, 0.02f}, {0.03f, 0.08f, -0.04f}, {-0.06f, 0.01f, 0.09f}, {0.02f, 0.04f, 0.05f}};
    static final float[] B = {0.45f, 0.5f, 0.55f};

    /** A "VAE" that is exactly affine per latent cell, each cell an s×s block of pixels with a zero-mean texture. */
    static float[] decode(float[] z, LatentShape shape, int s) {
        int w = shape.width() * s, h = shape.height() * s, plane = shape.height() * shape.width();
        float[] img = new float[w * h * 3];
        for (int y = 0; y < h; y++) {
            for (int x = 0; x < w; x++) {
                int p = (y / s) * shape.width() + x / s;
                float tex = ((x + y) % 2 == 0 ? 0.01f : -0.01f); // averages out over a cell
                for (int r = 0; r < 3; r++) {
                    float v = B[r] + tex;
                    for (int c = 0; c < 4; c++) {
                        v += z[c * plane + p] * W[c][r];
                    }
                    img[(y * w + x) * 3 + r] = v;
                }
            }
        }
        return img;
    }

    @Test
    void recoversAnAffineMapFromDecodedImages() {
        LatentShape shape = new LatentShape(4, 6, 5);
        Random rnd = new Random(1);
        ProjectionFit fit = new ProjectionFit(4);
        for (int i = 0; i < 3; i++) {
            float[] z = new float[shape.size()];
            for (int k = 0; k < z.length; k++) {
                z[k] = (float) rnd.nextGaussian();
            }
            fit.add(z, shape, decode(z, shape, 4), 20, 24);
        }
        assertEquals(90, fit.samples());
        LatentProjection p = fit.solve();
        assertEquals("fitted", p.source());
        for (int c = 0; c < 4; c++) {
            assertArrayEquals(W[c], p.weights()[c], 1e-5f, "channel " + c);
        }
        assertArrayEquals(B, p.bias(), 1e-5f);
        assertTrue(fit.meanAbs255(p) < 1e-3, "residual " + fit.meanAbs255(p));
        assertTrue(fit.meanAbs255(LatentProjection.SD1_CHEAP) > 10, "the SD 1.x factors are another map");
    }

    @Test
    void latentPreviewFormatIsLittleEndianFloat16() {
        byte[] b = LatentProjection.float16(new float[]{1f, -2f, 0.5f, 65504f, 1e6f, 0.1f});
        int[] want = {0x3C00, 0xC000, 0x3800, 0x7BFF, 0x7C00, 0x2E66}; // IEEE binary16, round to nearest even
        assertEquals(12, b.length);
        for (int i = 0; i < want.length; i++) {
            assertEquals(want[i], (b[2 * i] & 0xFF) | (b[2 * i + 1] & 0xFF) << 8, "value " + i);
        }
    }

    @Test
    void rejectsMismatchedInputs() {
        ProjectionFit fit = new ProjectionFit(4);
        LatentShape shape = new LatentShape(4, 2, 2);
        assertThrows(IllegalArgumentException.class, () -> fit.add(new float[16], shape, new float[3 * 15 * 16], 15, 16));
        assertThrows(IllegalArgumentException.class, () -> fit.add(new float[12], new LatentShape(3, 2, 2), new float[3 * 16 * 16], 16, 16));
        assertThrows(IllegalStateException.class, fit::solve, "too few samples");
    }

    @Test
    void fallbackIsA1111sCheapApproximationAndRoundTripsAsJson() throws Exception {
        LatentShape one = new LatentShape(4, 1, 1);
        float[] z = {0.5f, -1f, 2f, 1f};
        float[] raw = LatentProjection.SD1_CHEAP.toRgbUnclamped(z, one);
        for (int r = 0; r < 3; r++) {
            double a1111 = 0;
            for (int c = 0; c < 4; c++) {
                a1111 += z[c] * LatentProjection.SD1_CHEAP_FACTORS[c][r];
            }
            assertEquals(a1111 * 0.5 + 0.5, raw[r], 1e-6);
        }
        ObjectMapper m = new ObjectMapper();
        LatentProjection p = new LatentProjection(W, B, "fitted");
        LatentProjection back = LatentProjection.fromJson(m.readTree(m.writeValueAsString(p.toJson(m))));
        assertEquals(p, back);
        assertThrows(IllegalArgumentException.class, () -> LatentProjection.fromJson(m.readTree("{\"weights\": [[1, 2]], \"bias\": [0, 0, 0]}")));
    }

    @Test
    void projectionsAreFittedOncePerFileHashAndCached() throws Exception {
        Path dir = Files.createTempDirectory("proj");
        AtomicInteger fits = new AtomicInteger();
        LatentProjection fitted = new LatentProjection(W, B, "fitted");
        PreviewProjections.Fitter fitter = model -> {
            fits.incrementAndGet();
            return new ProjectionFitter.Result(fitted, 1.5, 40, 100, 4, new LatentShape(4, 2, 2), 12, 8, 4, null, Double.NaN);
        };
        java.util.Map<String, String> hashes = new java.util.HashMap<>(java.util.Map.of("a", "H1", "a-copy", "H1", "b", "H2"));
        PreviewProjections pp = new PreviewProjections(dir, hashes::get, fitter);
        assertEquals(LatentProjection.SD1_CHEAP, pp.get("a"), "the fallback until fitted");
        assertEquals("fallback", pp.entry("a").origin());
        assertEquals("fitted", pp.ensure("a").origin());
        assertEquals(fitted, pp.get("a"));
        assertEquals(fitted, pp.ensure("a-copy").projection(), "same file, other name: no new fit");
        assertEquals(1, fits.get());
        assertTrue(Files.isRegularFile(dir.resolve("H1.json")));

        PreviewProjections restarted = new PreviewProjections(dir, hashes::get, fitter);
        PreviewProjections.Entry e = restarted.ensure("a");
        assertEquals("cache", e.origin());
        assertEquals(fitted, e.projection());
        assertEquals(1.5, e.residualMean255());
        assertEquals(1, fits.get(), "read from the cache file");

        restarted.ensure("b");
        assertEquals(2, fits.get(), "another file is fitted");
        hashes.put("a", "H3"); // the file changed
        restarted.ensure("a");
        assertEquals(3, fits.get());

        PreviewProjections failing = new PreviewProjections(null, n -> null, n -> {
            throw new IllegalStateException("no VAE");
        });
        assertEquals("fallback", failing.ensure("x").origin());
        assertEquals(LatentProjection.SD1_CHEAP, failing.get("x"));
    }
}
