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
    /** x̂0 of evaluation {@link #denoisedAt} (float32, as the golden sets compute it). */
    private final float[] denoised;
    private int denoisedAt = -1;
    /** Index of the next evaluation in the plan (diffusers' step_index). */
    int k;
    /** The plan index the trajectory started at (diffusers' begin_index: 0, or later for img2img). */
    int begin;
    /** 4-channel inpainting: image latent, noise and latent mask of the blend after every step (null: none). */
    private float[] blendLatent, blendNoise, blendMask;

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
        this.denoised = new float[size];
    }

    /**
     * Restarts the trajectory at plan index {@code beginIndex} from a latent already at that noise level (img2img:
     * diffusers' {@code set_begin_index} with the noised image latent); the state must be fresh.
     */
    final void resume(int beginIndex, float[] startLatent) {
        if (k != begin) {
            throw new IllegalStateException("resume on a trajectory already under way");
        }
        if (beginIndex < 0 || beginIndex >= plan.evaluations()) {
            throw new IllegalArgumentException("begin index " + beginIndex + " outside the plan's " + plan.evaluations() + " evaluations");
        }
        if (startLatent.length != size) {
            throw new IllegalArgumentException("start latent has " + startLatent.length + " floats, the latent " + size);
        }
        for (int i = 0; i < size; i++) {
            x[i] = startLatent[i];
        }
        k = beginIndex;
        begin = beginIndex;
    }

    /**
     * Makes every step end with diffusers' 4-channel inpainting blend: x = (1 − m)·known + m·x, where known is the
     * image latent re-noised to the noise level of the next evaluation ({@code scheduler.add_noise} with the next
     * timestep), or the clean image latent once the trajectory is done. {@code mask} is 1 where the model repaints;
     * one value per latent cell (broadcast over channels) or one per latent value.
     */
    final void blendAfterEveryStep(float[] imageLatent, float[] noise, float[] mask) {
        this.blendLatent = imageLatent.clone();
        this.blendNoise = noise.clone();
        this.blendMask = mask.clone();
    }

    private void blendKnown(float[] imageLatent, float[] noise, float[] mask) {
        float[] known = done() ? imageLatent : sampler.addNoise(plan, k, imageLatent, noise);
        int cells = mask.length;
        for (int i = 0; i < size; i++) {
            float m = mask[i % cells];
            x[i] = (1f - m) * known[i] + m * (float) x[i];
        }
    }

    @Override
    public final int evaluation() {
        return k - begin;
    }

    @Override
    public final int totalEvaluations() {
        return plan.evaluations() - begin;
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

    @Override
    public final double sigma() {
        checkNotDone();
        return evalSigma(k);
    }

    /**
     * σ of evaluation i: the plan's sigma, or, for the samplers without sigmas (DDIM, PLMS), √((1 − ᾱ_t)/ᾱ_t) of
     * its timestep (in float64, then rounded to float32, as the golden sets have it).
     */
    double evalSigma(int i) {
        if (plan.hasSigmas()) {
            return plan.sigma(i);
        }
        double ac = sampler.schedule.alphasCumprod[(int) plan.timestep(i)];
        return (float) Math.sqrt((1 - ac) / ac);
    }

    @Override
    public final float[] denoised() {
        return denoisedAt < 0 ? null : denoised.clone();
    }

    /** As the interface says; a 4-channel inpainting keeps its known region: (1 − m)·image latent + m·x̂0. */
    @Override
    public float[] earlyResult() {
        float[] out = SamplerState.super.earlyResult();
        if (out == null || blendMask == null || done()) {
            return out;
        }
        int cells = blendMask.length;
        for (int i = 0; i < size; i++) {
            float m = blendMask[i % cells];
            out[i] = (1f - m) * blendLatent[i] + m * out[i];
        }
        return out;
    }

    @Override
    public final int denoisedEvaluation() {
        return denoisedAt;
    }

    /**
     * x̂0 of one element from the UNet input {@code in} and the model output {@code out} at noise level σ, in the
     * model's prediction type. Every sampler's UNet input is the variance-preserving sample α·x_σ with
     * α = 1/√(σ²+1) (the sigma samplers scale their x_σ by c_in = α; the timestep samplers hold the VP sample), so one
     * formula serves all: epsilon: x̂0 = in/α − σ·ε; v: x̂0 = α·in − σα·v.
     */
    static double denoisedOf(double in, double out, double sigma, boolean v) {
        double a = 1.0 / Math.sqrt(sigma * sigma + 1.0);
        return v ? a * in - sigma * a * out : in / a - sigma * out;
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
        double c = inputScale();
        double sigma = evalSigma(k);
        boolean v = cfg.vPrediction();
        for (int i = 0; i < size; i++) {
            denoised[i] = (float) denoisedOf((float) (x[i] * c), eps[i], sigma, v);
        }
        denoisedAt = k;
        step(eps);
        k++;
        if (blendMask != null) {
            blendKnown(blendLatent, blendNoise, blendMask);
        }
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
