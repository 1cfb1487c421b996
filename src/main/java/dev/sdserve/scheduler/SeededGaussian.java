package dev.sdserve.scheduler;

import dev.sdserve.sampler.NoiseSource;

import java.util.SplittableRandom;

/**
 * A seeded standard-normal source (SplittableRandom + Marsaglia polar method). Interim: the service will use the sampler
 * room's torch-compatible generator once it lands, so that seeds reproduce other tools' images.
 */
public final class SeededGaussian implements NoiseSource {
    private final SplittableRandom random;
    private double spare = Double.NaN;

    public SeededGaussian(long seed) {
        this.random = new SplittableRandom(seed);
    }

    @Override
    public void fill(float[] out) {
        for (int i = 0; i < out.length; i++) {
            out[i] = (float) next();
        }
    }

    private double next() {
        if (!Double.isNaN(spare)) {
            double s = spare;
            spare = Double.NaN;
            return s;
        }
        double u;
        double v;
        double q;
        do { // Marsaglia's polar method: no trigonometry
            u = 2 * random.nextDouble() - 1;
            v = 2 * random.nextDouble() - 1;
            q = u * u + v * v;
        } while (q >= 1 || q == 0);
        double f = Math.sqrt(-2 * Math.log(q) / q);
        spare = v * f;
        return u * f;
    }
}
