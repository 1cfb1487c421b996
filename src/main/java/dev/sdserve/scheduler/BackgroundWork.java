package dev.sdserve.scheduler;

/**
 * Preemptible work the scheduler runs between its engine calls (LoRA training steps): consulted at every iteration,
 * before planning, with the least slack of the admitted inference work; inference wins unless the background work
 * says one of its steps fits. Steps run on the scheduler thread, outside its lock, one at a time.
 */
public interface BackgroundWork {
    /**
     * Whether to run one step now. {@code minSlackMillis}: least slack (deadline − now − predicted remaining work)
     * over admitted, not-yet-finished inference requests; {@code +∞} when there are none (the engine is idle).
     */
    boolean wantsStep(double minSlackMillis);

    /**
     * As {@link #wantsStep(double)}, the slack computed only when it is needed: the scheduler asks at every iteration,
     * and the slack is a prediction over all admitted work, wasted when there is nothing to run.
     */
    default boolean wantsStep(java.util.function.DoubleSupplier minSlackMillis) {
        return wantsStep(minSlackMillis.getAsDouble());
    }

    /** Runs one step. Exceptions are logged by the scheduler and do not stop it. */
    void runStep();

    /**
     * Admission refused an inference request for capacity (queue full, or its deadline could not be met) at
     * {@code atMillis} of the scheduler's clock: inference is saturated, and capacity given to background work now
     * is taken from requests still to come.
     */
    default void inferenceRefused(double atMillis) {
    }
}
