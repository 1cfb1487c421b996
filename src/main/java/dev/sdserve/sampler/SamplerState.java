package dev.sdserve.sampler;

/**
 * The per-request trajectory of a sampler; see {@link Sampler}. Not thread-safe; owned by one request.
 *
 * <p>A batch scheduler drives any mix of states the same way:
 * <pre>{@code
 *   while (!state.done()) {
 *       double t = state.timestep();
 *       float[] in = state.modelInput();      // copy into the batch tensor
 *       float[] eps = guidedUnet(in, t);      // uncond + g·(cond − uncond)
 *       state.advance(eps);
 *   }
 *   float[] latent = state.latents();          // decode with the VAE
 * }</pre>
 * Each state depends only on its own inputs: interleaving states of different samplers and step counts gives
 * exactly the trajectories they have alone.
 */
public interface SamplerState {
    /** Index of the next model evaluation, from 0. */
    int evaluation();

    /** Model evaluations in all. */
    int totalEvaluations();

    boolean done();

    /**
     * Timestep to give the UNet for the next evaluation: an integer for DDIM/PLMS/DPM-Solver/UniPC, possibly
     * fractional for the Euler family with Karras sigmas (diffusers passes the float on to the time embedding).
     *
     * @throws IllegalStateException when {@link #done()}
     */
    double timestep();

    /**
     * Latent to give the UNet for the next evaluation (the current sample scaled as the sampler requires, e.g.
     * x/√(σ²+1) for the Euler family). The array belongs to the state and is overwritten by the next call: copy it
     * (into the batch tensor) before calling {@link #advance}.
     *
     * @throws IllegalStateException when {@link #done()}
     */
    float[] modelInput();

    /**
     * Consumes the (guided) model output of the evaluation and advances. The output is in the model's prediction
     * type (epsilon, or v for a v-prediction config). Stochastic samplers draw their step noise here.
     *
     * @throws IllegalArgumentException if the output's length is not the latent's
     * @throws IllegalStateException    when {@link #done()}
     */
    void advance(float[] eps);

    /** The current latent sample (for previews and, when done, decoding); a new array on every call. */
    float[] latents();

    /**
     * Noise level σ of the next evaluation, in the variance-exploding convention shared by every sampler (the
     * plan's sigma, or √((1 − ᾱ_t)/ᾱ_t) for DDIM and PLMS, which work on timesteps).
     *
     * @throws IllegalStateException when {@link #done()}
     */
    double sigma();

    /**
     * The model's estimate of the clean latent x̂0 at its latest evaluation: x̂0 = x·√(σ²+1) − σ·ε for an epsilon
     * model (x the latent given to the UNet, ε the guided output, σ that evaluation's {@link #sigma()}), the
     * equivalent α·x − σα·v for a v-prediction model (α = 1/√(σ²+1)). This is what previews show (it holds the
     * composition from the first steps, where the sample itself is mostly noise). A new array on every call, or
     * null before the first {@link #advance}.
     */
    float[] denoised();

    /** The evaluation {@link #denoised()} belongs to (from 0), or −1 before the first {@link #advance}. */
    int denoisedEvaluation();

    /**
     * What to decode if sampling stops now (A1111's interrupt and skip): the final sample once {@link #done()},
     * before that the denoised estimate x̂0 of the latest evaluation; null before the first {@link #advance}.
     */
    default float[] earlyResult() {
        return done() ? latents() : denoised();
    }
}
