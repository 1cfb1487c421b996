package dev.sdserve.engine.tf;

import dev.sdserve.engine.DenoiseBatch;
import dev.sdserve.engine.DenoiseItem;
import dev.sdserve.engine.LatentShape;
import dev.sdserve.model.DType;
import dev.sdserve.model.ModelConfig;
import dev.sdserve.model.ModelConfigs;
import dev.sdserve.model.RandomCheckpoint;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * What a UNet batch with contexts of different lengths costs, on the full-size SD 1.5 architecture (bench's random
 * fp16 checkpoint): two guided requests (4 UNet samples), one with a 154-token prompt. Printed side by side, runs
 * alternated: all contexts 77 tokens (the floor), the mixed batch padded and masked in one call, the mixed batch
 * as one call per length, and every context 154 tokens (what padding everything to the longest costs without masks).
 * Run: {@code java -cp 'target/classes:target/quarkus-app/lib/main/*' dev.sdserve.engine.tf.MixedContextBench
 * [reps] [latent sides, e.g. 32,64] [dir]}.
 */
public final class MixedContextBench {
    private MixedContextBench() {
    }

    public static void main(String[] args) throws Exception {
        int reps = args.length > 0 ? Integer.parseInt(args[0]) : 3;
        int[] sides = Arrays.stream((args.length > 1 ? args[1] : "32,64").split(",")).mapToInt(Integer::parseInt).toArray();
        Path dir = Path.of(args.length > 2 ? args[2] : System.getProperty("java.io.tmpdir") + "/sd-serve-bench");
        ModelConfig cfg = ModelConfigs.sd15();
        Path file = dir.resolve("sd15-random-fp16.safetensors");
        RandomCheckpoint.ensure(file, cfg, DType.F16, 1234);
        SplittableRandom rnd = new SplittableRandom(3);
        int dim = cfg.unet().crossAttentionDim();
        float[] c77a = gauss(rnd, 77 * dim), c77b = gauss(rnd, 77 * dim), u77 = gauss(rnd, 77 * dim);
        float[] c154 = gauss(rnd, 154 * dim), u154 = Arrays.copyOf(u77, 154 * dim);
        String[] names = {"all 77 (floor)", "mixed: mask", "mixed: group", "all 154"};
        try (TfEngine e = new TfEngine(Map.of("sd15", file), p -> cfg)) {
            for (int side : sides) {
                LatentShape shape = new LatentShape(4, side, side);
                float[] x1 = gauss(rnd, shape.size()), x2 = gauss(rnd, shape.size());
                List<List<DenoiseItem>> batches = List.of(
                        List.of(item(x1, c77a, u77), item(x2, c77b, u77)),
                        List.of(item(x1, c154, u77), item(x2, c77b, u77)),
                        List.of(item(x1, c154, u77), item(x2, c77b, u77)),
                        List.of(item(x1, c154, u154), item(x2, Arrays.copyOf(c77b, 154 * dim), u154)));
                String[] modes = {"MASK", "MASK", "GROUP", "MASK"};
                double[][] ms = new double[4][reps];
                for (int r = -1; r < reps; r++) { // r = -1: graphs built, not timed
                    for (int k = 0; k < 4; k++) {
                        e.mixedContexts(modes[k]);
                        long t0 = System.nanoTime();
                        e.denoise(new DenoiseBatch("sd15", shape, batches.get(k)));
                        if (r >= 0) {
                            ms[k][r] = (System.nanoTime() - t0) / 1e6;
                        }
                    }
                }
                System.out.printf("latent %dx%d, 2 guided requests = 4 UNet samples, %d reps alternated (median ms, ratio to the floor):%n",
                        side, side, reps);
                double floor = median(ms[0]);
                for (int k = 0; k < 4; k++) {
                    System.out.printf("  %-16s %9.0f ms  %.3f  %s%n", names[k], median(ms[k]), median(ms[k]) / floor,
                            Arrays.toString(Arrays.stream(ms[k]).mapToLong(Math::round).toArray()));
                }
            }
        }
    }

    private static DenoiseItem item(float[] x, float[] c, float[] u) {
        return new DenoiseItem(x, 500, c, u, 7.5, null);
    }

    private static float[] gauss(SplittableRandom r, int n) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) {
            a[i] = (float) r.nextGaussian();
        }
        return a;
    }

    private static double median(double[] a) {
        double[] s = a.clone();
        Arrays.sort(s);
        return s.length % 2 == 1 ? s[s.length / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
    }
}
