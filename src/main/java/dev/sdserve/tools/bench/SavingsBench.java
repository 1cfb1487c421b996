package dev.sdserve.tools.bench;

import dev.sdserve.app.Assembly;
import dev.sdserve.job.GenerationRequest;
import dev.sdserve.job.Job;
import dev.sdserve.job.JobEvent;
import dev.sdserve.job.Mailbox;
import dev.sdserve.job.PreviewOptions;

import javax.imageio.ImageIO;
import java.awt.image.BufferedImage;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.function.UnaryOperator;

/**
 * {@code bench --savings}: the cheaper-step options, each against the full computation on the demo model
 * (sd-shapes, dpmpp_2m, 20 steps, guidance 5) over a fixed list of prompts and seeds, in process. Every request
 * runs alone (no batching with others), full and option alternated prompt by prompt; the table gives the summed
 * request times, the speed-up, and the image difference against the full computation (mean absolute pixel error on
 * 0–255 and PSNR over the RGB values). Timings are for a table, never asserted.
 */
public final class SavingsBench {
    private SavingsBench() {
    }

    /** The fixed prompts (the demo model's grammar), each with its seed. */
    static final List<String> PROMPTS = List.of(
            "a big orange triangle in the center, purple background",
            "a red circle on the left and a blue square on the right, white background",
            "a small green diamond at the top, black background",
            "a yellow ring in the center, blue background",
            "a big pink square at the bottom left, gray background",
            "a cyan circle at the top right and a small red triangle, brown background",
            "a white diamond on the right, green background",
            "a purple ring at the bottom and a yellow circle at the top, black background");

    /** One option setting to compare with the full computation. */
    record Variant(String option, String setting, UnaryOperator<GenerationRequest> apply) {
    }

    static List<Variant> variants() {
        return List.of(
                new Variant("guidance truncation", "cutoff 0.7", r -> r.withGuidanceCutoff(0.7)),
                new Variant("guidance truncation", "cutoff 0.5", r -> r.withGuidanceCutoff(0.5)),
                new Variant("guidance truncation", "cutoff 0.3", r -> r.withGuidanceCutoff(0.3)),
                new Variant("token merging", "ratio 0.3", r -> r.withTokenMerging(0.3)),
                new Variant("token merging", "ratio 0.5", r -> r.withTokenMerging(0.5)));
    }

    public static int run(int threads, Path outDir, PrintStream out) throws Exception {
        Assembly.Settings s = new Assembly.Settings();
        s.threads = threads;
        s.rescanSeconds = 0;
        if (outDir != null) {
            Files.createDirectories(outDir);
        }
        out.printf("savings: demo model sd-shapes, dpmpp_2m, 20 steps, guidance 5, 128x128, %d prompts/seeds, "
                + "%d threads; each request alone, full and option alternated%n", PROMPTS.size(), threads);
        out.printf("%-20s %-11s %9s %9s %8s %8s %8s %8s%n", "option", "setting", "full s", "option s", "speed-up",
                "MAE", "PSNR dB", "min PSNR");
        try (Assembly asm = Assembly.create(s)) {
            // warm-up: graphs built, model resident
            generate(asm, request(PROMPTS.get(0), 1));
            for (Variant v : variants()) {
                double fullS = 0, optS = 0, mae = 0, psnr = 0, minPsnr = Double.POSITIVE_INFINITY;
                for (int i = 0; i < PROMPTS.size(); i++) {
                    GenerationRequest base = request(PROMPTS.get(i), 1000 + i);
                    boolean fullFirst = i % 2 == 0;
                    Result a = generate(asm, fullFirst ? base : v.apply().apply(base));
                    Result b = generate(asm, fullFirst ? v.apply().apply(base) : base);
                    Result full = fullFirst ? a : b, opt = fullFirst ? b : a;
                    fullS += full.seconds;
                    optS += opt.seconds;
                    double[] d = difference(full.png, opt.png);
                    mae += d[0];
                    psnr += Math.min(d[1], 99);
                    minPsnr = Math.min(minPsnr, d[1]);
                    if (outDir != null) {
                        String tag = v.setting().replace(' ', '-');
                        Files.write(outDir.resolve("p" + i + "-full.png"), full.png);
                        Files.write(outDir.resolve("p" + i + "-" + tag + ".png"), opt.png);
                    }
                }
                int n = PROMPTS.size();
                out.printf("%-20s %-11s %9.2f %9.2f %7.2fx %8.2f %8.1f %8.1f%n", v.option(), v.setting(), fullS, optS,
                        fullS / optS, mae / n, psnr / n, minPsnr);
            }
        }
        return 0;
    }

    static GenerationRequest request(String prompt, long seed) {
        return new GenerationRequest(prompt, "", null, List.of(), null, null, 20, "dpmpp_2m", 5.0, seed, null, 1,
                new PreviewOptions(0, "png", 0), null, null, null, "bench", true);
    }

    record Result(byte[] png, double seconds) {
    }

    static Result generate(Assembly asm, GenerationRequest req) throws Exception {
        long t0 = System.nanoTime();
        Job job = asm.service().submit(req, false);
        Mailbox mb = job.watch();
        while (true) {
            JobEvent e = mb.next().get(1, TimeUnit.HOURS);
            if (e instanceof JobEvent.Completed c) {
                return new Result(c.images().get(0), (System.nanoTime() - t0) / 1e9);
            }
            if (e instanceof JobEvent.Ended end) {
                throw new IllegalStateException("savings bench: request ended " + end.state()
                        + (end.error() == null ? "" : ": " + end.error().getMessage()));
            }
        }
    }

    /** {mean absolute error on 0–255, PSNR in dB (+∞ when identical)} over the RGB values of two PNGs. */
    static double[] difference(byte[] pngA, byte[] pngB) throws IOException {
        BufferedImage a = ImageIO.read(new ByteArrayInputStream(pngA)), b = ImageIO.read(new ByteArrayInputStream(pngB));
        if (a.getWidth() != b.getWidth() || a.getHeight() != b.getHeight()) {
            throw new IllegalArgumentException("images differ in size");
        }
        double abs = 0, sq = 0;
        long n = 0;
        for (int y = 0; y < a.getHeight(); y++) {
            for (int x = 0; x < a.getWidth(); x++) {
                int pa = a.getRGB(x, y), pb = b.getRGB(x, y);
                for (int sh = 0; sh <= 16; sh += 8) {
                    int d = ((pa >> sh) & 0xff) - ((pb >> sh) & 0xff);
                    abs += Math.abs(d);
                    sq += d * d;
                    n++;
                }
            }
        }
        double mse = sq / n;
        return new double[]{abs / n, mse == 0 ? Double.POSITIVE_INFINITY : 10 * Math.log10(255.0 * 255.0 / mse)};
    }
}
