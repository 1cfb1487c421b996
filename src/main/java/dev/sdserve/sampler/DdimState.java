package dev.sdserve.sampler;

/** DDIMScheduler with eta = 0 (deterministic). */
final class DdimState extends BaseState {
    private final int stepRatio;
    private final double finalAlphaCumprod;

    DdimState(DiffusersSampler s, SamplingPlan plan, int steps, float[] noise) {
        super(s, plan, noise);
        stepRatio = cfg.numTrainTimesteps / steps;
        finalAlphaCumprod = cfg.setAlphaToOne ? 1.0 : s.schedule.alphasCumprod[0];
    }

    @Override
    void step(float[] eps) {
        int t = (int) plan.timestep(k);
        int prev = t - stepRatio;
        double at = sampler.schedule.alphasCumprod[t];
        double ap = prev >= 0 ? sampler.schedule.alphasCumprod[prev] : finalAlphaCumprod;
        double sa = Math.sqrt(at), sb = Math.sqrt(1 - at);
        double sap = Math.sqrt(ap), dir = Math.sqrt(1 - ap);
        boolean v = cfg.vPrediction();
        boolean clip = cfg.clipSample;
        double r = cfg.clipSampleRange;
        for (int i = 0; i < size; i++) {
            double xi = x[i];
            double x0, e;
            if (v) {
                x0 = sa * xi - sb * eps[i];
                e = sa * eps[i] + sb * xi;
            } else {
                x0 = (xi - sb * eps[i]) / sa;
                e = eps[i];
            }
            if (clip) {
                x0 = Math.max(-r, Math.min(r, x0));
            }
            x[i] = sap * x0 + dir * e;
        }
    }
}
