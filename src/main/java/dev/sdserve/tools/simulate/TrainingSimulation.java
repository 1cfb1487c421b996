package dev.sdserve.tools.simulate;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.sdserve.scheduler.ServiceConfig;
import dev.sdserve.clock.SimClock;
import dev.sdserve.train.TrainingCoordinator;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.SplittableRandom;

/**
 * Co-scheduled training in the simulator: the real scheduler and the real {@link TrainingCoordinator} on simulated
 * time, where a training step costs the H200 table's {@code lora_training_step} (× a random error of ±{@code
 * jitter}, which the coordinator does not know). Training is offered for the whole trace (it never runs out of
 * steps); the run ends when the trace is served.
 */
public final class TrainingSimulation {
    /** Attainment without and with training, and the share of the machine training got. */
    /**
     * @param exposedMisses requests (with training) that missed their deadline although admitted before a training
     *                      step that started while they were outstanding
     * @param worstExposedLateMillis how late the worst of them was (+∞ if one was dropped at its deadline)
     */
    public record Outcome(double rate, Simulator.Result off, Simulator.Result on, long trainingSteps,
                          double trainingMillis, double spanMillis, int exposedMisses, double worstExposedLateMillis) {
        public double share() {
            return spanMillis <= 0 ? 0 : trainingMillis / spanMillis;
        }
    }

    private TrainingSimulation() {
    }

    /** {@code lora_training_step.ms_by_batch[batch]} of the H200 cost file. */
    public static double trainingStepMillis(Path costFile, int batch) throws IOException {
        JsonNode n = new ObjectMapper().readTree(costFile.toFile()).path("lora_training_step").path("ms_by_batch")
                .path(Integer.toString(batch));
        if (!n.isNumber()) {
            throw new IOException(costFile + " has no lora_training_step.ms_by_batch." + batch);
        }
        return n.asDouble();
    }

    public static Outcome run(Simulator sim, List<Simulator.Arrival> trace, double rate, double stepMillis,
                              double jitter, double costFactor, double marginMillis, long seed) {
        return run(sim, trace, rate, stepMillis, jitter, costFactor, marginMillis, 0, seed);
    }

    /** @param backoffMillis no training for this long after a refused request (see TrainingCoordinator) */
    public static Outcome run(Simulator sim, List<Simulator.Arrival> trace, double rate, double stepMillis,
                              double jitter, double costFactor, double marginMillis, double backoffMillis, long seed) {
        Simulator.Result off = sim.runSdServe(trace, new ServiceConfig());
        double end = trace.get(trace.size() - 1).atMillis();
        TrainingCoordinator[] coord = new TrainingCoordinator[1];
        List<double[]> stepTimes = new java.util.ArrayList<>();
        SimClock[] clk = new SimClock[1];
        Simulator.Result on = sim.runSdServe(trace, new ServiceConfig(), clock -> {
            clk[0] = clock;
            SplittableRandom rnd = new SplittableRandom(seed);
            TrainingCoordinator c = new TrainingCoordinator(costFactor, marginMillis, () -> stepMillis,
                    () -> clock.nanoTime() / 1e6);
            c.backoffAfterRefusal(backoffMillis);
            c.submit(new TrainingCoordinator.Trainee() {
                @Override
                public boolean runStep() {
                    clock.advanceMillis(stepMillis * (1 + jitter * (2 * rnd.nextDouble() - 1)));
                    return clock.nanoTime() / 1e6 < end; // training is offered while requests arrive
                }

                @Override
                public double predictedStepMillis() {
                    return stepMillis;
                }
            });
            coord[0] = c;
            return new dev.sdserve.scheduler.BackgroundWork() {
                @Override
                public boolean wantsStep(double minSlackMillis) {
                    return c.wantsStep(minSlackMillis);
                }

                @Override
                public void inferenceRefused(double atMillis) {
                    c.inferenceRefused(atMillis);
                }

                @Override
                public void runStep() {
                    double t0 = clock.nanoTime() / 1e6;
                    c.runStep();
                    stepTimes.add(new double[]{t0, clock.nanoTime() / 1e6});
                }
            };
        });
        // attribution: requests of the run with training that missed although admitted before a training step that
        // started while they were outstanding
        double[][] per = sim.lastAdmitted;
        int exposedMisses = 0;
        double worst = 0;
        for (double[] r : per) {
            if (r == null || r[2] <= 1e-6) {
                continue;
            }
            for (double[] st : stepTimes) {
                if (st[0] >= r[0] && st[0] < r[1]) {
                    exposedMisses++;
                    worst = Math.max(worst, r[2]);
                    break;
                }
            }
        }
        return new Outcome(rate, off, on, coord[0].steps(), coord[0].busyMillis(), clk[0].nanoTime() / 1e6,
                exposedMisses, worst);
    }
}
