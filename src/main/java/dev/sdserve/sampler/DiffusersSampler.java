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
