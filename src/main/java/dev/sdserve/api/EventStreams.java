package dev.sdserve.api;

import dev.sdserve.job.Job;
import dev.sdserve.job.JobEvent;
import dev.sdserve.job.Mailbox;
import dev.sdserve.train.FineTuneManager;
import io.smallrye.mutiny.Multi;

/**
 * Turns a job's watcher mailbox into a Mutiny stream that respects the subscriber's demand; and a fine-tune job's
 * watcher into a stream (shared by the REST SSE and gRPC Watch endpoints).
 */
public final class EventStreams {
    private EventStreams() {
    }

    /**
     * The events of a job from now on (primed with its latest state), ending after the terminal event. Cancelling the
     * stream closes the watcher; it does not cancel the job (callers decide that).
     */
    public static Multi<JobEvent> events(Job job) {
        return Multi.createFrom().resource(job::watch,
                        (Mailbox mb) -> Multi.createBy().repeating().completionStage(mb::next)
                                .whilst(e -> !Job.isTerminal(e)))
                .withFinalizer(Mailbox::close);
    }

    /**
     * A fine-tune job's status now, then one event per change, completing after the terminal one. Ending the stream
     * early removes the watcher; an unknown id (or any failure to watch) fails the stream with the manager's
     * exception, which each transport maps to its own error.
     */
    public static Multi<FineTuneManager.Event> fineTuneEvents(FineTuneManager manager, String id) {
        return Multi.createFrom().emitter(em -> {
            try {
                AutoCloseable h = manager.watch(id, ev -> {
                    em.emit(ev);
                    if (ev.state().terminal()) {
                        em.complete();
                    }
                });
                em.onTermination(() -> {
                    try {
                        h.close();
                    } catch (Exception ignored) {
                        // removing a watcher does not fail
                    }
                });
            } catch (RuntimeException e) {
                em.fail(e);
            }
        });
    }
}
