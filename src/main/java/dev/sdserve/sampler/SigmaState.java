package dev.sdserve.sampler;

/**
 * The samplers that work in σ space (Euler, Euler a, Heun, LMS): the model sees x scaled by c_in = 1/√(σ² + 1), σ being
 * the plan's sigma of the current evaluation.
 */
abstract class SigmaState extends BaseState {
    SigmaState(DiffusersSampler s, SamplingPlan plan, float[] noise) {
        super(s, plan, noise);
    }

    @Override
    final double inputScale() {
        double sigma = plan.sigma(k);
        return 1.0 / Math.sqrt(sigma * sigma + 1);
    }
}
