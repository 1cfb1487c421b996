package dev.sdserve.sampler;

import java.util.Arrays;

/**
 * The training noise schedule (betas → alphas_cumprod → sigmas) of a diffusers scheduler, reproduced bit for bit.
 *
 * <p>diffusers builds the schedule in float32 torch ops ({@code torch.linspace}, {@code ** 2}, {@code 1 - betas},
 * {@code torch.cumprod}, which accumulates in double on the CPU), then converts sigmas to float32 numpy arrays. The
 * timesteps of the Karras variants depend on the last bit of these tables, so this class emulates the float32
 * rounding of each op (including the 8-wide vectorised {@code linspace} kernel of torch's AVX2 build) instead of
 * computing the schedule in double. Everything is stored as doubles holding float32 values.
 */
final class NoiseSchedule {
    /** Width of torch's vectorised float linspace kernel (AVX2: 8 floats; AVX-512 gives the same values here). */
    private static final int TORCH_VEC_FLOATS = 8;

    final int numTrainTimesteps;
    /** alphas_cumprod[t] (float32 values). */
    final double[] alphasCumprod;
    /** sqrt((1 - ac) / ac) per training timestep, float32 values, ascending in t. */
    final double[] sigmas;
    /** log(sigmas), float32 values (numpy float32 log). */
    final double[] logSigmas;

    NoiseSchedule(int numTrainTimesteps, double[] betasF32) {
        this.numTrainTimesteps = numTrainTimesteps;
        int n = numTrainTimesteps;
        alphasCumprod = new double[n];
        double acc = 1.0;
        for (int i = 0; i < n; i++) {
            float alpha = 1.0f - (float) betasF32[i];
            acc *= alpha;                      // torch.cumprod on CPU accumulates in double
            alphasCumprod[i] = (float) acc;
        }
        sigmas = new double[n];
        logSigmas = new double[n];
        for (int i = 0; i < n; i++) {
            float ac = (float) alphasCumprod[i];
            float ratio = (float) ((double) (1.0f - ac) / (double) ac);
            float s = (float) Math.sqrt(ratio);
            sigmas[i] = s;
            logSigmas[i] = (float) Math.log(s);
        }
    }

    static NoiseSchedule of(ResolvedConfig c) {
        int n = c.numTrainTimesteps;
        double[] betas = new double[n];
        if (c.trainedBetas != null) {
            if (c.trainedBetas.length != n) {
                throw new IllegalArgumentException("trained_betas has " + c.trainedBetas.length + " values, num_train_timesteps is " + n);
            }
            for (int i = 0; i < n; i++) {
                betas[i] = (float) c.trainedBetas[i];
            }
            return new NoiseSchedule(n, betas);
        }
        switch (c.betaSchedule) {
            case "linear" -> {
                float[] l = torchLinspace((float) c.betaStart, (float) c.betaEnd, n);
                for (int i = 0; i < n; i++) {
                    betas[i] = l[i];
                }
            }
            case "scaled_linear" -> {
                float[] l = torchLinspace((float) Math.sqrt(c.betaStart), (float) Math.sqrt(c.betaEnd), n);
                for (int i = 0; i < n; i++) {
                    betas[i] = l[i] * l[i];
                }
            }
            case "squaredcos_cap_v2" -> {
                // betas_for_alpha_bar(cosine): computed in double, then torch.tensor(..., float32)
                for (int i = 0; i < n; i++) {
                    double t1 = (double) i / n;
                    double t2 = (double) (i + 1) / n;
                    double b = Math.min(1 - cosAlphaBar(t2) / cosAlphaBar(t1), 0.999);
                    betas[i] = (float) b;
                }
            }
            default -> throw new IllegalArgumentException("unsupported beta_schedule '" + c.betaSchedule
                    + "' (supported: linear, scaled_linear, squaredcos_cap_v2)");
        }
        return new NoiseSchedule(n, betas);
    }

    private static double cosAlphaBar(double t) {
        double c = Math.cos((t + 0.008) / 1.008 * Math.PI / 2);
        return c * c;
    }

    /** torch.linspace(start, end, steps, dtype=float32) on the CPU, vectorised kernel included. */
    static float[] torchLinspace(float start, float end, int steps) {
        float[] out = new float[steps];
        if (steps == 1) {
            out[0] = start;
            return out;
        }
        float step = (end - start) / (float) (steps - 1);
        int halfway = steps / 2;
        int idx = 0;
        while (idx < steps) {
            if (steps - idx >= TORCH_VEC_FLOATS) {
                float base = idx < halfway ? start + step * (float) idx : end - step * (float) (steps - idx - 1);
                for (int j = 0; j < TORCH_VEC_FLOATS; j++) {
                    out[idx + j] = base + (float) j * step;
                }
                idx += TORCH_VEC_FLOATS;
            } else {
                for (; idx < steps; idx++) {
                    out[idx] = idx < halfway ? start + step * (float) idx : end - step * (float) (steps - idx - 1);
                }
            }
        }
        return out;
    }

    /** numpy.interp(x, arange(n), sigmas): linear interpolation of the sigma table at a (fractional) timestep. */
    double sigmaAt(double t) {
        return interp(t, sigmas);
    }

    static double interp(double x, double[] fp) {
        int n = fp.length;
        if (Double.isNaN(x)) {
            return x;
        }
        if (x <= 0) {
            return fp[0];
        }
        if (x >= n - 1) {
            return fp[n - 1];
        }
        int j = (int) Math.floor(x);
        if (x == j) {
            return fp[j];
        }
        double slope = (fp[j + 1] - fp[j]) / 1.0;
        return slope * (x - j) + fp[j];
    }

    /** diffusers' _sigma_to_t: the fractional timestep whose log-sigma interpolates to {@code sigma}. */
    double sigmaToT(double sigma) {
        double logSigma = Math.log(Math.max(sigma, 1e-10));
        int n = logSigmas.length;
        // low_idx = last index with log_sigmas[i] <= log_sigma (argmax of the cumsum), 0 if none, at most n - 2
        int low = 0;
        int count = 0;
        int best = 0;
        for (int i = 0; i < n; i++) {
            if (logSigma - logSigmas[i] >= 0) {
                count++;
                if (count > best) {
                    best = count;
                    low = i;
                }
            }
        }
        low = Math.min(low, n - 2);
        int high = low + 1;
        double lo = logSigmas[low];
        double hi = logSigmas[high];
        double w = (lo - logSigma) / (lo - hi);
        w = Math.max(0, Math.min(1, w));
        return (1 - w) * low + w * high;
    }

    /** Karras et al. (2022) sigmas, rho = 7, as diffusers' _convert_to_karras (float64). */
    static double[] karras(double sigmaMin, double sigmaMax, int steps) {
        double rho = 7.0;
        double minInv = Math.pow(sigmaMin, 1 / rho);
        double maxInv = Math.pow(sigmaMax, 1 / rho);
        double[] ramp = numpyLinspace(0, 1, steps);
        double[] out = new double[steps];
        for (int i = 0; i < steps; i++) {
            out[i] = Math.pow(maxInv + ramp[i] * (minInv - maxInv), rho);
        }
        return out;
    }

    /** numpy.linspace(start, stop, num) in float64 (endpoint included). */
    static double[] numpyLinspace(double start, double stop, int num) {
        double[] y = new double[num];
        if (num == 1) {
            y[0] = start;
            return y;
        }
        double step = (stop - start) / (num - 1);
        for (int i = 0; i < num; i++) {
            y[i] = i * step + start;
        }
        y[num - 1] = stop;
        return y;
    }

    /** numpy.arange(start, stop, step) for a negative float step. */
    static double[] numpyArangeDown(double start, double stop, double step) {
        int len = (int) Math.ceil((stop - start) / step);
        double[] out = new double[Math.max(len, 0)];
        for (int i = 0; i < out.length; i++) {
            out[i] = start + i * step;
        }
        return out;
    }

    static double[] reversed(double[] a) {
        double[] r = Arrays.copyOf(a, a.length);
        for (int i = 0, j = a.length - 1; i < j; i++, j--) {
            double t = r[i];
            r[i] = r[j];
            r[j] = t;
        }
        return r;
    }
}
