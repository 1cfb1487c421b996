package dev.sdserve.sampler;

import java.util.ArrayList;
import java.util.List;

/** Runs one trajectory alone, recording the latents after every evaluation (as the golden sets record them). */
public final class Trajectory {
    private Trajectory() {
    }

    /**
     * @return the sampler's latent sample after each model evaluation (as diffusers' pipeline has it after each
     * {@code scheduler.step} call); the last one is the final latent
     */
    public static List<float[]> run(Sampler sampler, int steps, float[] initialNoise, NoiseSource noise, EpsFunction model) {
        SamplerState s = sampler.start(steps, initialNoise, noise);
        List<float[]> out = new ArrayList<>(s.totalEvaluations());
        while (!s.done()) {
            float[] eps = model.eps(s.modelInput(), s.timestep());
            s.advance(eps);
            out.add(s.latents());
        }
        return out;
    }

    /** The final latent of a trajectory. */
    public static float[] last(Sampler sampler, int steps, float[] initialNoise, NoiseSource noise, EpsFunction model) {
        SamplerState s = sampler.start(steps, initialNoise, noise);
        while (!s.done()) {
            s.advance(model.eps(s.modelInput(), s.timestep()));
        }
        return s.latents();
    }
}
