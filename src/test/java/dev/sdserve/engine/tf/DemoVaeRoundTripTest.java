package dev.sdserve.engine.tf;

import dev.sdserve.engine.LatentShape;
import dev.sdserve.model.Checkpoint;
import dev.sdserve.model.ModelConfig;
import dev.sdserve.testutil.Shared;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import javax.imageio.ImageIO;
import java.awt.image.BufferedImage;
import java.nio.file.Path;
import java.util.Collections;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The demo model's VAE (trained; SD 1.x topology, four levels of 32/64/128/128 channels, fp16 weights) through the
 * engine: encoded to the posterior mean (scaled as the sampler's latents) and decoded again.
 *
 * <p>Pictures like the ones the model was trained on (tiles of {@code shared/demo/samples-diffusers.png}, drawn by
 * diffusers from this checkpoint) come back within mean |Δ| 0.05 (measured 0.007–0.033). A flat picture does not
 * (flat blue: 0.37): that is the checkpoint's encoder, not the engine. An independent float64 numpy implementation of
 * diffusers' AutoencoderKL ({@code src/test/resources/dev/sdserve/engine/tf/demo_vae_reference.py}, run from the
 * worktree) gives the latent and colour figures asserted in {@link #engineComputesWhatTheReferenceComputes()}. Every
 * training picture had one or two shapes on a background; without one the encoder loses the colour (tile 0 with its
 * circle painted over in the background colour: 0.12 in the reference; flat pictures 0.10–0.37).
 */
class DemoVaeRoundTripTest {
    static final int S = 128;
    static TfEngine engine;

    @BeforeAll
    static void open() throws Exception {
        Path file = Shared.dir().resolve("demo").resolve("sd-shapes-tiny.safetensors");
        ModelConfig cfg;
        try (Checkpoint c = Checkpoint.open(file)) {
            cfg = c.config();
        }
        engine = new TfEngine(Map.of("demo", file), p -> cfg);
    }

    @AfterAll
    static void close() {
        engine.close();
    }

    /** {latent channel means (4), decoded mean RGB (3), mean |Δ| (1)} of one round trip. */
    static double[] roundTrip(String what, float[] img) {
        LatentShape shape = new LatentShape(4, S / 8, S / 8);
        float[] z = engine.encodeImage("demo", shape, List.of(img), Collections.singletonList(null))[0];
        float[] back = engine.decode("demo", shape, List.of(z))[0];
        double[] r = new double[8];
        int hw = z.length / 4;
        for (int i = 0; i < z.length; i++) {
            r[i / hw] += z[i] / (double) hw;
        }
        for (int i = 0; i < img.length; i++) {
            r[4 + i % 3] += back[i] / (img.length / 3.0);
            r[7] += Math.abs(back[i] - img[i]) / (double) img.length;
        }
        System.out.printf("demo VAE round trip %-18s latent means %.4f %.4f %.4f %.4f -> rgb %.4f %.4f %.4f, mean |Δ| %.4f%n",
                what, r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7]);
        return r;
    }

    static float[] flat(double... rgb) {
        float[] x = new float[S * S * 3];
        for (int i = 0; i < x.length; i++) {
            x[i] = (float) rgb[i % 3];
        }
        return x;
    }

    /** Tile k (row-major, 4 × 4 of 128 px) of samples-diffusers.png, HWC in [0, 1]. */
    static float[] tile(int k) throws Exception {
        BufferedImage im = ImageIO.read(Shared.dir().resolve("demo").resolve("samples-diffusers.png").toFile());
        float[] x = new float[S * S * 3];
        int ox = (k % 4) * S, oy = (k / 4) * S;
        for (int y = 0; y < S; y++) {
            for (int xx = 0; xx < S; xx++) {
                int rgb = im.getRGB(ox + xx, oy + y), i = 3 * (y * S + xx);
                x[i] = ((rgb >> 16) & 255) / 255f;
                x[i + 1] = ((rgb >> 8) & 255) / 255f;
                x[i + 2] = (rgb & 255) / 255f;
            }
        }
        return x;
    }

    @Test
    void theModelsOwnPicturesComeBack() throws Exception {
        // red circle on blue, yellow square on black, orange triangle on purple, black ring on cyan
        for (int k : new int[]{0, 1, 6, 9}) {
            double d = roundTrip("samples tile " + k, tile(k))[7];
            assertTrue(d < 0.05, "tile " + k + " of samples-diffusers.png: mean |Δ| " + d);
        }
    }

    /** Figures printed by demo_vae_reference.py (numpy, float64, diffusers' AutoencoderKL on the same weights). */
    @Test
    void engineComputesWhatTheReferenceComputes() throws Exception {
        Object[][] cases = {
                {"flat blue", flat(0.12, 0.24, 0.78),
                        new double[]{-1.5435, -0.8445, 0.2386, -0.9125, 0.4452, 0.4265, 0.2861, 0.3745}},
                {"flat red", flat(0.85, 0.15, 0.12),
                        new double[]{0.5704, 0.8667, -0.2055, 0.0544, 0.7516, 0.4353, 0.3153, 0.2502}},
                {"flat gray", flat(0.5, 0.5, 0.5),
                        new double[]{0.3359, -0.1447, -0.0574, -0.4128, 0.522, 0.3745, 0.3604, 0.1007}},
                {"samples tile 0", tile(0),
                        new double[]{-0.241, -0.8614, 0.109, -0.7713, 0.2674, 0.3863, 0.79, 0.0211}},
        };
        for (Object[] c : cases) {
            double[] got = roundTrip((String) c[0], (float[]) c[1]), want = (double[]) c[2];
            for (int i = 0; i < want.length; i++) {
                assertEquals(want[i], got[i], 5e-3, c[0] + " figure " + i + " (latent means 0–3, rgb 4–6, mean |Δ| 7)");
            }
        }
    }
}
