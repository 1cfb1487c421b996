package dev.sdserve.scheduler;

import dev.sdserve.sampler.NoiseSource;
import dev.sdserve.sampler.Sampler;
import dev.sdserve.sampler.SamplerState;

import java.util.List;
import java.util.Locale;

/**
 * Two k-diffusion samplers (Euler, Euler ancestral) on the SD 1.x schedule (scaled-linear betas 0.00085 → 0.012 over
 * 1000 steps, "linspace" timesteps), enough for the scheduler to run real trajectories until the sampler room's
 * {@code Samplers} (exact diffusers parity, all samplers) lands in main.
 */
public final class InterimSamplers implements SamplerCatalog {
    private static final int TRAIN_STEPS = 1000;
    private static final double[] SIGMAS = trainingSigmas();

    private final List<Sampler> samplers = List.of(new Euler(false), new Euler(true));

    @Override
    public Sampler find(String idOrName) {
        if (idOrName == null) {
            return null;
        }
        String k = idOrName.trim().toLowerCase(Locale.ROOT);
        for (Sampler s : samplers) {
            if (s.id().equals(k) || s.displayName().toLowerCase(Locale.ROOT).equals(k)) {
                return s;
            }
        }
        if (k.equals("euler_ancestral")) {
            return samplers.get(1);
        }
        return null;
    }

    @Override
    public List<String> ids() {
        return samplers.stream().map(Sampler::id).toList();
    }

    private static double[] trainingSigmas() {
        double[] s = new double[TRAIN_STEPS];
        double a = Math.sqrt(0.00085);
        double b = Math.sqrt(0.012);
        double cum = 1;
        for (int i = 0; i < TRAIN_STEPS; i++) {
            double beta = Math.pow(a + (b - a) * i / (TRAIN_STEPS - 1), 2);
            cum *= 1 - beta;
            s[i] = Math.sqrt((1 - cum) / cum);
        }
        return s;
    }

    private static double sigmaAt(double t) {
        int lo = (int) Math.floor(t);
        int hi = Math.min(lo + 1, TRAIN_STEPS - 1);
        double w = t - lo;
        return SIGMAS[lo] * (1 - w) + SIGMAS[hi] * w;
    }

    private record Euler(boolean ancestral) implements Sampler {
        @Override
        public String id() {
            return ancestral ? "euler_a" : "euler";
        }

        @Override
        public String displayName() {
            return ancestral ? "Euler a" : "Euler";
        }

        @Override
        public int evaluations(int steps) {
            return steps;
        }

        @Override
        public SamplerState start(int steps, float[] initialNoise, NoiseSource noise) {
            if (steps < 1) {
                throw new IllegalArgumentException("steps must be >= 1");
            }
            if (ancestral && noise == null) {
                throw new IllegalArgumentException("euler_a needs a noise source");
            }
            double[] ts = new double[steps];
            double[] sig = new double[steps + 1];
            for (int i = 0; i < steps; i++) {
                ts[i] = steps == 1 ? TRAIN_STEPS - 1 : (TRAIN_STEPS - 1) * (1 - i / (double) (steps - 1));
                sig[i] = sigmaAt(ts[i]);
            }
            sig[steps] = 0;
            float[] x = new float[initialNoise.length];
            for (int i = 0; i < x.length; i++) {
                x[i] = (float) (initialNoise[i] * sig[0]);
            }
            return new State(ancestral, ts, sig, x, noise);
        }
    }

    private static final class State implements SamplerState {
        private final boolean ancestral;
        private final double[] ts;
        private final double[] sig;
        private final float[] x;
        private final NoiseSource noise;
        private final float[] draw;
        private int i;

        State(boolean ancestral, double[] ts, double[] sig, float[] x, NoiseSource noise) {
            this.ancestral = ancestral;
            this.ts = ts;
            this.sig = sig;
            this.x = x;
            this.noise = noise;
            this.draw = ancestral ? new float[x.length] : null;
        }

        @Override
        public int evaluation() {
            return i;
        }

        @Override
        public int totalEvaluations() {
            return ts.length;
        }

        @Override
        public boolean done() {
            return i >= ts.length;
        }

        @Override
        public double timestep() {
            return ts[i];
        }

        @Override
        public float[] modelInput() {
            float scale = (float) (1 / Math.sqrt(sig[i] * sig[i] + 1));
            float[] in = new float[x.length];
            for (int j = 0; j < x.length; j++) {
                in[j] = x[j] * scale;
            }
            return in;
        }

        @Override
        public void advance(float[] eps) {
            if (done()) {
                throw new IllegalStateException("sampler already finished");
            }
            double s = sig[i];
            double next = sig[i + 1];
            if (!ancestral) {
                float dt = (float) (next - s);
                for (int j = 0; j < x.length; j++) {
                    x[j] += eps[j] * dt;
                }
            } else {
                double up = next == 0 ? 0 : Math.min(next, Math.sqrt(next * next * (s * s - next * next) / (s * s)));
                double down = Math.sqrt(Math.max(0, next * next - up * up));
                float dt = (float) (down - s);
                for (int j = 0; j < x.length; j++) {
                    x[j] += eps[j] * dt;
                }
                if (up > 0) {
                    noise.fill(draw);
                    for (int j = 0; j < x.length; j++) {
                        x[j] += (float) (draw[j] * up);
                    }
                }
            }
            i++;
        }

        @Override
        public float[] latents() {
            return x;
        }
    }
}
