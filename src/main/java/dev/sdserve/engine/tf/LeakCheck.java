package dev.sdserve.engine.tf;

import dev.sdserve.model.GoldenSet;

import dev.sdserve.engine.DenoiseBatch;
import dev.sdserve.engine.DenoiseItem;
import dev.sdserve.engine.LatentShape;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Random;

/**
 * Native-leak check: N guided UNet calls on a golden set's model; RSS (VmRSS) after the run must not exceed the RSS
 * after the first 10 calls by more than 5%. {@code java … dev.sdserve.engine.tf.LeakCheck <golden-dir> [calls]}.
 */
public final class LeakCheck {
    public record Outcome(int calls, long rssAfter10Kb, long rssAfterKb, double msPerCall) {
        public boolean ok() {
            return rssAfterKb <= rssAfter10Kb * 1.05;
        }
    }

    private LeakCheck() {
    }

    public static Outcome run(Path goldenDir, int calls, PrintStream log) throws IOException {
        try (GoldenSet g = GoldenSet.open(goldenDir)) {
            var cfg = g.config();
            Path file = Conformance.modelFiles(g).values().iterator().next();
            try (TfEngine engine = new TfEngine(Map.of("m", file), p -> cfg)) {
                var u = cfg.unet();
                int side = u.sampleSize();
                LatentShape shape = new LatentShape(u.inChannels(), side, side);
                int ctxLen = cfg.textEncoder().maxPositions() * u.crossAttentionDim();
                Random r = new Random(1);
                float[] x = new float[shape.size()];
                float[] c = new float[ctxLen];
                float[] n = new float[ctxLen];
                for (int i = 0; i < x.length; i++) {
                    x[i] = (float) r.nextGaussian();
                }
                for (int i = 0; i < c.length; i++) {
                    c[i] = (float) r.nextGaussian();
                    n[i] = (float) r.nextGaussian();
                }
                dev.sdserve.engine.AddedConditioning added = null;
                if (u.hasAddedConditioning()) { // SDXL: a pooled embedding and the default size conditioning
                    float[] pooled = new float[u.pooledDim()];
                    for (int i = 0; i < pooled.length; i++) {
                        pooled[i] = (float) r.nextGaussian();
                    }
                    int px = side * cfg.vae().downscale();
                    added = new dev.sdserve.engine.AddedConditioning(pooled, dev.sdserve.engine.SizeConditioning.of(px, px));
                }
                DenoiseBatch b = new DenoiseBatch("m", shape, List.of(new DenoiseItem(x, 500, c, n, 7.5, null, added, added)));
                long rss10 = 0;
                long t0 = 0;
                for (int i = 0; i < calls; i++) {
                    if (i == 10) {
                        System.gc();
                        rss10 = rssKb();
                        t0 = System.nanoTime();
                    }
                    engine.denoise(b);
                }
                double ms = (System.nanoTime() - t0) / 1e6 / Math.max(1, calls - 10);
                System.gc();
                long rss = rssKb();
                log.printf("leakcheck: calls=%d rss_after_10=%d kB rss_after=%d kB growth=%.2f%% ms_per_call=%.2f%n",
                        calls, rss10, rss, 100.0 * (rss - rss10) / rss10, ms);
                return new Outcome(calls, rss10, rss, ms);
            }
        }
    }

    /** Resident set size of this process in kB, from /proc/self/status. */
    public static long rssKb() throws IOException {
        for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
            if (line.startsWith("VmRSS:")) {
                return Long.parseLong(line.replaceAll("[^0-9]", ""));
            }
        }
        throw new IOException("/proc/self/status has no VmRSS line");
    }

    public static void main(String[] args) throws IOException {
        if (args.length < 1) {
            System.err.println("usage: LeakCheck <golden-dir> [calls=1000]");
            System.exit(2);
        }
        int calls = args.length > 1 ? Integer.parseInt(args[1]) : 1000;
        Outcome o = run(Path.of(args[0]), calls, System.out);
        System.out.println(o.ok() ? "leakcheck: PASS" : "leakcheck: FAIL (RSS grew more than 5%)");
        System.exit(o.ok() ? 0 : 1);
    }
}
