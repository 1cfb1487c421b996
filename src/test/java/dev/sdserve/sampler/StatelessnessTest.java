package dev.sdserve.sampler;

import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** States of different samplers and step counts, advanced in one shared loop, behave exactly as when run alone. */
class StatelessnessTest {
    /** A nonlinear deterministic stand-in for the guided UNet. */
    static float[] model(float[] x, double t) {
        float[] out = new float[x.length];
        for (int i = 0; i < x.length; i++) {
            out[i] = (float) (0.8 * Math.tanh(x[i]) + 0.1 * Math.sin(0.01 * t + i));
        }
        return out;
    }

    record Req(String sampler, int steps, long seed) {
    }

    static final List<Req> REQS = List.of(
            new Req("euler_a", 10, 1), new Req("dpmpp_2m_karras", 7, 2), new Req("heun", 5, 3), new Req("unipc", 12, 4),
            new Req("pndm", 9, 5), new Req("dpmpp_2m_sde_karras", 8, 6), new Req("lms", 6, 7), new Req("ddim", 4, 8),
            new Req("euler", 3, 9), new Req("euler_karras", 11, 10), new Req("dpmpp_2m", 10, 11), new Req("euler_a", 4, 12));

    static SamplerState start(Req r) {
        TorchGenerator g = new TorchGenerator(r.seed());
        float[] noise = new float[4 * 8 * 8];
        g.fill(noise);
        return Samplers.create(r.sampler()).start(r.steps(), noise, g);
    }

    @Test
    void interleavedEqualsAlone() {
        List<List<float[]>> alone = new ArrayList<>();
        for (Req r : REQS) {
            SamplerState s = start(r);
            List<float[]> traj = new ArrayList<>();
            while (!s.done()) {
                s.advance(model(s.modelInput(), s.timestep()));
                traj.add(s.latents());
            }
            alone.add(traj);
        }
        // one shared "batch" loop: every unfinished state is asked for its input first, then all are advanced
        List<SamplerState> states = new ArrayList<>();
        List<List<float[]>> together = new ArrayList<>();
        for (Req r : REQS) {
            states.add(start(r));
            together.add(new ArrayList<>());
        }
        boolean any = true;
        while (any) {
            any = false;
            List<float[]> outs = new ArrayList<>();
            for (SamplerState s : states) {
                outs.add(s.done() ? null : model(s.modelInput().clone(), s.timestep()));
            }
            for (int i = 0; i < states.size(); i++) {
                if (outs.get(i) != null) {
                    states.get(i).advance(outs.get(i));
                    together.get(i).add(states.get(i).latents());
                    any = true;
                }
            }
        }
        for (int i = 0; i < REQS.size(); i++) {
            assertEquals(alone.get(i).size(), together.get(i).size(), REQS.get(i).toString());
            assertEquals(Samplers.create(REQS.get(i).sampler()).evaluations(REQS.get(i).steps()), alone.get(i).size());
            for (int k = 0; k < alone.get(i).size(); k++) {
                assertArrayEquals(alone.get(i).get(k), together.get(i).get(k), REQS.get(i) + " evaluation " + k);
            }
        }
    }

    @Test
    void edgeStepCounts() {
        for (Samplers.Info info : Samplers.list()) {
            for (int steps : new int[] {1, 2, 3, 4, 15, 999, 1000}) {
                if (steps == 1000 && (info.id().equals("ddim") || info.id().equals("pndm"))) {
                    // leading spacing + steps_offset 1 would reach timestep 1000 (an IndexError in diffusers)
                    assertThrows(IllegalArgumentException.class, () -> Samplers.create(info.id()).plan(1000));
                    continue;
                }
                SamplerState s = start(new Req(info.id(), steps, steps));
                int n = 0;
                while (!s.done()) {
                    s.advance(model(s.modelInput(), s.timestep()));
                    n++;
                }
                assertEquals(Samplers.create(info.id()).evaluations(steps), n, info.id() + " " + steps);
                for (float v : s.latents()) {
                    assertTrue(Float.isFinite(v) && Math.abs(v) < 100, info.id() + " " + steps + " steps: " + v);
                }
            }
        }
    }

    @Test
    void stateContract() {
        SamplerState s = start(new Req("heun", 3, 1));
        assertEquals(5, s.totalEvaluations());
        assertEquals(0, s.evaluation());
        assertFalse(s.done());
        assertThrows(IllegalArgumentException.class, () -> s.advance(new float[3]));
        for (int i = 0; i < 5; i++) {
            s.advance(model(s.modelInput(), s.timestep()));
            assertEquals(i + 1, s.evaluation());
        }
        assertTrue(s.done());
        assertThrows(IllegalStateException.class, s::modelInput);
        assertThrows(IllegalStateException.class, s::timestep);
        assertThrows(IllegalStateException.class, () -> s.advance(new float[256]));
        assertEquals(256, s.latents().length);
        // stochastic samplers need noise
        assertThrows(IllegalArgumentException.class, () -> Samplers.create("euler_a").start(10, new float[16], null));
        assertThrows(IllegalArgumentException.class, () -> Samplers.create("euler").start(0, new float[16], null));
    }
}
