package dev.sdserve.sampler;

import java.util.List;

/** A NoiseSource that replays recorded draws in order (conformance against a golden set's recorded noise). */
public final class ReplayNoise implements NoiseSource {
    private final List<float[]> draws;
    private int next;

    public ReplayNoise(List<float[]> draws) {
        this.draws = List.copyOf(draws);
    }

    @Override
    public void fill(float[] out) {
        if (next >= draws.size()) {
            throw new IllegalStateException("recorded noise exhausted after " + draws.size() + " draws");
        }
        float[] d = draws.get(next);
        if (d.length != out.length) {
            throw new IllegalStateException("recorded draw " + next + " has " + d.length + " floats, " + out.length + " requested");
        }
        System.arraycopy(d, 0, out, 0, d.length);
        next++;
    }

    /** Draws used so far. */
    public int used() {
        return next;
    }
}
