package dev.sdserve.sampler;

/**
 * A sampler is a factory of per-request state machines. The state holds everything (history of model outputs,
 * sigmas, counters), so requests with different samplers and step counts can share one UNet batch: the scheduler
 * asks each state for its next model input, runs the batch, and hands each state its own output.
 *
 * <p>Implementations are immutable and thread-safe; see {@link Samplers} for the registry and
 * {@link DiffusersSampler} for the diffusers-exact implementation.
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
     * @param steps        inference steps (1 .. num_train_timesteps)
     * @param initialNoise standard-normal latent noise, NCHW without batch (read, not kept; it is scaled by the
     *                     sampler's initial sigma here)
     * @param noise        draws for stochastic samplers: {@link NoiseSource#fill} is called once per step during
     *                     {@link SamplerState#advance} (the last step included, as diffusers draws it), with an
     *                     array of the latent's size; may be null for deterministic samplers
     * @throws IllegalArgumentException for a bad step count, an empty latent, or a stochastic sampler without noise
     */
    SamplerState start(int steps, float[] initialNoise, NoiseSource noise);

    /**
     * How a denoising strength cuts the schedule of {@code steps} steps: steps kept, the plan index it begins at,
     * evaluations that run, the first timestep (diffusers' img2img / inpainting {@code get_timesteps}).
     *
     * @throws IllegalArgumentException for a strength outside (0, 1] or one that keeps no step
     */
    StrengthCut strengthCut(int steps, double strength);

    /**
     * Starts an image-conditioned trajectory (img2img, inpainting) as diffusers' pipelines do: the schedule is made
     * for {@code steps} steps and entered at the strength's begin index with the image latent noised to that
     * timestep (or, inpainting at strength 1, from pure noise), optionally blending the known region back after
     * every step. {@code noise} draws the stochastic samplers' step noise, as in {@link #start(int, float[], NoiseSource)}.
     */
    SamplerState start(int steps, ImageInit init, NoiseSource noise);
}
