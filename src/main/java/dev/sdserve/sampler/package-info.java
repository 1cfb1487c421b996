/**
 * Samplers that compute what diffusers' schedulers compute, as per-request state machines that can share a UNet
 * batch.
 *
 * <ul>
 *   <li>{@link dev.sdserve.sampler.Samplers}: the registry (id, AUTOMATIC1111 name, stochastic flag) and factories;
 *   {@code Samplers.create("dpmpp_2m_karras")} uses Stable Diffusion 1.5's scheduler config,
 *   {@code Samplers.create(id, SchedulerConfig.fromJson(modelSchedulerConfigJson))} a model's own.</li>
 *   <li>{@link dev.sdserve.sampler.SchedulerConfig}: a diffusers scheduler config (missing keys take the diffusers
 *   class defaults, as {@code from_config} does).</li>
 *   <li>{@link dev.sdserve.sampler.DiffusersSampler#plan}: timesteps, sigmas and init_noise_sigma, reproduced from
 *   diffusers' float32 schedule arithmetic.</li>
 *   <li>{@link dev.sdserve.sampler.SamplerState}: {@code timestep()}, {@code modelInput()}, {@code advance(eps)},
 *   {@code latents()}; the math is in double precision, latents are float[].</li>
 *   <li>{@link dev.sdserve.sampler.TorchGenerator}: torch's CPU generator ({@code manual_seed} + {@code randn}),
 *   the request's {@link dev.sdserve.sampler.NoiseSource}.</li>
 *   <li>{@link dev.sdserve.sampler.Trajectory} and {@link dev.sdserve.sampler.SamplerConformance}: run a trajectory
 *   with an {@link dev.sdserve.sampler.EpsFunction}; compare a golden pipeline
 *   ({@code SamplerConformance.run(goldenDir, "euler_ancestral", guidedUnet)}).</li>
 * </ul>
 */
package dev.sdserve.sampler;
