package dev.sdserve.sampler;

/** EulerAncestralDiscreteScheduler: Euler step to σ_down, plus σ_up·noise (one draw every step, the last included). */
final class EulerAncestralState extends SigmaState {
    private final NoiseSource noise;
    private final float[] z;

    EulerAncestralState(DiffusersSampler s, SamplingPlan plan, float[] initialNoise, NoiseSource noise) {
        super(s, plan, initialNoise);
        this.noise = noise;
        this.z = new float[size];
    }

    @Override
    void step(float[] eps) {
        double from = plan.sigma(k);
        double to = plan.sigma(k + 1);
        double up = Math.sqrt(to * to * (from * from - to * to) / (from * from));
        double down = Math.sqrt(to * to - up * up);
        double dt = down - from;
        boolean v = cfg.vPrediction();
        noise.fill(z);
        for (int i = 0; i < size; i++) {
            x[i] = x[i] + SigmaMath.derivative(x[i], eps[i], from, v) * dt + z[i] * up;
        }
    }
}
