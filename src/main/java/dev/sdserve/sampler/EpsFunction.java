package dev.sdserve.sampler;

/**
 * The model as a sampler sees it: the (classifier-free guided) noise prediction for a model input at a timestep.
 * Used by {@link Trajectory} to run one request alone (tests, conformance); the service batches instead.
 */
@FunctionalInterface
public interface EpsFunction {
    /**
     * @param modelInput the sampler's model input (owned by the sampler state: read it, do not keep it)
     * @param timestep   the model timestep
     * @return the noise prediction (epsilon or v, as the model predicts), same length as the input
     */
    float[] eps(float[] modelInput, double timestep);
}
