package dev.sdserve.demo;

import dev.sdserve.app.Assembly;
import dev.sdserve.engine.LoraWeight;
import dev.sdserve.job.GenerationRequest;
import dev.sdserve.model.DemoModel;
import dev.sdserve.train.FineTuneManager;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledIfEnvironmentVariable;
import org.junit.jupiter.api.io.TempDir;

import javax.imageio.ImageIO;
import java.awt.Color;
import java.awt.Graphics2D;
import java.awt.Polygon;
import java.awt.RenderingHints;
import java.awt.image.BufferedImage;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

import static dev.sdserve.demo.Pictures.*;
import static org.junit.jupiter.api.Assertions.*;

/**
 * The fine-tuning path end to end on the embedded model: the service (its fine-tune API, training in the
 * scheduler's slack) trains a LoRA on a few pictures of something the grammar lacks, a green star on white, drawn
 * here; then "a green star" is drawn with and without it for the same seeds and compared with the star's own
 * picture: the LoRA's foreground must overlap the star more (IoU) and hold more star-green inside it.
 * Prints the loss curve.
 *
 * <p>Manual ({@code SDSERVE_DEMO_LORA=1 mvn test -Dtest=DemoLoraTest}): 300 training steps plus 8 pictures take
 * minutes on 2 cores, more than CI should spend on it. {@code SDSERVE_DEMO_OUT=DIR} keeps the pictures;
 * {@code SDSERVE_DEMO_LORA_STEPS}, {@code SDSERVE_DEMO_LORA_LR} change the run. At lr 1e-2 the LoRA diverged (noise);
 * at 3e-3 / 200 steps stars with five arms appeared in 2 of 4 seeds but dark, on degraded backgrounds.
 */
@EnabledIfEnvironmentVariable(named = "SDSERVE_DEMO_LORA", matches = "1|true")
class DemoLoraTest {
    static final Color STAR = new Color(30, 170, 60);
    /** Stars are not in the grammar; the background is, so the LoRA has one new thing to learn: the shape. */
    static final String CAPTION = "a green star, white background";

    @TempDir
    Path tmp;

    /** A five-pointed star of outer radius r at (cx, cy) on white, anti-aliased. */
    static BufferedImage star(double cx, double cy, double r) {
        BufferedImage img = new BufferedImage(128, 128, BufferedImage.TYPE_INT_RGB);
        Graphics2D g = img.createGraphics();
        g.setRenderingHint(RenderingHints.KEY_ANTIALIASING, RenderingHints.VALUE_ANTIALIAS_ON);
        g.setColor(Color.WHITE);
        g.fillRect(0, 0, 128, 128);
        Polygon p = new Polygon();
        for (int k = 0; k < 10; k++) {
            double a = -Math.PI / 2 + k * Math.PI / 5;
            double rr = k % 2 == 0 ? r : r * 0.45;
            p.addPoint((int) Math.round(cx + rr * Math.cos(a)), (int) Math.round(cy + rr * Math.sin(a)));
        }
        g.setColor(STAR);
        g.fillPolygon(p);
        g.dispose();
        return img;
    }

    static byte[] png(BufferedImage img) throws IOException {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ImageIO.write(img, "png", out);
        return out.toByteArray();
    }

    /** Mean absolute difference per channel (0..255) between two images. */
    static double meanDiff(BufferedImage a, BufferedImage b) {
        double s = 0;
        for (int y = 0; y < 128; y++) {
            for (int x = 0; x < 128; x++) {
                int[] p = rgb(a.getRGB(x, y)), q = rgb(b.getRGB(x, y));
                for (int k = 0; k < 3; k++) {
                    s += Math.abs(p[k] - q[k]);
                }
            }
        }
        return s / (128 * 128 * 3);
    }

    /**
     * Of the reference picture's pixels of colour {@code where}, the share drawn within 80 (RGB distance) of that
     * colour: the star's green inside the star, white outside it.
     */
    static double share(BufferedImage img, BufferedImage ref, int[] where) {
        long n = 0, hit = 0;
        for (int y = 0; y < 128; y++) {
            for (int x = 0; x < 128; x++) {
                if (dist(rgb(ref.getRGB(x, y)), where) < 1) {
                    n++;
                    hit += dist(rgb(img.getRGB(x, y)), where) < 80 ? 1 : 0;
                }
            }
        }
        return (double) hit / n;
    }

    /**
     * Shape agreement: intersection over union of the picture's foreground (pixels farther than 60 from the mean of
     * its four corner patches, the background) with the reference star.
     */
    static double starIou(BufferedImage img, BufferedImage ref) {
        double[][] corners = {mean(img, 2, 2, 10), mean(img, 116, 2, 10), mean(img, 2, 116, 10), mean(img, 116, 116, 10)};
        double[] bg = new double[3];
        for (double[] c : corners) {
            for (int k = 0; k < 3; k++) {
                bg[k] += c[k] / 4;
            }
        }
        int[] green = {STAR.getRed(), STAR.getGreen(), STAR.getBlue()};
        long inter = 0, union = 0;
        for (int y = 0; y < 128; y++) {
            for (int x = 0; x < 128; x++) {
                int[] c = rgb(img.getRGB(x, y));
                boolean fg = dist(new double[]{c[0], c[1], c[2]}, new int[]{(int) bg[0], (int) bg[1], (int) bg[2]}) > 60;
                boolean star = dist(rgb(ref.getRGB(x, y)), green) < 1;
                inter += fg && star ? 1 : 0;
                union += fg || star ? 1 : 0;
            }
        }
        return (double) inter / union;
    }

    @Test
    void aLoraTrainedByTheServiceTeachesItAGreenStar() throws Exception {
        List<FineTuneManager.Upload> uploads = new ArrayList<>();
        double[][] at = {{64, 64, 40}, {62, 66, 36}, {66, 63, 44}, {64, 62, 38}};
        for (double[] a : at) {
            uploads.add(new FineTuneManager.Upload(png(star(a[0], a[1], a[2])), CAPTION));
        }
        BufferedImage ref = star(64, 64, 40);
        Assembly.Settings s = new Assembly.Settings();
        s.modelsDir = Files.createDirectories(tmp.resolve("models"));
        s.rescanSeconds = 0;
        s.train = new FineTuneManager.Settings();
        s.train.stateDir = tmp.resolve("state");
        s.train.dataDir = Files.createDirectories(tmp.resolve("data"));
        s.train.checkpointEvery = 1000;
        int steps = Integer.parseInt(System.getenv().getOrDefault("SDSERVE_DEMO_LORA_STEPS", "300"));
        double lr = Double.parseDouble(System.getenv().getOrDefault("SDSERVE_DEMO_LORA_LR", "1e-3"));
        long[] seeds = {11, 12, 13, 14};
        try (Assembly asm = Assembly.create(s)) {
            List<GenerationRequest> base = new ArrayList<>();
            for (long seed : seeds) {
                base.add(request(CAPTION, seed));
            }
            List<BufferedImage> before = generate(asm.service(), base);

            long t0 = System.nanoTime();
            FineTuneManager.Event ev = asm.fineTunes().submit(new FineTuneManager.Request("green-star", DemoModel.NAME,
                    null, uploads, 8, 8.0, null, steps, lr, 2, 7L, 128));
            FineTuneManager.Info info;
            long end = System.currentTimeMillis() + 900_000;
            do {
                Thread.sleep(200);
                info = asm.fineTunes().get(ev.id());
            } while (!info.status().state().terminal() && System.currentTimeMillis() < end);
            double trainSeconds = (System.nanoTime() - t0) / 1e9;
            assertEquals(FineTuneManager.State.SUCCEEDED, info.status().state(), info.status().toString());

            StringBuilder curve = new StringBuilder();
            List<Float> losses = info.losses();
            int every = Math.max(1, losses.size() / 12);
            for (int i = 0; i < losses.size(); i += every) {
                curve.append(String.format(Locale.ROOT, " %d:%.4f", info.lossSteps().get(i), losses.get(i)));
            }
            double first = avg(losses.subList(0, Math.min(10, losses.size())));
            double last = avg(losses.subList(Math.max(0, losses.size() - 10), losses.size()));
            System.out.printf(Locale.ROOT, "green-star LoRA: %d steps (rank 8, lr %s, batch 2, 4 pictures) in %.1f s (load %s);"
                    + " loss (step:loss)%s; mean of first 10 %.4f, last 10 %.4f%n", steps, lr, trainSeconds,
                    DemoPicturesTest.loadAverage(), curve, first, last);

            List<GenerationRequest> tuned = new ArrayList<>();
            for (GenerationRequest r : base) {
                tuned.add(new GenerationRequest(r.prompt(), null, null, List.of(new LoraWeight("green-star", 1.0)),
                        null, null, null, null, null, r.seed(), null, null, r.preview(), r.sloClass(), null, null, null, true));
            }
            List<BufferedImage> after = generate(asm.service(), tuned);
            String out = System.getenv("SDSERVE_DEMO_OUT");
            int[] green = {STAR.getRed(), STAR.getGreen(), STAR.getBlue()}, white = {255, 255, 255};
            double diffBefore = 0, diffAfter = 0, inBefore = 0, inAfter = 0, outBefore = 0, outAfter = 0;
            double iouBefore = 0, iouAfter = 0;
            StringBuilder table = new StringBuilder("seed: star shape IoU base → LoRA; mean difference from the star"
                    + " picture (0..255); star pixels drawn star-green; background pixels drawn white\n");
            for (int i = 0; i < seeds.length; i++) {
                double db = meanDiff(before.get(i), ref), da = meanDiff(after.get(i), ref);
                double ib = share(before.get(i), ref, green), ia = share(after.get(i), ref, green);
                double ob = share(before.get(i), ref, white), oa = share(after.get(i), ref, white);
                diffBefore += db / seeds.length;
                diffAfter += da / seeds.length;
                inBefore += ib / seeds.length;
                inAfter += ia / seeds.length;
                outBefore += ob / seeds.length;
                outAfter += oa / seeds.length;
                double sb = starIou(before.get(i), ref), sa = starIou(after.get(i), ref);
                iouBefore += sb / seeds.length;
                iouAfter += sa / seeds.length;
                table.append(String.format(Locale.ROOT, "%d: IoU %.2f → %.2f; %.1f → %.1f; %.0f%% → %.0f%%; %.0f%% → %.0f%%%n",
                        seeds[i], sb, sa, db, da, 100 * ib, 100 * ia, 100 * ob, 100 * oa));
                if (out != null) {
                    Files.createDirectories(Path.of(out));
                    ImageIO.write(before.get(i), "png", Path.of(out, "star-base-" + seeds[i] + ".png").toFile());
                    ImageIO.write(after.get(i), "png", Path.of(out, "star-lora-" + seeds[i] + ".png").toFile());
                }
            }
            table.append(String.format(Locale.ROOT, "mean: IoU %.2f → %.2f; %.1f → %.1f; %.0f%% → %.0f%%; %.0f%% → %.0f%%%n",
                    iouBefore, iouAfter, diffBefore, diffAfter, 100 * inBefore, 100 * inAfter, 100 * outBefore, 100 * outAfter));
            System.out.print(table);
            assertTrue(last < first, "the loss fell: " + curve);
            // What the runs showed (lr 1e-3, 300 steps): five-armed stars in 3 of 4 seeds, but teal-green on tinted
            // backgrounds, so the shape is asserted and the colour figures are printed.
            assertTrue(iouAfter > iouBefore + 0.1, "the drawn shape moved towards the star:\n" + table);
            assertTrue(inAfter > inBefore, "more star-green inside the star:\n" + table);
        }
    }

    static double avg(List<Float> l) {
        return l.stream().mapToDouble(Float::doubleValue).average().orElse(Double.NaN);
    }
}
