package dev.sdserve.engine.tf;

import dev.sdserve.model.ModelConfig;
import dev.sdserve.model.TextEncoderConfig;
import dev.sdserve.model.UNetConfig;
import dev.sdserve.model.VaeConfig;
import dev.sdserve.testutil.Shared;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledIfSystemProperty;

import java.nio.file.Files;
import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Full-size SD 1.5 UNet with random weights in the civitai layout (shapes from shared/golden/sd15-full-layout.txt):
 * the graph builds and runs at 32×32 and 64×64. Manual (needs ~6 GB and minutes): -Dsdserve.fullsize=true.
 */
@EnabledIfSystemProperty(named = "sdserve.fullsize", matches = "true")
class FullSizeSmokeTest {
    @Test
    void sd15UNetRuns() throws Exception {
        List<String> lines = Files.readAllLines(Shared.dir().resolve("golden/sd15-full-layout.txt"));
        Random r = new Random(7);
        long t0 = System.nanoTime();
        try (Weights w = Weights.empty("random sd15")) {
            for (String line : lines) {
                String[] parts = line.split(" ", 2);
                if (!parts[0].startsWith(UNetNet.PREFIX)) {
                    continue;
                }
                String dims = parts[1].substring(parts[1].indexOf('[') + 1, parts[1].indexOf(']'));
                long[] shape = java.util.Arrays.stream(dims.split(",")).map(String::trim).mapToLong(Long::parseLong).toArray();
                long n = 1;
                for (long d : shape) {
                    n *= d;
                }
                float[] v = new float[(int) n];
                boolean norm = parts[0].contains("norm") || parts[0].contains("in_layers.0") || parts[0].contains("out_layers.0")
                        || parts[0].endsWith("out.0.weight");
                for (int i = 0; i < v.length; i++) {
                    v[i] = norm && parts[0].endsWith(".weight") ? 1f : (float) (r.nextGaussian() * 0.02);
                }
                w.put(parts[0], shape, v);
            }
            System.out.printf("random weights: %s in %.1f s%n", w, (System.nanoTime() - t0) / 1e9);
            UNetConfig u = new UNetConfig(4, 4, List.of(320, 640, 1280, 1280), 2, List.of(true, true, true, false),
                    List.of(false, true, true, true), true, List.of(8, 8, 8, 8), 768, false, 1, 32, 1e-5, "epsilon", 64);
            ModelConfig cfg = new ModelConfig("sd1", u,
                    new TextEncoderConfig(49408, 768, 3072, 12, 12, 77, "quick_gelu", 1e-5, 49406, 49407, 49407),
                    new VaeConfig(3, 3, 4, List.of(128, 256, 512, 512), 2, 32, 0.18215));
            // two models over the same weights (closing either closes them; Weights.close is idempotent): the
            // engine's default kernels, and every 3×3 convolution as a direct sum (im2col), built at first use
            try (TfModel m = new TfModel("sd15-random", cfg, w, 0);
                 TfModel direct = new TfModel("sd15-random-direct", cfg, w, 0)) {
                for (int side : new int[]{32, 64}) {
                    float[] x = new float[4 * side * side];
                    float[] c = new float[77 * 768];
                    for (int i = 0; i < x.length; i++) {
                        x[i] = (float) r.nextGaussian();
                    }
                    for (int i = 0; i < c.length; i++) {
                        c[i] = (float) r.nextGaussian();
                    }
                    long b = System.nanoTime();
                    float[][] eps = m.unet(List.of(x), new float[]{500}, List.of(c), side, side);
                    long first = System.nanoTime() - b;
                    b = System.nanoTime();
                    int n = side == 32 ? 3 : 2;
                    for (int i = 0; i < n; i++) {
                        eps = m.unet(List.of(x), new float[]{500}, List.of(c), side, side);
                    }
                    System.out.printf("sd15 unet %dx%d b1: first %.2f s, then %.2f s/call, rss %d MB%n", side, side,
                            first / 1e9, (System.nanoTime() - b) / 1e9 / n, LeakCheck.rssKb() / 1024);
                    assertEquals(x.length, eps[0].length);
                    for (float e : eps[0]) {
                        assertTrue(Float.isFinite(e));
                    }
                    // the same call with direct 3×3 sums: Winograd's rounding stays small over the whole network
                    String before = System.getProperty("sdserve.conv3x3");
                    System.setProperty("sdserve.conv3x3", "IM2COL");
                    try {
                        float[][] ref = direct.unet(List.of(x), new float[]{500}, List.of(c), side, side);
                        double num = 0, den = 0;
                        for (int i = 0; i < ref[0].length; i++) {
                            num += (eps[0][i] - ref[0][i]) * (double) (eps[0][i] - ref[0][i]);
                            den += ref[0][i] * (double) ref[0][i];
                        }
                        double rel = Math.sqrt(num / den);
                        System.out.printf("sd15 unet %dx%d: default kernels vs direct 3x3 sums: rel diff %.2e%n", side,
                                side, rel);
                        assertTrue(rel < 1e-4, "rel diff " + rel);
                    } finally {
                        if (before == null) {
                            System.clearProperty("sdserve.conv3x3");
                        } else {
                            System.setProperty("sdserve.conv3x3", before);
                        }
                    }
                }
            }
        }
    }
}
