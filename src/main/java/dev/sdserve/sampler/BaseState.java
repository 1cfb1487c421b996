package dev.sdserve.sampler;

/**
 * Shared machinery of the per-request states: the current sample in double precision, the evaluation counter, the
 * model-input buffer (reused, refreshed after every {@link #advance}) and argument checks.
 */
abstract class BaseState implements SamplerState {
    final DiffusersSampler sampler;
    final ResolvedConfig cfg;
    final SamplingPlan plan;
    final int size;
    /** The current sample x (double precision), in the scheduler's own parameterisation. */
    final double[] x;
    private final float[] input;
    int k;

    BaseState(DiffusersSampler sampler, SamplingPlan plan, float[] initialNoise) {
        this.sampler = sampler;
        this.cfg = sampler.cfg;
        this.plan = plan;
        this.size = initialNoise.length;
        this.x = new double[size];
        double s = (float) plan.initNoiseSigma();
        for (int i = 0; i < size; i++) {
            x[i] = (float) (initialNoise[i] * s);
        }
        this.input = new float[size];
    }

    @Override
    public final int evaluation() {
        return k;
    }

    @Override
    public final int totalEvaluations() {
        return plan.evaluations();
    }

    @Override
    public final boolean done() {
        return k >= plan.evaluations();
    }

    @Override
    public final double timestep() {
        checkNotDone();
        return plan.timestep(k);
    }

    /** The model input scale c_in of evaluation {@link #k} (1 except for the sigma-based samplers). */
    double inputScale() {
        return 1.0;
    }

    @Override
    public final float[] modelInput() {
        checkNotDone();
        double c = inputScale();
        for (int i = 0; i < size; i++) {
            input[i] = (float) (x[i] * c);
        }
        return input;
    }

    @Override
    public final void advance(float[] eps) {
        checkNotDone();
        if (eps == null || eps.length != size) {
            throw new IllegalArgumentException("model output has " + (eps == null ? "no" : eps.length) + " floats, the latent has " + size);
        }
        step(eps);
        k++;
    }

    /** One call of the diffusers scheduler's step() for evaluation {@link #k}; updates {@link #x}. */
    abstract void step(float[] eps);

    @Override
    public final float[] latents() {
        float[] out = new float[size];
        for (int i = 0; i < size; i++) {
            out[i] = (float) x[i];
        }
        return out;
    }

    private void checkNotDone() {
        if (done()) {
            throw new IllegalStateException(sampler.id() + " trajectory is done after " + plan.evaluations() + " evaluations");
        }
    }

    /** (sqrt(1/(σ²+1)), σ/sqrt(σ²+1)): diffusers' _sigma_to_alpha_sigma_t. */
    static double alphaOf(double sigma) {
        return 1.0 / Math.sqrt(sigma * sigma + 1.0);
    }

    static double lambdaOf(double sigma) {
        double a = alphaOf(sigma);
        return Math.log(a) - Math.log(sigma * a);
    }

    static void draw(NoiseSource noise, float[] buf) {
        noise.fill(buf);
    }
}
