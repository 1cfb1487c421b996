package dev.sdserve.tools.bench;

import dev.sdserve.engine.tf.TfModel;

import java.io.PrintStream;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.SplittableRandom;

/**
 * {@code bench --deepcache FILE[,FILE…]}: DeepCache's step costs on each checkpoint: a guided step (UNet batch 2)
 * at latents 32×32 and 64×64, the plain UNet, the full step that also keeps the deep feature, and the shallow path
 * on it, alternated call by call ({@code reps} rounds after a warm-up); the ratio shallow ÷ plain is what a shallow
 * step saves (the cost model's prior, {@link dev.sdserve.engine.DeepCache#SHALLOW_COST_PRIOR}).
 */
public final class DeepCacheBench {
    private DeepCacheBench() {
    }

    public static int run(List<Path> models, int reps, PrintStream out) throws Exception {
        out.printf("deepcache: guided step (UNet batch 2), %d rounds alternated after a warm-up; ms per call (median)%n",
                reps);
        out.printf("%-34s %7s %10s %10s %10s %9s%n", "model", "latent", "plain ms", "capture ms", "shallow ms",
                "shallow/plain");
        for (Path file : models) {
            try (TfModel m = TfModel.load(file.getFileName().toString(), file)) {
                var u = m.config().unet();
                for (int size : new int[]{32, 64}) {
                    SplittableRandom rnd = new SplittableRandom(7);
                    List<float[]> x = new ArrayList<>();
                    List<float[]> ctx = new ArrayList<>();
                    for (int i = 0; i < 2; i++) {
                        x.add(gauss(rnd, u.inChannels() * size * size));
                        ctx.add(gauss(rnd, 77 * u.crossAttentionDim()));
                    }
                    float[] t = {500, 500};
                    List<float[]> deep = List.of(m.unetDeepCache(x, t, ctx, null, null, size, size, java.util.Map.of(),
                            null, null)[1]);
                    m.unetDeepCache(x, t, ctx, null, null, size, size, java.util.Map.of(), null, deep); // warm-up
                    m.unet(x, t, ctx, size, size);
                    double[][] ms = new double[3][reps];
                    for (int r = 0; r < reps; r++) {
                        long t0 = System.nanoTime();
                        m.unet(x, t, ctx, size, size);
                        long t1 = System.nanoTime();
                        m.unetDeepCache(x, t, ctx, null, null, size, size, java.util.Map.of(), null, null);
                        long t2 = System.nanoTime();
                        m.unetDeepCache(x, t, ctx, null, null, size, size, java.util.Map.of(), null, deep);
                        long t3 = System.nanoTime();
                        ms[0][r] = (t1 - t0) / 1e6;
                        ms[1][r] = (t2 - t1) / 1e6;
                        ms[2][r] = (t3 - t2) / 1e6;
                    }
                    double plain = median(ms[0]), capture = median(ms[1]), shallow = median(ms[2]);
                    out.printf(Locale.ROOT, "%-34s %4dx%-2d %10.1f %10.1f %10.1f %9.3f%n", file.getFileName(), size,
                            size, plain, capture, shallow, shallow / plain);
                }
            }
        }
        return 0;
    }

    private static float[] gauss(SplittableRandom r, int n) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            double u1 = r.nextDouble(), u2 = r.nextDouble();
            v[i] = (float) (Math.sqrt(-2 * Math.log(1 - u1)) * Math.cos(2 * Math.PI * u2));
        }
        return v;
    }

    private static double median(double[] v) {
        double[] s = v.clone();
        java.util.Arrays.sort(s);
        return s.length % 2 == 1 ? s[s.length / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
    }
}
