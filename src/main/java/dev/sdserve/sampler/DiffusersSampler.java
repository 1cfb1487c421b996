package dev.sdserve.sampler;

import dev.sdserve.sampler.ResolvedConfig.Family;

import java.util.Objects;
import java.util.concurrent.ConcurrentHashMap;

/**
 * A sampler that computes what one diffusers scheduler class computes, for one {@link SchedulerConfig}.
 * Immutable and thread-safe; every trajectory lives in its own {@link SamplerState}. Create through {@link Samplers}.
 */
public final class DiffusersSampler implements Sampler {
    private final String id;
    private final String displayName;
    private final boolean stochastic;
    private final SchedulerConfig config;
    final ResolvedConfig cfg;
    final NoiseSchedule schedule;
    private final ConcurrentHashMap<Integer, SamplingPlan> plans = new ConcurrentHashMap<>();

    DiffusersSampler(String id, String displayName, Family family, boolean stochastic, SchedulerConfig config) {
        this.id = id;
        this.displayName = displayName;
        this.stochastic = stochastic;
        this.config = config;
        this.cfg = new ResolvedConfig(family, config);
        this.schedule = NoiseSchedule.of(cfg);
        if (family == Family.DPM_MULTISTEP && !cfg.algorithmType.endsWith("dpmsolver++") && cfg.finalSigmasType.equals("zero")) {
            throw new IllegalArgumentException("final_sigmas_type 'zero' is not supported for algorithm_type "
                    + cfg.algorithmType + "; use 'sigma_min'");
        }
        if (family == Family.UNIPC && !cfg.predictX0 && cfg.finalSigmasType.equals("zero")) {
            // the noise-prediction update to sigma = 0 multiplies 0 by infinity
            throw new IllegalArgumentException("final_sigmas_type 'zero' is not supported for UniPC with predict_x0=false; use 'sigma_min'");
        }
    }

    @Override
    public String id() {
        return id;
    }

    @Override
    public String displayName() {
        return displayName;
    }

    /** Whether the trajectory draws noise at every step (ancestral / SDE samplers). */
    public boolean stochastic() {
        return stochastic;
    }

    /** The config as given (keys not given take the diffusers class defaults). */
    public SchedulerConfig config() {
        return config;
    }

    /** The diffusers scheduler class this sampler reproduces, e.g. "EulerDiscreteScheduler". */
    public String diffusersClass() {
        return cfg.family.diffusersClass;
    }

    @Override
    public int evaluations(int steps) {
        return plan(steps).evaluations();
    }

    /** Timesteps, sigmas and initial noise sigma for {@code steps} inference steps (as diffusers' set_timesteps). */
    public SamplingPlan plan(int steps) {
        if (steps < 1) {
            throw new IllegalArgumentException("steps must be at least 1, got " + steps);
        }
        if (steps > cfg.numTrainTimesteps) {
            throw new IllegalArgumentException("steps (" + steps + ") cannot exceed num_train_timesteps (" + cfg.numTrainTimesteps + ")");
        }
        return plans.computeIfAbsent(steps, this::checkedPlan);
    }

    private SamplingPlan checkedPlan(int steps) {
        SamplingPlan p = computePlan(steps);
        if (cfg.family == Family.DDIM || cfg.family == Family.PNDM) {
            for (double t : p.timesteps()) {
                if (t < 0 || t >= cfg.numTrainTimesteps) {
                    // (diffusers fails with an IndexError here)
                    throw new IllegalArgumentException(steps + " steps with timestep_spacing " + cfg.timestepSpacing
                            + " and steps_offset " + cfg.stepsOffset + " give timestep " + (long) t
                            + ", outside the " + cfg.numTrainTimesteps + " training timesteps; use fewer steps");
                }
            }
        }
        return p;
    }

    @Override
    public SamplerState start(int steps, float[] initialNoise, NoiseSource noise) {
        Objects.requireNonNull(initialNoise, "initialNoise");
        if (initialNoise.length == 0) {
            throw new IllegalArgumentException("initialNoise is empty");
        }
        if (stochastic && noise == null) {
            throw new IllegalArgumentException("sampler " + id + " is stochastic and needs a NoiseSource");
        }
        return start(plan(steps), steps, initialNoise, noise);
    }

    /** Model evaluations per inference step of the schedule (diffusers' {@code scheduler.order}: Heun 2, else 1). */
    public int order() {
        return cfg.family == Family.HEUN ? 2 : 1;
    }

    /**
     * How a denoising strength cuts the schedule of {@code steps} steps (diffusers' {@code get_timesteps}).
     *
     * @throws IllegalArgumentException for a strength outside (0, 1], or one that keeps no step (diffusers refuses
     *                                  it too: "the number of pipeline steps is 0")
     */
    public StrengthCut strengthCut(int steps, double strength) {
        if (!(strength > 0 && strength <= 1)) {
            throw new IllegalArgumentException("strength must be in (0, 1], got " + strength);
        }
        SamplingPlan p = plan(steps);
        int kept = Math.min((int) (steps * strength), steps); // Python's int() of the float product
        if (kept < 1) {
            throw new IllegalArgumentException("strength " + strength + " with " + steps + " steps runs no step (int("
                    + steps + " × " + strength + ") = 0); raise the strength to at least " + minimumStrength(steps)
                    + " or use more steps");
        }
        int begin = (steps - kept) * order();
        if (begin >= p.evaluations()) {
            throw new IllegalStateException(id + ": begin index " + begin + " outside " + p.evaluations() + " evaluations");
        }
        return new StrengthCut(steps, strength, kept, begin, p.evaluations() - begin, p.timestep(begin));
    }

    /** The smallest strength that keeps one of {@code steps} steps. */
    static double minimumStrength(int steps) {
        return Math.ceil(1000.0 / steps) / 1000.0;
    }

    @Override
    public SamplerState start(int steps, ImageInit init, NoiseSource noise) {
        Objects.requireNonNull(init, "init");
        if (stochastic && noise == null) {
            throw new IllegalArgumentException("sampler " + id + " is stochastic and needs a NoiseSource");
        }
        StrengthCut cut = strengthCut(steps, init.strength());
        SamplingPlan p = plan(steps);
        BaseState s;
        if (init.pureNoiseAtFull() && init.strength() == 1.0) {
            s = (BaseState) start(p, steps, init.noise(), noise); // noise · init_noise_sigma, as txt2img
        } else {
            s = (BaseState) start(p, steps, init.noise(), noise);
            s.resume(cut.beginIndex(), addNoise(p, cut.beginIndex(), init.imageLatent(), init.noise()));
        }
        if (init.blendMask() != null) {
            s.blendAfterEveryStep(init.imageLatent(), init.noise(), init.blendMask());
        }
        return s;
    }

    /**
     * The scheduler's {@code add_noise} of {@code original} with {@code noise} at the noise level of plan evaluation
     * {@code index}, in the sampler's own parameterisation (float32 as diffusers computes it): DDIM/PLMS
     * √ᾱ_t·x0 + √(1−ᾱ_t)·n with t the evaluation's timestep; the σ samplers (Euler, Euler a, LMS, Heun) x0 + σ·n;
     * DPM-Solver and UniPC α_σ·x0 + σ·α_σ·n with α_σ = 1/√(σ² + 1).
     */
    public float[] addNoise(int steps, int index, float[] original, float[] noise) {
        return addNoise(plan(steps), index, original, noise);
    }

    float[] addNoise(SamplingPlan p, int index, float[] original, float[] noise) {
        if (original.length != noise.length) {
            throw new IllegalArgumentException("original has " + original.length + " floats, noise " + noise.length);
        }
        float a, b;
        switch (cfg.family) {
            case DDIM, PNDM -> {
                float ac = (float) schedule.alphasCumprod[(int) p.timestep(index)];
                a = (float) Math.sqrt(ac);
                b = (float) Math.sqrt(1f - ac);
            }
            case EULER, EULER_ANCESTRAL, LMS, HEUN -> {
                a = 1f;
                b = (float) p.sigma(index);
            }
            default -> {
                float sigma = (float) p.sigma(index);
                a = (float) (1.0 / Math.sqrt((double) (sigma * sigma + 1f)));
                b = sigma * a;
            }
        }
        float[] out = new float[original.length];
        for (int i = 0; i < out.length; i++) {
            out[i] = a * original[i] + b * noise[i];
        }
        return out;
    }

    /** Starts a trajectory on a given plan (tests drive the solvers on grids of their own). */
    SamplerState start(SamplingPlan p, int steps, float[] initialNoise, NoiseSource noise) {
        return switch (cfg.family) {
            case PNDM -> new PlmsState(this, p, steps, initialNoise);
            case DDIM -> new DdimState(this, p, steps, initialNoise);
            case EULER -> new EulerState(this, p, initialNoise);
            case EULER_ANCESTRAL -> new EulerAncestralState(this, p, initialNoise, noise);
            case LMS -> new LmsState(this, p, initialNoise);
            case HEUN -> new HeunState(this, p, initialNoise);
            case DPM_MULTISTEP -> new DpmSolverState(this, p, initialNoise, noise);
            case UNIPC -> new UniPcState(this, p, initialNoise);
        };
    }

    // ---------------------------------------------------------------------------------------------------------
    // set_timesteps of each diffusers class

    private SamplingPlan computePlan(int steps) {
        return switch (cfg.family) {
            case PNDM -> plmsPlan(steps);
            case DDIM -> new SamplingPlan(ddimTimesteps(steps), new double[0], 1.0);
            case EULER, EULER_ANCESTRAL, LMS, HEUN -> sigmaPlan(steps);
            case DPM_MULTISTEP, UNIPC -> multistepPlan(steps);
        };
    }

    private int n() {
        return cfg.numTrainTimesteps;
    }

    private SamplingPlan plmsPlan(int steps) {
        double[] asc; // ascending _timesteps
        switch (cfg.timestepSpacing) {
            case "linspace" -> {
                double[] l = NoiseSchedule.numpyLinspace(0, n() - 1, steps);
                asc = new double[steps];
                for (int i = 0; i < steps; i++) {
                    asc[i] = Math.rint(l[i]);
                }
            }
            case "leading" -> {
                int ratio = n() / steps;
                asc = new double[steps];
                for (int i = 0; i < steps; i++) {
                    asc[i] = (double) i * ratio + cfg.stepsOffset;
                }
            }
            default -> { // trailing
                double[] a = NoiseSchedule.numpyArangeDown(n(), 0, -(double) n() / steps);
                asc = new double[a.length];
                for (int i = 0; i < a.length; i++) {
                    asc[i] = Math.rint(a[a.length - 1 - i]) - 1;
                }
            }
        }
        int m = asc.length;
        double[] plms;
        if (m >= 2) {
            plms = new double[m + 1];
            // concatenate([ts[:-1], ts[-2:-1], ts[-1:]]) reversed
            double[] fwd = new double[m + 1];
            System.arraycopy(asc, 0, fwd, 0, m - 1);
            fwd[m - 1] = asc[m - 2];
            fwd[m] = asc[m - 1];
            for (int i = 0; i <= m; i++) {
                plms[i] = fwd[m - i];
            }
        } else {
            plms = asc.clone();
        }
        return new SamplingPlan(plms, new double[0], 1.0);
    }

    private double[] ddimTimesteps(int steps) {
        double[] ts = new double[steps];
        switch (cfg.timestepSpacing) {
            case "linspace" -> {
                double[] l = NoiseSchedule.numpyLinspace(0, n() - 1, steps);
                for (int i = 0; i < steps; i++) {
                    ts[i] = Math.rint(l[steps - 1 - i]);
                }
            }
            case "leading" -> {
                int ratio = n() / steps;
                for (int i = 0; i < steps; i++) {
                    ts[i] = (double) (steps - 1 - i) * ratio + cfg.stepsOffset;
                }
            }
            default -> {
                double[] a = NoiseSchedule.numpyArangeDown(n(), 0, -(double) n() / steps);
                ts = new double[a.length];
                for (int i = 0; i < a.length; i++) {
                    ts[i] = Math.rint(a[i]) - 1;
                }
            }
        }
        return ts;
    }

    /** Euler, Euler ancestral, LMS and Heun (float32 timesteps, sigmas interpolated from the training table). */
    private SamplingPlan sigmaPlan(int steps) {
        double[] ts = new double[steps];
        switch (cfg.timestepSpacing) {
            case "linspace" -> {
                double[] l = NoiseSchedule.numpyLinspace(0, n() - 1, steps);
                for (int i = 0; i < steps; i++) {
                    ts[i] = (float) l[steps - 1 - i];
                }
            }
            case "leading" -> {
                int ratio = n() / steps;
                for (int i = 0; i < steps; i++) {
                    ts[i] = (float) ((double) (steps - 1 - i) * ratio) + cfg.stepsOffset;
                }
            }
            default -> {
                double[] a = NoiseSchedule.numpyArangeDown(n(), 0, -(double) n() / steps);
                ts = new double[a.length];
                for (int i = 0; i < a.length; i++) {
                    ts[i] = (float) Math.rint(a[i]) - 1;
                }
            }
        }
        int m = ts.length;
        double[] sig = new double[m];
        for (int i = 0; i < m; i++) {
            sig[i] = schedule.sigmaAt(ts[i]);
        }
        if (cfg.useKarrasSigmas) {
            double smin = cfg.sigmaMin != null ? cfg.sigmaMin : sig[m - 1];
            double smax = cfg.sigmaMax != null ? cfg.sigmaMax : sig[0];
            sig = NoiseSchedule.karras(smin, smax, m);
            for (int i = 0; i < m; i++) {
                ts[i] = (float) schedule.sigmaToT(sig[i]);
            }
        }
        double last = cfg.finalSigmasType.equals("sigma_min") ? schedule.sigmas[0] : 0.0;
        double[] sigmas = new double[m + 1];
        for (int i = 0; i < m; i++) {
            sigmas[i] = (float) sig[i];
        }
        sigmas[m] = (float) last;
        double maxSigma = 0;
        for (double s : sigmas) {
            maxSigma = Math.max(maxSigma, s);
        }
        double init = cfg.timestepSpacing.equals("leading")
                ? (float) Math.sqrt((float) ((float) maxSigma * (float) maxSigma + 1.0f))
                : maxSigma;
        if (cfg.family == Family.EULER && cfg.timestepType.equals("continuous") && cfg.vPrediction()) {
            for (int i = 0; i < m; i++) {
                ts[i] = (float) (0.25 * Math.log((float) sigmas[i]));
            }
        }
        if (cfg.family == Family.HEUN) {
            double[] hts = new double[2 * m - 1];
            double[] hs = new double[2 * m];
            hts[0] = ts[0];
            for (int i = 1; i < m; i++) {
                hts[2 * i - 1] = ts[i];
                hts[2 * i] = ts[i];
            }
            hs[0] = sigmas[0];
            for (int i = 1; i < m; i++) {
                hs[2 * i - 1] = sigmas[i];
                hs[2 * i] = sigmas[i];
            }
            hs[2 * m - 1] = sigmas[m];
            return new SamplingPlan(hts, hs, init);
        }
        return new SamplingPlan(ts, sigmas, init);
    }

    /** DPM-Solver multistep and UniPC (integer timesteps, VP sample). */
    private SamplingPlan multistepPlan(int steps) {
        int last = n();
        if (cfg.family == Family.DPM_MULTISTEP && cfg.lambdaMinClipped > Double.NEGATIVE_INFINITY) {
            // searchsorted(flip(lambda_t), lambda_min_clipped): lambda_t decreases with t
            int clipped = 0;
            for (int t = n() - 1; t >= 0; t--) {
                double ac = schedule.alphasCumprod[t];
                double lambda = (float) ((float) Math.log((float) Math.sqrt(ac)) - (float) Math.log((float) Math.sqrt((float) (1.0f - (float) ac))));
                if (lambda < cfg.lambdaMinClipped) {
                    clipped++;
                } else {
                    break;
                }
            }
            last = n() - clipped;
        }
        double[] ts;
        switch (cfg.timestepSpacing) {
            case "linspace" -> {
                double[] l = NoiseSchedule.numpyLinspace(0, last - 1, steps + 1);
                ts = new double[steps];
                for (int i = 0; i < steps; i++) {
                    ts[i] = Math.rint(l[steps - i]);
                }
            }
            case "leading" -> {
                int ratio = last / (steps + 1);
                ts = new double[steps];
                for (int i = 0; i < steps; i++) {
                    ts[i] = (double) (steps - i) * ratio + cfg.stepsOffset;
                }
            }
            default -> {
                double[] a = NoiseSchedule.numpyArangeDown(last, 0, -(double) n() / steps);
                ts = new double[a.length];
                for (int i = 0; i < a.length; i++) {
                    ts[i] = Math.rint(a[i]) - 1;
                }
            }
        }
        int m = ts.length;
        double[] sig = new double[m];
        double sigmaLast;
        if (cfg.useKarrasSigmas) {
            double smin = cfg.family == Family.UNIPC && cfg.sigmaMin != null ? cfg.sigmaMin : schedule.sigmas[0];
            double smax = cfg.family == Family.UNIPC && cfg.sigmaMax != null ? cfg.sigmaMax : schedule.sigmas[n() - 1];
            sig = NoiseSchedule.karras(smin, smax, m);
            for (int i = 0; i < m; i++) {
                ts[i] = Math.rint(schedule.sigmaToT(sig[i]));
            }
            sigmaLast = cfg.finalSigmasType.equals("sigma_min") ? sig[m - 1] : 0.0;
        } else {
            for (int i = 0; i < m; i++) {
                sig[i] = schedule.sigmaAt(ts[i]);
            }
            sigmaLast = cfg.finalSigmasType.equals("sigma_min") ? schedule.sigmas[0] : 0.0;
        }
        double[] sigmas = new double[m + 1];
        for (int i = 0; i < m; i++) {
            sigmas[i] = (float) sig[i];
        }
        sigmas[m] = (float) sigmaLast;
        return new SamplingPlan(ts, sigmas, 1.0);
    }

    @Override
    public String toString() {
        return "Sampler[" + id + " \"" + displayName + "\" " + cfg.family.diffusersClass + " " + config + "]";
    }
}
