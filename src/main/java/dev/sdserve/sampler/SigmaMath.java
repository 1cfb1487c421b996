package dev.sdserve.sampler;

/** Element-wise math shared by the sigma-parameterised (k-diffusion style) samplers. */
final class SigmaMath {
    private SigmaMath() {
    }

    /** The derivative d = (x − x̂0)/σ of a model output at noise level sigma. */
    static double derivative(double x, double out, double sigma, boolean v) {
        if (!v) {
            return out; // (x − (x − σ·eps))/σ
        }
        double x0 = out * (-sigma / Math.sqrt(sigma * sigma + 1)) + x / (sigma * sigma + 1);
        return (x - x0) / sigma;
    }

    /** x̂0 of a model output at noise level sigma. */
    static double denoised(double x, double out, double sigma, boolean v) {
        if (!v) {
            return x - sigma * out;
        }
        return out * (-sigma / Math.sqrt(sigma * sigma + 1)) + x / (sigma * sigma + 1);
    }

    static void eulerStep(double[] x, float[] eps, double sigma, double dt, boolean v) {
        for (int i = 0; i < x.length; i++) {
            x[i] += derivative(x[i], eps[i], sigma, v) * dt;
        }
    }
}
