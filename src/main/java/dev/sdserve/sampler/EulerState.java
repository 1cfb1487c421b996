package dev.sdserve.sampler;

/** EulerDiscreteScheduler (s_churn = 0): x ← x + (σ_next − σ)·d with d = (x − x̂0)/σ. */
final class EulerState extends SigmaState {
    EulerState(DiffusersSampler s, SamplingPlan plan, float[] noise) {
        super(s, plan, noise);
    }

    @Override
    void step(float[] eps) {
        double sigma = plan.sigma(k);
        double dt = plan.sigma(k + 1) - sigma;
        SigmaMath.eulerStep(x, eps, sigma, dt, cfg.vPrediction());
    }
}
