package dev.sdserve.sampler;

/**
 * The exact model of Gaussian data: for x0 ~ N(0, s²·I) and the VP forward process x_t = √ᾱ·x0 + √(1−ᾱ)·ε, the
 * minimum-mean-squared-error predictions are linear in x_t:
 * <pre>
 *   E[ε | x_t]  = √(1−ᾱ) / (ᾱ s² + 1 − ᾱ) · x_t
 *   E[x0 | x_t] = √ᾱ s²  / (ᾱ s² + 1 − ᾱ) · x_t
 *   v = √ᾱ·ε − √(1−ᾱ)·x0 (so E[v | x_t] follows)
 * </pre>
 * In the VE variable z = x_t/√ᾱ with σ² = (1−ᾱ)/ᾱ the probability-flow ODE is dz/dσ = E[ε|z] = σ z/(s² + σ²), whose
 * solution is z(σ) = z(σ₀)·√((s² + σ²)/(s² + σ₀²)); in VP terms x ∝ √((s² + σ²)/(1 + σ²)).
 *
 * <p>The schedule here is computed in plain double precision, independently of {@link NoiseSchedule}; fractional
 * timesteps interpolate log σ linearly (the inverse of diffusers' sigma_to_t).
 */
final class AnalyticModel {
    final double s2;
    final double[] logSigma;
    final double[] ac;
    final boolean vPrediction;

    AnalyticModel(double s, boolean vPrediction) {
        this.s2 = s * s;
        this.ac = alphasCumprod(0.00085, 0.012, 1000);
        this.logSigma = new double[ac.length];
        for (int i = 0; i < ac.length; i++) {
            logSigma[i] = Math.log(Math.sqrt((1 - ac[i]) / ac[i]));
        }
        this.vPrediction = vPrediction;
    }

    static double[] alphasCumprod(double b0, double b1, int n) {
        double[] ac = new double[n];
        double a = 1;
        double lo = Math.sqrt(b0), hi = Math.sqrt(b1);
        for (int i = 0; i < n; i++) {
            double sb = lo + (hi - lo) * i / (n - 1);
            a *= 1 - sb * sb;
            ac[i] = a;
        }
        return ac;
    }

    double sigma(double t) {
        int i = (int) Math.floor(t);
        if (i >= logSigma.length - 1) {
            return Math.exp(logSigma[logSigma.length - 1]);
        }
        double w = t - i;
        return Math.exp((1 - w) * logSigma[i] + w * logSigma[i + 1]);
    }

    /** The fractional timestep of a sigma (inverse of {@link #sigma}). */
    double timestepOf(double sigma) {
        double l = Math.log(sigma);
        if (l <= logSigma[0]) {
            return 0;
        }
        for (int i = 0; i < logSigma.length - 1; i++) {
            if (l <= logSigma[i + 1]) {
                return i + (l - logSigma[i]) / (logSigma[i + 1] - logSigma[i]);
            }
        }
        return logSigma.length - 1;
    }

    float[] predict(float[] x, double t) {
        double sg = sigma(t);
        double abar = 1 / (1 + sg * sg);
        double den = abar * s2 + 1 - abar;
        double ce = Math.sqrt(1 - abar) / den;
        double cx0 = Math.sqrt(abar) * s2 / den;
        double c = vPrediction ? Math.sqrt(abar) * ce - Math.sqrt(1 - abar) * cx0 : ce;
        float[] out = new float[x.length];
        for (int i = 0; i < x.length; i++) {
            out[i] = (float) (c * x[i]);
        }
        return out;
    }

    /** x_end / x_start along the exact ODE, VP parameterisation. */
    double vpRatio(double sigmaStart, double sigmaEnd) {
        return Math.sqrt((s2 + sigmaEnd * sigmaEnd) / (1 + sigmaEnd * sigmaEnd))
                / Math.sqrt((s2 + sigmaStart * sigmaStart) / (1 + sigmaStart * sigmaStart));
    }

    /** z_end / z_start along the exact ODE, VE parameterisation. */
    double veRatio(double sigmaStart, double sigmaEnd) {
        return Math.sqrt((s2 + sigmaEnd * sigmaEnd) / (s2 + sigmaStart * sigmaStart));
    }
}
