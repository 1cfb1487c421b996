package dev.sdserve.sampler;

/**
 * LMSDiscreteScheduler (order 4): linear multistep over the derivative history, the coefficients being integrals of
 * Lagrange polynomials over [σ_i, σ_{i+1}] (diffusers uses scipy quad; they are exact here by Gauss–Legendre).
 */
final class LmsState extends SigmaState {
    static final int ORDER = 4;
    private static final double[] GL_X = {-0.8611363115940526, -0.3399810435848563, 0.3399810435848563, 0.8611363115940526};
    private static final double[] GL_W = {0.3478548451374538, 0.6521451548625461, 0.6521451548625461, 0.3478548451374538};

    private final double[][] derivatives = new double[ORDER][];
    private int count;
    private final double[] coeffs = new double[ORDER];

    LmsState(DiffusersSampler s, SamplingPlan plan, float[] noise) {
        super(s, plan, noise);
    }

    @Override
    void step(float[] eps) {
        double sigma = plan.sigma(k);
        boolean v = cfg.vPrediction();
        double[] d;
        if (count == ORDER) {
            d = derivatives[0];
            System.arraycopy(derivatives, 1, derivatives, 0, ORDER - 1);
            count--;
        } else {
            d = new double[size];
        }
        for (int i = 0; i < size; i++) {
            d[i] = SigmaMath.derivative(x[i], eps[i], sigma, v);
        }
        derivatives[count++] = d;
        int order = Math.min(k + 1, ORDER);
        for (int c = 0; c < order; c++) {
            coeffs[c] = coefficient(order, k, c);
        }
        // diffusers zips the coefficients with the derivatives it has: a trajectory that starts mid-schedule
        // (img2img) uses the order-(step_index + 1) coefficients with fewer derivatives than coefficients
        int terms = Math.min(order, count);
        for (int i = 0; i < size; i++) {
            double acc = 0;
            for (int c = 0; c < terms; c++) {
                acc += coeffs[c] * derivatives[count - 1 - c][i];
            }
            x[i] += acc;
        }
    }

    /** ∫_{σ_t}^{σ_{t+1}} Π_{j≠cur} (τ − σ_{t−j}) / (σ_{t−cur} − σ_{t−j}) dτ. */
    private double coefficient(int order, int t, int cur) {
        double a = plan.sigma(t), b = plan.sigma(t + 1);
        double half = (b - a) / 2, mid = (a + b) / 2;
        double sum = 0;
        for (int q = 0; q < GL_X.length; q++) {
            double tau = mid + half * GL_X[q];
            double prod = 1.0;
            for (int j = 0; j < order; j++) {
                if (j == cur) {
                    continue;
                }
                prod *= (tau - plan.sigma(t - j)) / (plan.sigma(t - cur) - plan.sigma(t - j));
            }
            sum += GL_W[q] * prod;
        }
        return sum * half;
    }
}
