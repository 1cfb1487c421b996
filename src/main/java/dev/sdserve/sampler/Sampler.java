package dev.sdserve.sampler;

/**
 * A sampler is a factory of per-request state machines. The state holds everything (history of model outputs,
 * sigmas, counters), so requests with different samplers and step counts can share one UNet batch: the scheduler
 * asks each state for its next model input, runs the batch, and hands each state its own output.
 */
public interface Sampler {
    /** Stable identifier, e.g. "euler_a", "dpmpp_2m_karras". */
    String id();

    /** Human name as AUTOMATIC1111 shows it, e.g. "Euler a", "DPM++ 2M Karras". */
    String displayName();

    /** Model evaluations for {@code steps} inference steps (Heun: 2·steps − 1, PLMS: steps + 1). */
    int evaluations(int steps);

    /**
     * Starts a trajectory.
     *
     * @param steps        inference steps
     * @param initialNoise standard-normal latent noise (it is scaled by the sampler's initial sigma here)
     * @param noise        draws for stochastic samplers (may be null for deterministic ones)
     */
    SamplerState start(int steps, float[] initialNoise, NoiseSource noise);
}
