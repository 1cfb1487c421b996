package dev.sdserve.train;

import dev.sdserve.scheduler.BackgroundWork;

import java.util.ArrayDeque;
import java.util.Deque;
import java.util.function.DoubleSupplier;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * Runs fine-tune jobs' steps in the scheduler's slack ({@link BackgroundWork}): a step runs only when the engine is
 * idle, or when every admitted inference request's slack exceeds the predicted step cost times {@code costFactor}
 * plus {@code marginMillis} (so one step cannot push a request past its deadline unless the step overruns its
 * prediction by that margin). Jobs run one after another in submission order; {@link #pause()} / {@link #resume()}
 * take effect at step boundaries.
 *
 * <p>The step cost prediction is the running job's measured step time (exponential average), or the prior until
 * a step was measured.
 */
public final class TrainingCoordinator implements BackgroundWork {
    private static final Logger LOG = Logger.getLogger(TrainingCoordinator.class.getName());

    /** One trainable thing: {@link FineTuneJob} in production, a timed stand-in in the simulator. */
    public interface Trainee {
        /** Runs one step; false when finished (and nothing was run or the last step ran). */
        boolean runStep() throws Exception;

        /** Predicted ms of the next step, NaN if unknown. */
        double predictedStepMillis();

        /** Whether it wants steps now (false while paused); a trainee that does not is skipped, not dropped. */
        default boolean runnable() {
            return true;
        }

        /** Whether it has ended by other means (e.g. cancelled while idle): then it is dropped without a step. */
        default boolean finished() {
            return false;
        }
    }

    private final Deque<Trainee> queue = new ArrayDeque<>();
    private final double costFactor;
    private final double marginMillis;
    private final DoubleSupplier priorStepMillis;
    private volatile boolean paused;
    private long steps;
    private double busyMillis;
    private long deferred;
    private final DoubleSupplier wallMillis;
    private volatile double backoffMillis = 0;
    private volatile double lastRefusalMillis = Double.NEGATIVE_INFINITY;
    private long backedOff;

    /**
     * @param costFactor      required slack as a multiple of the predicted step cost (≥ 1)
     * @param marginMillis    plus this many ms
     * @param priorStepMillis step cost before any step was measured
     * @param wallMillis      the clock steps are timed with (the scheduler's clock; simulated in the simulator)
     */
    public TrainingCoordinator(double costFactor, double marginMillis, DoubleSupplier priorStepMillis,
                               DoubleSupplier wallMillis) {
        if (costFactor < 1) {
            throw new IllegalArgumentException("costFactor must be >= 1, got " + costFactor);
        }
        this.costFactor = costFactor;
        this.marginMillis = marginMillis;
        this.priorStepMillis = priorStepMillis;
        this.wallMillis = wallMillis;
    }

    public synchronized void submit(Trainee t) {
        queue.addLast(t);
    }

    /** A fine-tune job as a trainee. */
    public static Trainee of(FineTuneJob job) {
        return new Trainee() {
            @Override
            public boolean runStep() throws Exception {
                return job.runStep();
            }

            @Override
            public double predictedStepMillis() {
                return job.secondsPerStep() * 1000;
            }
        };
    }

    /**
     * After admission refuses an inference request for capacity, no training step runs for this long (on the
     * coordinator's clock), not even on an idle engine: at saturation, every training step is capacity the next
     * arrivals would have needed. 0 (the default) turns the back-off off.
     */
    public void backoffAfterRefusal(double millis) {
        this.backoffMillis = millis;
    }

    @Override
    public void inferenceRefused(double atMillis) {
        lastRefusalMillis = Math.max(lastRefusalMillis, atMillis);
    }

    /** Times a step was wanted but held back after a refusal. */
    public synchronized long backedOff() {
        return backedOff;
    }

    public void pause() {
        paused = true;
    }

    public void resume() {
        paused = false;
    }

    public boolean paused() {
        return paused;
    }

    /** The first runnable trainee (dropping finished ones), or null. */
    private Trainee next() {
        queue.removeIf(Trainee::finished);
        for (Trainee t : queue) {
            if (t.runnable()) {
                return t;
            }
        }
        return null;
    }

    @Override
    public boolean wantsStep(double minSlackMillis) {
        return wantsStep(() -> minSlackMillis);
    }

    @Override
    public synchronized boolean wantsStep(java.util.function.DoubleSupplier minSlack) {
        Trainee t = next();
        if (t == null || paused) {
            return false;
        }
        if (backoffMillis > 0 && wallMillis.getAsDouble() - lastRefusalMillis < backoffMillis) {
            backedOff++;
            return false;
        }
        double minSlackMillis = minSlack.getAsDouble(); // only now: nothing to run costs no prediction
        if (minSlackMillis == Double.POSITIVE_INFINITY) {
            return true; // idle engine
        }
        double cost = t.predictedStepMillis();
        if (Double.isNaN(cost)) {
            cost = priorStepMillis.getAsDouble();
        }
        boolean ok = minSlackMillis > costFactor * cost + marginMillis;
        if (!ok) {
            deferred++;
        }
        return ok;
    }

    @Override
    public void runStep() {
        Trainee t;
        synchronized (this) {
            t = next();
        }
        if (t == null) {
            return;
        }
        double t0 = wallMillis.getAsDouble();
        boolean more;
        try {
            more = t.runStep();
        } catch (Exception e) {
            LOG.log(Level.WARNING, "training step failed; the job is dropped", e);
            more = false;
        }
        synchronized (this) {
            busyMillis += wallMillis.getAsDouble() - t0;
            steps++;
            if (!more) {
                queue.remove(t);
            }
        }
    }

    /** Training steps run (including finishing calls). */
    public synchronized long steps() {
        return steps;
    }

    /** Time spent in training steps, ms (on the coordinator's clock). */
    public synchronized double busyMillis() {
        return busyMillis;
    }

    /** Times a step was wanted but the inference slack did not allow it. */
    public synchronized long deferred() {
        return deferred;
    }

    public synchronized int queued() {
        return queue.size();
    }
}
