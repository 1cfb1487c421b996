package dev.sdserve.api;

import dev.sdserve.job.Job;
import dev.sdserve.job.JobEvent;
import dev.sdserve.job.Mailbox;
import io.smallrye.mutiny.Multi;

/** Turns a job's watcher mailbox into a Mutiny stream that respects the subscriber's demand. */
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
}
