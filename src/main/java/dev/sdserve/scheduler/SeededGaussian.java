package dev.sdserve.scheduler;

import dev.sdserve.sampler.NoiseSource;

import java.util.SplittableRandom;

/**
 * A seeded standard-normal source (SplittableRandom + Box–Muller). Interim: the service will use the sampler
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
        double u1;
        do {
            u1 = random.nextDouble();
        } while (u1 <= Double.MIN_NORMAL);
        double u2 = random.nextDouble();
        double r = Math.sqrt(-2 * Math.log(u1));
        spare = r * Math.sin(2 * Math.PI * u2);
        return r * Math.cos(2 * Math.PI * u2);
    }
}
