package dev.sdserve.sampler;

/** EulerDiscreteScheduler (s_churn = 0): x ← x + (σ_next − σ)·d with d = (x − x̂0)/σ. */
final class EulerState extends BaseState {
    EulerState(DiffusersSampler s, SamplingPlan plan, float[] noise) {
        super(s, plan, noise);
    }

    @Override
    double inputScale() {
        double sigma = plan.sigma(k);
        return 1.0 / Math.sqrt(sigma * sigma + 1);
    }

    @Override
    void step(float[] eps) {
        double sigma = plan.sigma(k);
        double dt = plan.sigma(k + 1) - sigma;
        SigmaMath.eulerStep(x, eps, sigma, dt, cfg.vPrediction());
    }
}
