package dev.sdserve.engine.tf;

import dev.sdserve.engine.DenoiseBatch;
import dev.sdserve.engine.DenoiseItem;
import dev.sdserve.engine.LatentShape;
import dev.sdserve.engine.projection.LatentProjection;
import dev.sdserve.sampler.PreviewCases;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * The {@code preview.<sampler>.*} cases of a set's {@code ext/} folder ({@link PreviewCases}), run on the float32
 * model file at the per-call tolerance: every sampler's guided run on the engine, then per sampler
 * <ul>
 *   <li>{@code .sigma}: σ and timestep of every evaluation (the larger of the two relative errors);</li>
 *   <li>{@code .denoised}: the state's x̂0 after every evaluation;</li>
 *   <li>{@code .rgb_cheap}: that x̂0 through the SD 1.x fallback projection, against {@code denoised_rgb_cheap} and,
 *       before the clamp, {@code denoised_rgb_cheap_raw} (the larger error);</li>
 *   <li>{@code .vae}: the engine's VAE decode of x̂0 at the set's {@code vae_eval_indices}.</li>
 * </ul>
 */
final class PreviewConformance {
    /** Records one case (Conformance's own bookkeeping). */
    @FunctionalInterface
    interface Check {
        void run(String name, double tolerance, Conformance.ErrorCase c);
    }

    private PreviewConformance() {
    }

    /** Runs the cases when the set has preview cases and {@code label} is the float32 file; else nothing. */
    static void cases(Path setDir, TfEngine engine, String label, Check check) {
        double tol = Conformance.CALL_TOLERANCE;
        List<PreviewCases.Case> cases;
        try {
            if (!label.equals("fp32") || !PreviewCases.present(setDir)) {
                return;
            }
            cases = PreviewCases.load(setDir);
        } catch (IOException | RuntimeException e) {
            check.run(label + ".preview", tol, () -> {
                throw e;
            });
            return;
        }
        for (PreviewCases.Case c : cases) {
            String p = label + ".preview." + c.name();
            LatentShape shape = new LatentShape(c.shape()[0], c.shape()[1], c.shape()[2]);
            PreviewCases.Recorded[] run = new PreviewCases.Recorded[1];
            check.run(p + ".sigma", tol, () -> {
                run[0] = PreviewCases.run(c, (k, x, t) -> engine.denoise(new DenoiseBatch(label, shape,
                        List.of(new DenoiseItem(x.clone(), t, c.promptEmbeds(), c.negativeEmbeds(), c.guidance(), null))))[0]);
                if (run[0].drawsUsed() != c.noise().size() - c.unusedDraws()) {
                    throw new IllegalStateException("the sampler drew noise " + run[0].drawsUsed() + " times, the golden run "
                            + (c.noise().size() - c.unusedDraws()));
                }
                return Math.max(Conformance.err(floats(run[0].sigma()), floats(c.sigma())),
                        Conformance.err(floats(run[0].timestep()), floats(c.timestep())));
            });
            check.run(p + ".denoised", tol, () -> Conformance.err(recorded(run).denoised().toArray(float[][]::new), concat(c.denoised())));
            check.run(p + ".rgb_cheap", tol, () -> {
                List<float[]> x0 = recorded(run).denoised();
                List<float[]> rgb = new ArrayList<>(), raw = new ArrayList<>();
                for (float[] x : x0) {
                    rgb.add(LatentProjection.SD1_CHEAP.toRgb(x, shape));
                    // the fallback maps onto [0, 1] as 0.5·raw + 0.5; A1111's raw value is its [−1, 1] form
                    float[] u = LatentProjection.SD1_CHEAP.toRgbUnclamped(x, shape);
                    for (int i = 0; i < u.length; i++) {
                        u[i] = (u[i] - 0.5f) * 2f;
                    }
                    raw.add(u);
                }
                return Math.max(Conformance.err(rgb.toArray(float[][]::new), concat(c.rgbCheap())),
                        Conformance.err(raw.toArray(float[][]::new), concat(c.rgbCheapRaw())));
            });
            check.run(p + ".vae", tol, () -> {
                List<float[]> pick = new ArrayList<>();
                for (int i : c.vaeEvalIndices()) {
                    pick.add(recorded(run).denoised().get(i));
                }
                return Conformance.err(engine.decode(label, shape, pick), concat(c.denoisedVae()));
            });
        }
    }

    private static PreviewCases.Recorded recorded(PreviewCases.Recorded[] run) {
        if (run[0] == null) {
            throw new IllegalStateException("the run failed");
        }
        return run[0];
    }

    private static float[] floats(double[] d) {
        float[] f = new float[d.length];
        for (int i = 0; i < d.length; i++) {
            f[i] = (float) d[i];
        }
        return f;
    }

    private static float[] concat(List<float[]> rows) {
        int n = 0;
        for (float[] r : rows) {
            n += r.length;
        }
        float[] out = new float[n];
        int o = 0;
        for (float[] r : rows) {
            System.arraycopy(r, 0, out, o, r.length);
            o += r.length;
        }
        return out;
    }
}
