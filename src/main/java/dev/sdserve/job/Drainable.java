package dev.sdserve.job;

import java.time.Duration;

/**
 * A service that can be drained before shutdown. Implemented by the {@link GenerationService} implementation (the
 * scheduler); called once by the server on SIGTERM (see {@code dev.sdserve.ops.DrainCoordinator}).
 */
public interface Drainable {
    /**
     * Stops admitting at once (every later {@code submit} throws {@link ServeException} UNAVAILABLE, so gRPC
     * answers UNAVAILABLE and REST 503), lets admitted jobs (queued and running) finish for up to {@code timeout},
     * then ends every job still unfinished with {@link JobEvent.Ended} (state CANCELLED, error UNAVAILABLE saying the
     * server shut down before the job could finish), and returns. After it returns every admitted job has a
     * terminal event. Blocks the caller; safe to call more than once (later calls wait for the first).
     */
    void drain(Duration timeout);

    /** True from the moment {@link #drain} is called. */
    boolean draining();
}
