package dev.sdserve.sampler;

import java.util.List;

/**
 * A {@link SchedulerConfig} resolved for one diffusers scheduler class: missing keys take that class's defaults,
 * unsupported options are rejected. Immutable.
 */
final class ResolvedConfig {
    /** The diffusers scheduler classes implemented here. */
    enum Family {
        PNDM("PNDMScheduler", "leading"),
        DDIM("DDIMScheduler", "leading"),
        EULER("EulerDiscreteScheduler", "linspace"),
        EULER_ANCESTRAL("EulerAncestralDiscreteScheduler", "linspace"),
        LMS("LMSDiscreteScheduler", "linspace"),
        HEUN("HeunDiscreteScheduler", "linspace"),
        DPM_MULTISTEP("DPMSolverMultistepScheduler", "linspace"),
        UNIPC("UniPCMultistepScheduler", "linspace");

        final String diffusersClass;
        final String defaultSpacing;

        Family(String diffusersClass, String defaultSpacing) {
            this.diffusersClass = diffusersClass;
            this.defaultSpacing = defaultSpacing;
        }

        boolean sigmaBased() {
            return this == EULER || this == EULER_ANCESTRAL || this == LMS || this == HEUN;
        }
    }

    final Family family;
    final int numTrainTimesteps;
    final double betaStart;
    final double betaEnd;
    final String betaSchedule;
    final double[] trainedBetas;
    final int stepsOffset;
    final String timestepSpacing;
    final boolean setAlphaToOne;
    final String predictionType;
    final boolean useKarrasSigmas;
    final Double sigmaMin;
    final Double sigmaMax;
    final String finalSigmasType;
    final String timestepType;
    final boolean clipSample;
    final double clipSampleRange;
    final int solverOrder;
    final String algorithmType;
    final String solverType;
    final boolean lowerOrderFinal;
    final boolean eulerAtFinal;
    final double lambdaMinClipped;
    final boolean predictX0;
    final int[] disableCorrector;

    ResolvedConfig(Family f, SchedulerConfig c) {
        this.family = f;
        numTrainTimesteps = c.integer("num_train_timesteps", 1000);
        if (numTrainTimesteps < 2) {
            throw new IllegalArgumentException("num_train_timesteps must be at least 2, got " + numTrainTimesteps);
        }
        betaStart = c.number("beta_start", 0.0001);
        betaEnd = c.number("beta_end", 0.02);
        betaSchedule = c.string("beta_schedule", "linear");
        trainedBetas = c.numbers("trained_betas");
        stepsOffset = c.integer("steps_offset", 0);
        timestepSpacing = oneOf(c, "timestep_spacing", f.defaultSpacing, "leading", "linspace", "trailing");
        setAlphaToOne = c.bool("set_alpha_to_one", f == Family.DDIM);
        predictionType = oneOf(c, "prediction_type", "epsilon", "epsilon", "v_prediction");
        boolean karrasAllowed = f != Family.PNDM && f != Family.DDIM && f != Family.EULER_ANCESTRAL;
        useKarrasSigmas = karrasAllowed && c.bool("use_karras_sigmas", false);
        sigmaMin = f == Family.EULER || f == Family.UNIPC ? c.optionalNumber("sigma_min") : null;
        sigmaMax = f == Family.EULER || f == Family.UNIPC ? c.optionalNumber("sigma_max") : null;
        boolean hasFinal = f == Family.EULER || f == Family.DPM_MULTISTEP || f == Family.UNIPC;
        finalSigmasType = hasFinal ? oneOf(c, "final_sigmas_type", "zero", "zero", "sigma_min") : "zero";
        timestepType = f == Family.EULER ? oneOf(c, "timestep_type", "discrete", "discrete", "continuous") : "discrete";
        clipSample = (f == Family.DDIM || f == Family.HEUN) && c.bool("clip_sample", f == Family.DDIM);
        clipSampleRange = c.number("clip_sample_range", 1.0);
        solverOrder = c.integer("solver_order", 2);
        algorithmType = f == Family.DPM_MULTISTEP
                ? oneOf(c, "algorithm_type", "dpmsolver++", "dpmsolver++", "sde-dpmsolver++", "dpmsolver", "sde-dpmsolver")
                : "dpmsolver++";
        if (f == Family.UNIPC) {
            solverType = oneOf(c, "solver_type", "bh2", "bh1", "bh2");
        } else if (f == Family.DPM_MULTISTEP) {
            solverType = oneOf(c, "solver_type", "midpoint", "midpoint", "heun");
        } else {
            solverType = null;
        }
        lowerOrderFinal = c.bool("lower_order_final", true);
        eulerAtFinal = c.bool("euler_at_final", false);
        Double lmc = c.optionalNumber("lambda_min_clipped");
        lambdaMinClipped = lmc == null ? Double.NEGATIVE_INFINITY : lmc;
        predictX0 = c.bool("predict_x0", true);
        double[] dc = c.numbers("disable_corrector");
        disableCorrector = dc == null ? new int[0] : java.util.Arrays.stream(dc).mapToInt(d -> (int) d).toArray();

        if (f == Family.PNDM && !c.bool("skip_prk_steps", false)) {
            throw new IllegalArgumentException("PNDM with Runge-Kutta warm-up steps (skip_prk_steps=false) is not supported;"
                    + " use skip_prk_steps=true (PLMS, as Stable Diffusion does)");
        }
        if (f == Family.DPM_MULTISTEP || f == Family.UNIPC) {
            int max = f == Family.DPM_MULTISTEP && algorithmType.startsWith("sde") ? 2 : 3;
            if (solverOrder < 1 || solverOrder > max) {
                throw new IllegalArgumentException("solver_order " + solverOrder + " is not supported for "
                        + f.diffusersClass + (f == Family.DPM_MULTISTEP ? " " + algorithmType : "") + " (1.." + max + ")");
            }
        }
        rejectIfTrue(c, "thresholding");
        rejectIfTrue(c, "rescale_betas_zero_snr");
        rejectIfTrue(c, "use_exponential_sigmas");
        rejectIfTrue(c, "use_beta_sigmas");
        rejectIfTrue(c, "use_flow_sigmas");
        rejectIfTrue(c, "use_lu_lambdas");
        rejectIfTrue(c, "use_dynamic_shifting");
        if (f == Family.EULER) {
            oneOf(c, "interpolation_type", "linear", "linear");
        }
        if (f == Family.DPM_MULTISTEP && c.has("variance_type")) {
            throw new IllegalArgumentException("scheduler config variance_type=" + c.raw("variance_type") + " is not supported (learned variance)");
        }
        if (f == Family.UNIPC && c.has("solver_p")) {
            throw new IllegalArgumentException("scheduler config solver_p is not supported for UniPC");
        }
        if (c.has("shift_terminal")) {
            throw new IllegalArgumentException("scheduler config shift_terminal is not supported");
        }
    }

    private static void rejectIfTrue(SchedulerConfig c, String key) {
        if (c.bool(key, false)) {
            throw new IllegalArgumentException("scheduler config option " + key + "=true is not supported");
        }
    }

    private static String oneOf(SchedulerConfig c, String key, String dflt, String... allowed) {
        String v = c.string(key, dflt);
        if (!List.of(allowed).contains(v)) {
            throw new IllegalArgumentException("scheduler config " + key + "='" + v + "' is not supported (supported: "
                    + String.join(", ", allowed) + ")");
        }
        return v;
    }

    boolean vPrediction() {
        return predictionType.equals("v_prediction");
    }
}
