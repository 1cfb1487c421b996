package dev.sdserve.preview;

import dev.sdserve.app.Assembly;
import dev.sdserve.engine.DenoiseBatch;
import dev.sdserve.engine.DenoiseItem;
import dev.sdserve.engine.EncodeItem;
import dev.sdserve.engine.Engine;
import dev.sdserve.engine.LatentShape;
import dev.sdserve.engine.projection.LatentProjection;
import dev.sdserve.engine.projection.ProjectionFitter;
import dev.sdserve.sampler.SamplerState;
import dev.sdserve.sampler.Samplers;
import dev.sdserve.sampler.TorchGenerator;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The preview projection fitted to the demo model's VAE, judged on a run it was not fitted on (the demo prompt):
 * against the VAE's own decode of the same x̂0, and against the final image; the SD 1.x factors for comparison.
 */
class DemoProjectionTest {
    static Assembly asm;
    static Engine engine;
    static final String MODEL = "sd-shapes-tiny";

    @BeforeAll
    static void start() {
        asm = PreviewErrorTableTest.demoAssembly();
        engine = asm.engine();
    }

    @AfterAll
    static void stop() {
        asm.close();
    }

    /** x̂0 after every step of the demo prompt's run (DPM++ 2M, 20 steps, guidance 5, seed 1), then the final latent. */
    static List<float[]> demoRun(LatentShape shape) {
        return runWith(engine, shape);
    }

    static List<float[]> runWith(Engine engine, LatentShape shape) {
        float[][] ctx = engine.encode(MODEL, List.of(new EncodeItem(PreviewErrorTableTest.PROMPT), new EncodeItem("")));
        float[] noise = new float[shape.size()];
        new TorchGenerator(1).fill(noise);
        SamplerState s = Samplers.create("dpmpp_2m").start(20, noise, null);
        List<float[]> out = new ArrayList<>();
        while (!s.done()) {
            float[] eps = engine.denoise(new DenoiseBatch(MODEL, shape,
                    List.of(new DenoiseItem(s.modelInput().clone(), s.timestep(), ctx[0], ctx[1], 5.0, List.of()))))[0];
            s.advance(eps);
            out.add(s.denoised());
        }
        out.add(s.latents());
        return out;
    }

    @Test
    void fittedProjectionShowsTheDemoModelsColoursFromStepThree() {
        ProjectionFitter.Result fit = ProjectionFitter.fit(engine, MODEL, ProjectionFitter.Settings.defaults());
        System.out.printf(Locale.ROOT, "demo fit: %.0f ms (UNet %.0f ms, VAE %.0f ms), %d latents %s, %d samples; "
                        + "residual %.2f/255 (SD 1.x factors %.2f/255)%n%s%n", fit.millis(), fit.unetMillis(), fit.decodeMillis(),
                fit.latentsDecoded(), fit.shape(), fit.samples(), fit.residualMean255(), fit.fallbackMean255(), fit.projection());
        LatentShape shape = new LatentShape(4, 16, 16);
        List<float[]> run = demoRun(shape);
        float[] fin = engine.decode(MODEL, shape, List.of(run.get(run.size() - 1)))[0];
        float[] finSmall = average(fin, 128, 16);
        System.out.println("| step | fitted vs VAE(x̂0) | SD 1.x vs VAE(x̂0) | fitted x̂0 vs final | SD 1.x x̂0 vs final |");
        double worstRatio = 0;
        String out = System.getProperty("sdserve.preview.out");
        List<float[]> strip = new ArrayList<>();
        for (int k : new int[]{1, 2, 3, 5, 8, 12, 20}) {
            float[] x0 = run.get(k - 1);
            float[] vae = average(engine.decode(MODEL, shape, List.of(x0))[0], 128, 16);
            float[] fitted = fit.projection().toRgb(x0, shape);
            float[] cheap = LatentProjection.SD1_CHEAP.toRgb(x0, shape);
            double fv = PreviewErrorTable.meanAbs255(fitted, vae), cv = PreviewErrorTable.meanAbs255(cheap, vae);
            System.out.printf(Locale.ROOT, "| %d | %.1f | %.1f | %.1f | %.1f |%n", k, fv, cv,
                    PreviewErrorTable.meanAbs255(fitted, finSmall), PreviewErrorTable.meanAbs255(cheap, finSmall));
            strip.add(Previews.resize(fitted, 16, 16, 128, 128));
            strip.add(Previews.resize(cheap, 16, 16, 128, 128));
            strip.add(Previews.resize(vae, 16, 16, 128, 128));
            if (k >= 8) {
                worstRatio = Math.max(worstRatio, fv / cv);
            }
        }
        if (out != null) {
            // rows: fitted projection, SD 1.x factors, VAE (averaged to the latent grid); columns: the steps above
            float[] img = new float[7 * 128 * 3 * 128 * 3];
            for (int i = 0; i < strip.size(); i++) {
                int col = i / 3, row = i % 3;
                for (int y = 0; y < 128; y++) {
                    System.arraycopy(strip.get(i), y * 128 * 3, img, ((row * 128 + y) * 7 * 128 + col * 128) * 3, 128 * 3);
                }
            }
            try {
                java.nio.file.Files.write(java.nio.file.Path.of(out), Png.encode(img, 7 * 128, 3 * 128));
            } catch (java.io.IOException e) {
                throw new java.io.UncheckedIOException(e);
            }
        }
        assertTrue(worstRatio < 0.9, "from step 8 on the fit is closer to the VAE than the SD 1.x factors: " + worstRatio);
        // step 3 of 20: a warm (orange–yellow) shape in the centre of a purple square
        float[] step3 = fit.projection().toRgb(run.get(2), shape);
        float[] centre = mean(step3, 16, 6, 9, 6, 9);
        float[] corner = mean(step3, 16, 0, 3, 0, 3);
        System.out.printf(Locale.ROOT, "step 3: centre hue %.0f° saturation %.2f, corner hue %.0f° saturation %.2f%n",
                Colours.hue(centre), Colours.saturation(centre), Colours.hue(corner), Colours.saturation(corner));
        assertTrue(Colours.isHue(centre, 10, 65), "centre of step 3 is orange–yellow: " + Colours.describe(centre));
        assertTrue(Colours.isHue(corner, 240, 300), "corner of step 3 is purple: " + Colours.describe(corner));
    }

    /**
     * Through the service, as a client sees it, with the model's projection fitted (as after its load): the step-3-of-20
     * preview PNG of the demo prompt already shows the shape, brighter than a purple background; the linear
     * projection does not reach the VAE's orange (the shape comes out pale yellow over blue), a full preview
     * ({@code full_every}) of the same step does: an orange–yellow centre in a purple image.
     */
    @Test
    void serviceStepThreePreviewShowsTheShapeInItsColours() throws Exception {
        asm.previewProjections().ensure(MODEL);
        float[] projected = stepThreePreview(0);
        float[] full = stepThreePreview(3);
        float[] centre = mean(projected, 64, 24, 40, 24, 40);
        float[] corner = mean(projected, 64, 0, 12, 0, 12);
        float[] fullCentre = mean(full, 64, 24, 40, 24, 40);
        float[] fullCorner = mean(full, 64, 0, 12, 0, 12);
        System.out.printf(Locale.ROOT, "service step 3, projected: centre %s, corner %s; full: centre %s, corner %s%n",
                Colours.describe(centre), Colours.describe(corner), Colours.describe(fullCentre), Colours.describe(fullCorner));
        assertTrue(Colours.isHue(corner, 240, 300), "corner of step 3 is purple: " + Colours.describe(corner));
        assertTrue(luma(centre) > luma(corner) + 0.15, "the shape stands out at step 3: " + Colours.describe(centre)
                + " on " + Colours.describe(corner));
        assertTrue(Colours.isHue(fullCentre, 10, 65), "full preview: orange–yellow centre: " + Colours.describe(fullCentre));
        assertTrue(Colours.isHue(fullCorner, 240, 300), "full preview: purple corner: " + Colours.describe(fullCorner));
    }

    private static double luma(float[] c) {
        return 0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2];
    }

    /** The demo request at 128², a 64-pixel PNG preview every 3 steps: step 3's (HWC); retried if a lag dropped it. */
    private static float[] stepThreePreview(int fullEvery) throws Exception {
        for (int attempt = 0; attempt < 3; attempt++) {
            float[] p = stepThreePreviewOnce(fullEvery);
            if (p != null) {
                return p;
            }
        }
        throw new AssertionError("step 3's preview never arrived");
    }

    /** The demo request at 128² with a 64-pixel PNG preview every 3 steps: step 3's preview (HWC), or null if dropped. */
    private static float[] stepThreePreviewOnce(int fullEvery) throws Exception {
        dev.sdserve.job.Job job = asm.service().submit(PreviewErrorTableTest.demoRequest().withSize(128, 128)
                .withPreview(new dev.sdserve.job.PreviewOptions(3, "png", 64, "denoised", fullEvery)), false);
        dev.sdserve.job.Mailbox mb = job.watch();
        float[] out = null;
        while (true) {
            dev.sdserve.job.JobEvent e = mb.next().get(5, java.util.concurrent.TimeUnit.MINUTES);
            if (e instanceof dev.sdserve.job.JobEvent.Step st && st.index() == 3 && st.preview() != null) {
                java.awt.image.BufferedImage img = javax.imageio.ImageIO.read(new java.io.ByteArrayInputStream(st.preview()));
                out = new float[64 * 64 * 3];
                for (int y = 0; y < 64; y++) {
                    for (int x = 0; x < 64; x++) {
                        int p = img.getRGB(x, y);
                        out[(y * 64 + x) * 3] = (p >> 16 & 0xFF) / 255f;
                        out[(y * 64 + x) * 3 + 1] = (p >> 8 & 0xFF) / 255f;
                        out[(y * 64 + x) * 3 + 2] = (p & 0xFF) / 255f;
                    }
                }
            } else if (e instanceof dev.sdserve.job.JobEvent.Completed || e instanceof dev.sdserve.job.JobEvent.Ended) {
                return out;
            }
        }
    }

    /** Averages an HWC image of edge {@code n} down to edge {@code m}. */
    static float[] average(float[] img, int n, int m) {
        int f = n / m;
        float[] out = new float[m * m * 3];
        for (int y = 0; y < n; y++) {
            for (int x = 0; x < n; x++) {
                for (int r = 0; r < 3; r++) {
                    out[((y / f) * m + x / f) * 3 + r] += img[(y * n + x) * 3 + r] / (f * f);
                }
            }
        }
        return out;
    }

    /** Mean colour of the rows y0..y1−1 and columns x0..x1−1 of an HWC image of width w. */
    static float[] mean(float[] img, int w, int y0, int y1, int x0, int x1) {
        float[] m = new float[3];
        int n = 0;
        for (int y = y0; y < y1; y++) {
            for (int x = x0; x < x1; x++) {
                for (int r = 0; r < 3; r++) {
                    m[r] += img[(y * w + x) * 3 + r];
                }
                n++;
            }
        }
        for (int r = 0; r < 3; r++) {
            m[r] /= n;
        }
        return m;
    }
}
