package dev.sdserve.sampler;

/**
 * Standard-normal draws for a request. In service it is the request's seeded generator ({@link TorchGenerator}); in
 * conformance it replays the golden set's recorded noise ({@link ReplayNoise}). Calls come in order: the initial
 * latent first (if the caller asks), then one call per stochastic sampler step, each with an array of the latent's
 * size. Not required to be thread-safe: one instance per request.
 */
public interface NoiseSource {
    /** Fills {@code out} with standard-normal samples. */
    void fill(float[] out);
}
