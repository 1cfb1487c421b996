package dev.sdserve.sampler;

/**
 * Standard-normal draws for a request. In service it is the request's seeded generator; in conformance it replays
 * the golden set's recorded noise. Calls come in order: the initial latent first (if the caller asks), then one
 * call per stochastic sampler step.
 */
public interface NoiseSource {
    /** Fills {@code out} with standard-normal samples. */
    void fill(float[] out);
}
