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
     * preview PNG of the demo prompt. By default ("auto") it goes through the decoder readout (the demo VAE's colours
     * are far from an affine function of the latent, so the fit prefers the readout): an orange–yellow centre on a
     * purple ground, as the full preview ({@code full_every}) of the same step shows. The affine map
     * ({@code projection=affine}) shows the shape, brighter than a purple background, but not its orange (pale yellow
     * over blue).
     */
    @Test
    void serviceStepThreePreviewShowsTheShapeInItsColours() throws Exception {
        var entry = asm.previewProjections().ensure(MODEL);
        assertTrue(entry.decoderPreferred(), "the demo fit prefers the decoder readout: " + entry.decoderResidual255()
                + " vs affine " + entry.residualMean255());
        float[] auto = stepThreePreview(0, "auto");
        float[] affine = stepThreePreview(0, "affine");
        float[] full = stepThreePreview(3, "auto");
        float[] centre = mean(auto, 64, 24, 40, 24, 40);
        float[] corner = mean(auto, 64, 0, 12, 0, 12);
        float[] affineCentre = mean(affine, 64, 24, 40, 24, 40);
        float[] affineCorner = mean(affine, 64, 0, 12, 0, 12);
        float[] fullCentre = mean(full, 64, 24, 40, 24, 40);
        float[] fullCorner = mean(full, 64, 0, 12, 0, 12);
        System.out.printf(Locale.ROOT, "service step 3, decoder readout: centre %s, corner %s; affine: centre %s, corner %s; "
                        + "full: centre %s, corner %s%n", Colours.describe(centre), Colours.describe(corner),
                Colours.describe(affineCentre), Colours.describe(affineCorner), Colours.describe(fullCentre),
                Colours.describe(fullCorner));
        assertTrue(Colours.isHue(centre, 10, 65), "decoder readout: orange–yellow centre: " + Colours.describe(centre));
        assertTrue(Colours.isHue(corner, 240, 300), "decoder readout: purple corner: " + Colours.describe(corner));
        assertTrue(Colours.isHue(affineCorner, 240, 300), "affine: corner of step 3 is purple: " + Colours.describe(affineCorner));
        assertTrue(luma(affineCentre) > luma(affineCorner) + 0.15, "affine: the shape stands out at step 3: "
                + Colours.describe(affineCentre) + " on " + Colours.describe(affineCorner));
        assertTrue(Colours.isHue(fullCentre, 10, 65), "full preview: orange–yellow centre: " + Colours.describe(fullCentre));
        assertTrue(Colours.isHue(fullCorner, 240, 300), "full preview: purple corner: " + Colours.describe(fullCorner));
        // the readout's preview is nearer the full preview of the same step than the affine map's is
        double readoutToFull = PreviewErrorTable.meanAbs255(auto, full), affineToFull = PreviewErrorTable.meanAbs255(affine, full);
        System.out.printf(Locale.ROOT, "step 3 vs its full preview: decoder readout %.1f/255, affine %.1f/255%n",
                readoutToFull, affineToFull);
        assertTrue(readoutToFull < affineToFull, readoutToFull + " vs " + affineToFull);
    }

    /** C1, shape, C2, seed: held-out prompts (no fit run draws them) whose final images the model draws right. */
    static final String[][] HELD_OUT = {
            {"orange", "triangle", "purple", "1"},
            {"red", "circle", "blue", "107"},
            {"yellow", "square", "black", "114"},
            {"blue", "circle", "yellow", "128"},
            {"white", "triangle", "red", "135"},
            {"cyan", "square", "brown", "142"},
            {"pink", "circle", "green", "149"},
            {"black", "diamond", "cyan", "156"},
    };

    /**
     * Step 3 of 20 on held-out prompts ("a big C1 shape in the center, C2 background"): the preview is right when its
     * centre is nearer (RGB distance) to C1 than to C2 and its corners nearer to C2 than to C1. The decoder readout is
     * right at least as often as the full preview (a VAE decode of the same x̂0) less one, and on average nearer to
     * that full preview than the affine map is (the colour test alone does not tell them apart: the affine map's pale
     * colours are often still nearer the right name).
     */
    @Test
    void decoderReadoutGetsHeldOutColoursRightAtStepThree() {
        var entry = asm.previewProjections().ensure(MODEL);
        LatentShape shape = new LatentShape(4, 16, 16);
        int readoutRight = 0, affineRight = 0, fullRight = 0;
        double readoutErr = 0, affineErr = 0;
        for (String[] c : HELD_OUT) {
            String prompt = "a big " + c[0] + " " + c[1] + " in the center, " + c[2] + " background";
            assertTrue(!ProjectionFitter.PROMPTS.contains(prompt), "held out: " + prompt);
            float[][] ctx = engine.encode(MODEL, List.of(new EncodeItem(prompt), new EncodeItem("")));
            float[] noise = new float[shape.size()];
            new TorchGenerator(Long.parseLong(c[3])).fill(noise);
            SamplerState s = Samplers.create("dpmpp_2m").start(20, noise, null);
            for (int k = 0; k < 3; k++) {
                s.advance(engine.denoise(new DenoiseBatch(MODEL, shape,
                        List.of(new DenoiseItem(s.modelInput().clone(), s.timestep(), ctx[0], ctx[1], 5.0, List.of()))))[0]);
            }
            float[] x0 = s.denoised();
            float[] readout = Previews.resize(engine.decoderPreview(MODEL, shape, List.of(x0), entry.decoder())[0], 16, 16, 128, 128);
            float[] affine = Previews.resize(entry.projection().toRgb(x0, shape), 16, 16, 128, 128);
            float[] full = engine.decode(MODEL, shape, List.of(x0))[0];
            boolean r = right(readout, c[0], c[2]), a = right(affine, c[0], c[2]), f = right(full, c[0], c[2]);
            double re = PreviewErrorTable.meanAbs255(readout, full), ae = PreviewErrorTable.meanAbs255(affine, full);
            System.out.printf(Locale.ROOT, "%-55s seed %3s: decoder readout %s (%.1f/255 from full), affine %s (%.1f), full %s%n",
                    prompt, c[3], r ? "right" : "WRONG", re, a ? "right" : "WRONG", ae, f ? "right" : "WRONG");
            readoutErr += re / HELD_OUT.length;
            affineErr += ae / HELD_OUT.length;
            readoutRight += r ? 1 : 0;
            affineRight += a ? 1 : 0;
            fullRight += f ? 1 : 0;
        }
        System.out.printf(Locale.ROOT, "step 3 of 20, right of %d held-out prompts: decoder readout %d, affine %d, full %d; "
                + "mean |preview − full preview| decoder readout %.1f/255, affine %.1f/255%n", HELD_OUT.length, readoutRight,
                affineRight, fullRight, readoutErr, affineErr);
        assertTrue(readoutRight >= fullRight - 1, "decoder readout " + readoutRight + " vs full " + fullRight);
        assertTrue(readoutErr < affineErr, "decoder readout " + readoutErr + " vs affine " + affineErr);
    }

    /** Centre (48..80 px) nearer to {@code c1} than to {@code c2}, corners (20 px squares) nearer to {@code c2}: 128² HWC. */
    private static boolean right(float[] img, String c1, String c2) {
        float[] centre = mean(img, 128, 48, 80, 48, 80);
        float[] corners = new float[3];
        for (int[] at : new int[][]{{0, 0}, {0, 108}, {108, 0}, {108, 108}}) {
            float[] m = mean(img, 128, at[0], at[0] + 20, at[1], at[1] + 20);
            for (int r = 0; r < 3; r++) {
                corners[r] += m[r] / 4;
            }
        }
        return dist(centre, c1) < dist(centre, c2) && dist(corners, c2) < dist(corners, c1);
    }

    private static double dist(float[] c, String named) {
        int[] n = Colours.NAMED.get(named);
        double d = 0;
        for (int r = 0; r < 3; r++) {
            double v = c[r] * 255 - n[r];
            d += v * v;
        }
        return Math.sqrt(d);
    }

    private static double luma(float[] c) {
        return 0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2];
    }

    /** The demo request at 128², a 64-pixel PNG preview every 3 steps: step 3's (HWC); retried if a lag dropped it. */
    private static float[] stepThreePreview(int fullEvery, String projection) throws Exception {
        for (int attempt = 0; attempt < 3; attempt++) {
            float[] p = stepThreePreviewOnce(fullEvery, projection);
            if (p != null) {
                return p;
            }
        }
        throw new AssertionError("step 3's preview never arrived");
    }

    /** The demo request at 128² with a 64-pixel PNG preview every 3 steps: step 3's preview (HWC), or null if dropped. */
    private static float[] stepThreePreviewOnce(int fullEvery, String projection) throws Exception {
        dev.sdserve.job.Job job = asm.service().submit(PreviewErrorTableTest.demoRequest().withSize(128, 128)
                .withPreview(new dev.sdserve.job.PreviewOptions(3, "png", 64, "denoised", fullEvery, projection)), false);
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
