package dev.sdserve.tools.bench;

import dev.sdserve.app.Assembly;
import dev.sdserve.engine.TokenMerging;
import dev.sdserve.engine.tf.TfModel;
import dev.sdserve.job.GenerationRequest;
import dev.sdserve.model.ModelConfig;
import dev.sdserve.model.ModelConfigs;

import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;

/**
 * {@code bench --tome-model FILE}: token merging on a full-size SD 1.5 checkpoint. Part 1: the UNet call
 * alone at each latent size and batch (16² ×2, 32² ×1 and ×2, 64² ×1 and ×2) and ratio (0, 0.3, 0.5), the ratios
 * alternated call by call after one warm-up call each, median of {@code reps}; the relative RMS difference of the
 * UNet output against ratio 0. Part 2:
 * whole requests (dpmpp_2m, guidance 5, few steps) at the given image sizes, full and merged alternated prompt by
 * prompt, after one short request per ratio and size (every graph built before the timed runs): time and image
 * difference (MAE on 0–255, PSNR). Timings are for a table, never asserted.
 */
public final class TokenMergingBench {
    private TokenMergingBench() {
    }

    static final double[] RATIOS = {0, 0.3, 0.5};

    /** The UNet cases: {latent side, batch}. */
    static final int[][] UNET_CASES = {{16, 2}, {32, 1}, {32, 2}, {64, 1}, {64, 2}};

    public static int run(Path file, int threads, int reps, List<Integer> imageSizes, int steps, Path outDir,
                          PrintStream out) throws Exception {
        return run(file, threads, reps, imageSizes, steps, outDir, List.of(16, 32, 64), out);
    }

    /** As above with the UNet cases of the given latent sides only. */
    public static int run(Path file, int threads, int reps, List<Integer> imageSizes, int steps, Path outDir,
                          List<Integer> latents, PrintStream out) throws Exception {
        System.setProperty("sdserve.threads", Integer.toString(threads));
        ModelConfig cfg = ModelConfigs.sd15();
        out.printf("tome: UNet calls on %s, %d threads, ratios alternated call by call, median of %d%n", file, threads,
                reps);
        out.printf("%-8s %6s %5s %6s %7s %9s %8s %9s%n", "latent", "tokens", "batch", "ratio", "merged", "ms",
                "speed-up", "rel.RMS");
        try (TfModel m = TfModel.load("sd15-random", file, cfg)) {
            SplittableRandom rnd = new SplittableRandom(5);
            for (int[] c : UNET_CASES) {
                int side = c[0], b = c[1];
                if (!latents.contains(side)) {
                    continue;
                }
                List<float[]> x = new ArrayList<>(), ctx = new ArrayList<>();
                float[] t = new float[b];
                for (int i = 0; i < b; i++) {
                    x.add(EngineBench.gauss(rnd, 4 * side * side));
                    ctx.add(EngineBench.gauss(rnd, 77 * 768));
                    t[i] = 700 - 300 * i;
                }
                float[][][] outs = new float[RATIOS.length][][];
                double[][] ms = new double[RATIOS.length][reps];
                for (int k = 0; k < RATIOS.length; k++) {
                    outs[k] = m.unet(x, t, ctx, null, null, side, side, java.util.Map.of(), null, RATIOS[k]);
                }
                for (int rep = 0; rep < reps; rep++) {
                    for (int j = 0; j < RATIOS.length; j++) {
                        int k = (rep % 2 == 0) ? j : RATIOS.length - 1 - j;
                        long s0 = System.nanoTime();
                        m.unet(x, t, ctx, null, null, side, side, java.util.Map.of(), null, RATIOS[k]);
                        ms[k][rep] = (System.nanoTime() - s0) / 1e6;
                    }
                }
                double base = median(ms[0]);
                for (int k = 0; k < RATIOS.length; k++) {
                    out.printf("%-8s %6d %5d %6.2f %7d %9.0f %7.2fx %9.4f%n", side + "x" + side, side * side, b,
                            RATIOS[k], TokenMerging.merged(side, side, RATIOS[k]), median(ms[k]),
                            base / median(ms[k]), relRms(outs[0], outs[k]));
                }
            }
        }
        if (imageSizes.isEmpty()) {
            return 0;
        }
        Assembly.Settings s = new Assembly.Settings();
        s.threads = threads;
        s.rescanSeconds = 0;
        s.extraModels.put("sd15-random", file);
        if (outDir != null) {
            Files.createDirectories(outDir);
        }
        List<String> prompts = SavingsBench.PROMPTS.subList(0, 3);
        out.printf("tome: whole requests on %s, dpmpp_2m, %d steps, guidance 5, %d prompts/seeds; full and merged "
                + "alternated%n", file.getFileName(), steps, prompts.size());
        out.printf("%-6s %6s %9s %9s %8s %8s %8s %8s%n", "image", "ratio", "full s", "tome s", "speed-up", "MAE",
                "PSNR dB", "min PSNR");
        try (Assembly asm = Assembly.create(s)) {
            for (int size : imageSizes) {
                for (double ratio : RATIOS) { // each ratio's graphs built before the timed runs
                    SavingsBench.generate(asm, request(prompts.get(0), 1, size, 2).withTokenMerging(ratio));
                }
                for (int k = 1; k < RATIOS.length; k++) {
                    double fullS = 0, optS = 0, mae = 0, psnr = 0, minPsnr = Double.POSITIVE_INFINITY;
                    for (int i = 0; i < prompts.size(); i++) {
                        GenerationRequest base = request(prompts.get(i), 1000 + i, size, steps);
                        GenerationRequest opt = base.withTokenMerging(RATIOS[k]);
                        boolean fullFirst = i % 2 == 0;
                        SavingsBench.Result a = SavingsBench.generate(asm, fullFirst ? base : opt);
                        SavingsBench.Result bb = SavingsBench.generate(asm, fullFirst ? opt : base);
                        SavingsBench.Result full = fullFirst ? a : bb, merged = fullFirst ? bb : a;
                        fullS += full.seconds();
                        optS += merged.seconds();
                        double[] d = SavingsBench.difference(full.png(), merged.png());
                        mae += d[0];
                        psnr += Math.min(d[1], 99);
                        minPsnr = Math.min(minPsnr, d[1]);
                        if (outDir != null) {
                            Files.write(outDir.resolve("full" + size + "-p" + i + "-full.png"), full.png());
                            Files.write(outDir.resolve("full" + size + "-p" + i + "-tome" + RATIOS[k] + ".png"),
                                    merged.png());
                        }
                    }
                    int n = prompts.size();
                    out.printf("%-6s %6.2f %9.2f %9.2f %7.2fx %8.2f %8.1f %8.1f%n", size + "²", RATIOS[k], fullS, optS,
                            fullS / optS, mae / n, psnr / n, minPsnr);
                }
            }
        }
        return 0;
    }

    static GenerationRequest request(String prompt, long seed, int size, int steps) {
        return SavingsBench.request(prompt, seed).withModel("sd15-random").withSize(size, size).withSteps(steps);
    }

    private static double median(double[] v) {
        double[] s = v.clone();
        Arrays.sort(s);
        return s.length % 2 == 1 ? s[s.length / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
    }

    /** RMS of (b − a) over the RMS of a, over every sample. */
    private static double relRms(float[][] a, float[][] b) {
        double num = 0, den = 0;
        for (int i = 0; i < a.length; i++) {
            for (int j = 0; j < a[i].length; j++) {
                double d = b[i][j] - a[i][j];
                num += d * d;
                den += (double) a[i][j] * a[i][j];
            }
        }
        return Math.sqrt(num / Math.max(den, 1e-30));
    }
}
