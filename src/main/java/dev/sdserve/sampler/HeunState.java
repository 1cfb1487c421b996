package dev.sdserve.sampler;

/**
 * HeunDiscreteScheduler: alternating Euler predictor (σ_i → σ_{i+1}) and trapezoidal corrector evaluations; the
 * last step is a plain Euler step to σ = 0.
 */
final class HeunState extends SigmaState {
    private final double[] prevDerivative;
    private final double[] saved;
    private double dt = Double.NaN;

    HeunState(DiffusersSampler s, SamplingPlan plan, float[] noise) {
        super(s, plan, noise);
        prevDerivative = new double[size];
        saved = new double[size];
    }

    @Override
    void step(float[] eps) {
        boolean v = cfg.vPrediction();
        boolean clip = cfg.clipSample;
        double r = cfg.clipSampleRange;
        if (Double.isNaN(dt)) {
            double sigma = plan.sigma(k);
            double next = plan.sigma(k + 1);
            double h = next - sigma;
            for (int i = 0; i < size; i++) {
                double xi = x[i];
                double x0 = SigmaMath.denoised(xi, eps[i], sigma, v);
                if (clip) {
                    x0 = Math.max(-r, Math.min(r, x0));
                }
                double d = clip || v ? (xi - x0) / sigma : eps[i];
                prevDerivative[i] = d;
                saved[i] = xi;
                x[i] = xi + d * h;
            }
            dt = h;
        } else {
            double next = plan.sigma(k);
            for (int i = 0; i < size; i++) {
                double xi = x[i];
                double x0 = SigmaMath.denoised(xi, eps[i], next, v);
                if (clip) {
                    x0 = Math.max(-r, Math.min(r, x0));
                }
                double d = clip || v ? (xi - x0) / next : eps[i];
                x[i] = saved[i] + (prevDerivative[i] + d) / 2 * dt;
            }
            dt = Double.NaN;
        }
    }
}
