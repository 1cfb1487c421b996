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
 * (sd-shapes, dpmpp_2m, 20 steps, guidance 5) or a checkpoint file ({@code --model}: 3 prompts, 256², 10 steps by
 * default) over a fixed list of prompts and seeds, in process. Every request runs alone (no batching with others),
 * the full computation once per prompt, before the options on even prompts and after them on odd ones; the table
 * gives the summed request times, the speed-up, and the image difference against the full computation (mean
 * absolute pixel error on 0–255 and PSNR over the RGB values); then the text-embedding cache's table
 * ({@link TextCacheBench}). Timings are for a table, never asserted.
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
                new Variant("DeepCache", "interval 2", r -> r.withDeepCacheInterval(2)),
                new Variant("DeepCache", "interval 3", r -> r.withDeepCacheInterval(3)),
                new Variant("token merging", "ratio 0.3", r -> r.withTokenMerging(0.3)),
                new Variant("token merging", "ratio 0.5", r -> r.withTokenMerging(0.5)));
    }

    /**
     * What the bench runs on: the demo model (sd-shapes, its 8 prompts, 20 steps at its own size) or a checkpoint
     * file (e.g. the random full-size SD 1.5 one: its first 3 prompts at {@code size}², {@code steps} steps).
     */
    record Setup(String label, Path model, Integer size, int steps, List<String> prompts) {
        static Setup demo() {
            return new Setup("demo model sd-shapes", null, null, 20, PROMPTS);
        }

        static Setup file(Path model, int size, int steps) {
            return new Setup(model.getFileName().toString(), model, size, steps, PROMPTS.subList(0, 3));
        }

        GenerationRequest request(String prompt, long seed) {
            return SavingsBench.request(prompt, seed).withSteps(steps).withSize(size, size);
        }
    }

    public static int run(int threads, Path outDir, PrintStream out) throws Exception {
        return run(Setup.demo(), threads, outDir, out);
    }

    /** {@code bench --savings [--model FILE [--size N] [--steps N]]}. */
    public static int run(Path model, int size, int steps, int threads, Path outDir, PrintStream out) throws Exception {
        return run(model, size, steps, 0, null, threads, outDir, out);
    }

    /**
     * As above, over the first {@code prompts} prompts (0: the setup's own list) and only the variants of option
     * {@code only} (null: all), e.g. {@code DeepCache}.
     */
    public static int run(Path model, int size, int steps, int prompts, String only, int threads, Path outDir,
                          PrintStream out) throws Exception {
        Setup setup = model == null ? Setup.demo() : Setup.file(model, size, steps);
        if (prompts > 0 && prompts < setup.prompts().size()) {
            setup = new Setup(setup.label(), setup.model(), setup.size(), setup.steps(),
                    setup.prompts().subList(0, prompts));
        }
        return run(setup, threads, outDir, out, only);
    }

    static int run(Setup setup, int threads, Path outDir, PrintStream out) throws Exception {
        return run(setup, threads, outDir, out, null);
    }

    static int run(Setup setup, int threads, Path outDir, PrintStream out, String only) throws Exception {
        Assembly.Settings s = new Assembly.Settings();
        s.threads = threads;
        s.rescanSeconds = 0;
        s.service.textCacheBytes = 64L << 20; // the server's default; paused for the full computation
        if (setup.model() != null) {
            s.extraModels.put("bench", setup.model());
            s.defaultModel = "bench";
            s.service.loadTimeoutMillis = 30 * 60_000; // a full-size file on a busy machine
        }
        if (outDir != null) {
            Files.createDirectories(outDir);
        }
        List<String> prompts = setup.prompts();
        out.printf("savings: %s, dpmpp_2m, %d steps, guidance 5, %s, %d prompts/seeds, %d threads; each request "
                        + "alone, full and option alternated%n", setup.label(), setup.steps(),
                setup.size() == null ? "the model's size" : setup.size() + "x" + setup.size(), prompts.size(), threads);
        out.printf("%-20s %-11s %9s %9s %8s %8s %8s %8s%n", "option", "setting", "full s", "option s", "speed-up",
                "MAE", "PSNR dB", "min PSNR");
        try (Assembly asm = Assembly.create(s)) {
            asm.service().pauseTextCache(true);
            // warm-up: graphs built, model resident
            generate(asm, setup.request(prompts.get(0), 1).withSteps(1)); // one step: the same graphs
            List<Result> full = new ArrayList<>();
            double encodeMs = 0;
            List<Variant> variants = variants().stream()
                    .filter(v -> only == null || v.option().equalsIgnoreCase(only)).toList();
            for (Variant v : variants) { // each option's graphs built before the timed runs
                generate(asm, v.apply().apply(setup.request(prompts.get(0), 1).withSteps(3)));
            }
            double[][] optS = new double[variants.size()][prompts.size()];
            byte[][][] optPng = new byte[variants.size()][prompts.size()][];
            for (int i = 0; i < prompts.size(); i++) {
                GenerationRequest base = setup.request(prompts.get(i), 1000 + i);
                boolean fullFirst = i % 2 == 0; // full before the options on even prompts, after them on odd ones
                if (fullFirst) {
                    Timed t = generateTimed(asm, base);
                    full.add(t.result());
                    encodeMs += t.stages().get("encode");
                }
                for (int v = 0; v < variants.size(); v++) {
                    Result r = generate(asm, variants.get(v).apply().apply(base));
                    optS[v][i] = r.seconds;
                    optPng[v][i] = r.png;
                }
                if (!fullFirst) {
                    Timed t = generateTimed(asm, base);
                    full.add(t.result());
                    encodeMs += t.stages().get("encode");
                }
            }
            for (int v = 0; v < variants.size(); v++) {
                double fullS = 0, sumOpt = 0, mae = 0, psnr = 0, minPsnr = Double.POSITIVE_INFINITY;
                for (int i = 0; i < prompts.size(); i++) {
                    fullS += full.get(i).seconds;
                    sumOpt += optS[v][i];
                    double[] d = difference(full.get(i).png, optPng[v][i]);
                    mae += d[0];
                    psnr += Math.min(d[1], 99);
                    minPsnr = Math.min(minPsnr, d[1]);
                    if (outDir != null) {
                        Files.write(outDir.resolve("p" + i + "-full.png"), full.get(i).png);
                        Files.write(outDir.resolve("p" + i + "-" + variants.get(v).setting().replace(' ', '-') + ".png"),
                                optPng[v][i]);
                    }
                }
                int n = prompts.size();
                out.printf("%-20s %-11s %9.2f %9.2f %7.2fx %8.2f %8.1f %8.1f%n", variants.get(v).option(),
                        variants.get(v).setting(), fullS, sumOpt, fullS / sumOpt, mae / n, psnr / n, minPsnr);
            }
            double fullMs = full.stream().mapToDouble(Result::seconds).sum() * 1000;
            out.printf("text encoding (prompt and negative, one call): %.0f ms of a %.0f ms full request, %.2f%% "
                    + "(what a text-cache hit saves)%n", encodeMs / prompts.size(), fullMs / prompts.size(),
                    100 * encodeMs / fullMs);
            TextCacheBench.run(asm, setup, out);
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
        return generateTimed(asm, req).result();
    }

    /** A request's PNG, its seconds, and its stage timings (ms: queue, encode, denoise, decode, total). */
    record Timed(Result result, java.util.Map<String, Double> stages) {
    }

    static Timed generateTimed(Assembly asm, GenerationRequest req) throws Exception {
        long t0 = System.nanoTime();
        Job job = asm.service().submit(req, false);
        Mailbox mb = job.watch();
        while (true) {
            JobEvent e = mb.next().get(1, TimeUnit.HOURS);
            if (e instanceof JobEvent.Completed c) {
                return new Timed(new Result(c.images().get(0), (System.nanoTime() - t0) / 1e9), c.timingsMillis());
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
