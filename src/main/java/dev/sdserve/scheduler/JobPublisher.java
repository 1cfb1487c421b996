package dev.sdserve.scheduler;

import dev.sdserve.job.Job;
import dev.sdserve.job.JobEvent;
import dev.sdserve.job.JobState;
import dev.sdserve.job.ServeException;

import java.util.ArrayDeque;
import java.util.concurrent.Executor;
import java.util.function.Supplier;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * Publishes one job's events in order, off the scheduler thread: rendering (preview images, PNG results) happens
 * on the executor, so the scheduler never waits for image encoding. Previews conflate at the source: when a newer
 * step arrives before a step's preview was rendered, that step is published without it (previewDropped), so no
 * step is ever lost and rendering never falls behind by more than one preview (watchers' mailboxes conflate
 * previews again).
 */
final class JobPublisher {
    private static final Logger LOG = Logger.getLogger(JobPublisher.class.getName());

    /** A pending event; a step's render is dropped (its bare form published) when a newer step arrives first. */
    private static final class Item {
        Supplier<JobEvent> render;
        final JobEvent.Step bare;

        Item(Supplier<JobEvent> render, JobEvent.Step bare) {
            this.render = render;
            this.bare = bare;
        }
    }

    private final Job job;
    private final Executor executor;
    private final ArrayDeque<Item> pending = new ArrayDeque<>();
    private boolean scheduled;
    /** The pending step whose preview may still be rendered (the newest step, if not taken yet). */
    private Item renderable;
    private long conflated;

    JobPublisher(Job job, Executor executor) {
        this.job = job;
        this.executor = executor;
    }

    /**
     * A step: {@code bare} is the step without previews (marked previewDropped when {@code render} would have added
     * one), published instead of {@code render}'s result if a newer step arrives before rendering started.
     */
    void step(JobEvent.Step bare, Supplier<JobEvent> render) {
        enqueue(new Item(render != null ? render : () -> bare, bare));
    }

    void event(JobEvent e) {
        enqueue(new Item(() -> e, null));
    }

    void event(Supplier<JobEvent> render) {
        enqueue(new Item(render, null));
    }

    synchronized long conflated() {
        return conflated;
    }

    private void enqueue(Item item) {
        synchronized (this) {
            if (item.bare != null) {
                if (renderable != null) { // still pending: published bare
                    JobEvent.Step b = renderable.bare;
                    renderable.render = () -> b;
                    conflated += b.previewDropped() ? 1 : 0;
                }
                renderable = item;
            }
            pending.addLast(item);
            if (scheduled) {
                return;
            }
            scheduled = true;
        }
        executor.execute(this::drain);
    }

    private void drain() {
        while (true) {
            Item item;
            synchronized (this) {
                item = pending.pollFirst();
                if (item == null) {
                    scheduled = false;
                    return;
                }
                if (item == renderable) {
                    renderable = null;
                }
            }
            JobEvent e;
            try {
                e = item.render.get();
            } catch (RuntimeException ex) {
                LOG.log(Level.WARNING, "rendering an event of job " + job.id() + " failed", ex);
                if (item.bare != null) {
                    job.publish(item.bare); // a lost preview is not worth failing the job, or losing the step
                    continue;
                }
                e = new JobEvent.Ended(job.id(), JobState.FAILED,
                        new ServeException(ServeException.Code.INTERNAL, "rendering the result failed: " + ex));
            }
            if (e != null) {
                job.publish(e);
            }
        }
    }
}
