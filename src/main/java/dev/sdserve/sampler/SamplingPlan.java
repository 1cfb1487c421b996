package dev.sdserve.sampler;

import java.util.Arrays;

/**
 * The schedule of one trajectory, as the diffusers scheduler computes it in {@code set_timesteps}.
 *
 * @param timesteps      the model timestep of every evaluation, in order (diffusers' {@code scheduler.timesteps}:
 *                       integers for DDIM/PLMS/DPM-Solver/UniPC, float32 values — fractional for Karras — for the
 *                       Euler family; Heun repeats each timestep but the first)
 * @param sigmas         diffusers' {@code scheduler.sigmas} (float32 values, the final one appended), or an empty
 *                       array for DDIM and PLMS, which work on alphas_cumprod directly
 * @param initNoiseSigma the factor that multiplies the standard-normal initial noise
 */
public record SamplingPlan(double[] timesteps, double[] sigmas, double initNoiseSigma) {
    public SamplingPlan {
        timesteps = timesteps.clone();
        sigmas = sigmas.clone();
    }

    @Override
    public double[] timesteps() {
        return timesteps.clone();
    }

    @Override
    public double[] sigmas() {
        return sigmas.clone();
    }

    /** Model evaluations of the trajectory. */
    public int evaluations() {
        return timesteps.length;
    }

    double timestep(int i) {
        return timesteps[i];
    }

    double sigma(int i) {
        return sigmas[i];
    }

    /** Whether the plan has sigmas (every family but DDIM and PLMS). */
    boolean hasSigmas() {
        return sigmas.length > 0;
    }

    @Override
    public String toString() {
        return "SamplingPlan[timesteps=" + Arrays.toString(timesteps) + ", sigmas=" + Arrays.toString(sigmas)
                + ", initNoiseSigma=" + initNoiseSigma + "]";
    }
}
