package dev.sdserve.sampler;

/** The per-request trajectory of a sampler; see {@link Sampler}. Not thread-safe; owned by one request. */
public interface SamplerState {
    /** Index of the next model evaluation, from 0. */
    int evaluation();

    /** Model evaluations in all. */
    int totalEvaluations();

    boolean done();

    /** Timestep to give the UNet for the next evaluation. */
    double timestep();

    /** Latent to give the UNet for the next evaluation (the current sample scaled as the sampler requires). */
    float[] modelInput();

    /** Consumes the (guided) noise prediction of the evaluation and advances. */
    void advance(float[] eps);

    /** The current latent sample (for previews and, when done, decoding). */
    float[] latents();
}
