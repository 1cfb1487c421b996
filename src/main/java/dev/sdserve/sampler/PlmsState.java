package dev.sdserve.sampler;

/** PNDMScheduler with skip_prk_steps (PLMS): linear multistep in eps over alphas_cumprod. */
final class PlmsState extends BaseState {
    private final int stepRatio;
    private final double finalAlphaCumprod;
    private final double[][] ets = new double[4][];
    private int etsCount;
    private int counter;
    private final double[] curSample;
    private final double[] combined;

    PlmsState(DiffusersSampler s, SamplingPlan plan, int steps, float[] noise) {
        super(s, plan, noise);
        stepRatio = cfg.numTrainTimesteps / steps;
        finalAlphaCumprod = cfg.setAlphaToOne ? 1.0 : s.schedule.alphasCumprod[0];
        curSample = new double[size];
        combined = new double[size];
    }

    @Override
    void step(float[] eps) {
        int t = (int) plan.timestep(k);
        int prev = t - stepRatio;
        if (counter != 1) {
            double[] buf;
            if (etsCount == 4) {
                buf = ets[0];
                System.arraycopy(ets, 1, ets, 0, 3);
                etsCount = 3;
            } else {
                buf = new double[size];
            }
            for (int i = 0; i < size; i++) {
                buf[i] = eps[i];
            }
            ets[etsCount++] = buf;
        } else {
            prev = t;
            t = t + stepRatio;
        }
        double[] sample = x;
        if (etsCount == 1 && counter == 0) {
            for (int i = 0; i < size; i++) {
                combined[i] = eps[i];
            }
            System.arraycopy(x, 0, curSample, 0, size);
        } else if (etsCount == 1 && counter == 1) {
            double[] e1 = ets[0];
            for (int i = 0; i < size; i++) {
                combined[i] = (eps[i] + e1[i]) / 2;
            }
            sample = curSample;
        } else if (etsCount == 2) {
            double[] e1 = ets[1], e2 = ets[0];
            for (int i = 0; i < size; i++) {
                combined[i] = (3 * e1[i] - e2[i]) / 2;
            }
        } else if (etsCount == 3) {
            double[] e1 = ets[2], e2 = ets[1], e3 = ets[0];
            for (int i = 0; i < size; i++) {
                combined[i] = (23 * e1[i] - 16 * e2[i] + 5 * e3[i]) / 12;
            }
        } else {
            double[] e1 = ets[3], e2 = ets[2], e3 = ets[1], e4 = ets[0];
            for (int i = 0; i < size; i++) {
                combined[i] = (1.0 / 24) * (55 * e1[i] - 59 * e2[i] + 37 * e3[i] - 9 * e4[i]);
            }
        }
        prevSample(sample, t, prev);
        counter++;
    }

    private void prevSample(double[] sample, int t, int prev) {
        double at = sampler.schedule.alphasCumprod[t];
        double ap = prev >= 0 ? sampler.schedule.alphasCumprod[prev] : finalAlphaCumprod;
        double bt = 1 - at;
        double bp = 1 - ap;
        double sampleCoeff = Math.sqrt(ap / at);
        double denom = at * Math.sqrt(bp) + Math.sqrt(at * bt * ap);
        double c = (ap - at) / denom;
        boolean v = cfg.vPrediction();
        double sa = Math.sqrt(at), sb = Math.sqrt(bt);
        for (int i = 0; i < size; i++) {
            double mo = v ? sa * combined[i] + sb * sample[i] : combined[i];
            x[i] = sampleCoeff * sample[i] - c * mo;
        }
    }
}
