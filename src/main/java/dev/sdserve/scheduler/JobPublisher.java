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
 * on the executor, so the scheduler never waits for image encoding. Step events conflate at the source: a step
 * not yet rendered is replaced by a newer one, so a backlog never grows (watchers' mailboxes conflate again).
 */
final class JobPublisher {
    private static final Logger LOG = Logger.getLogger(JobPublisher.class.getName());

    private record Item(Supplier<JobEvent> render, boolean step) {
    }

    private final Job job;
    private final Executor executor;
    private final ArrayDeque<Item> pending = new ArrayDeque<>();
    private boolean scheduled;
    private long conflated;

    JobPublisher(Job job, Executor executor) {
        this.job = job;
        this.executor = executor;
    }

    void step(Supplier<JobEvent> render) {
        enqueue(new Item(render, true));
    }

    void event(JobEvent e) {
        enqueue(new Item(() -> e, false));
    }

    void event(Supplier<JobEvent> render) {
        enqueue(new Item(render, false));
    }

    synchronized long conflated() {
        return conflated;
    }

    private void enqueue(Item item) {
        synchronized (this) {
            if (item.step && !pending.isEmpty() && pending.peekLast().step) {
                pending.pollLast();
                conflated++;
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
            }
            JobEvent e;
            try {
                e = item.render.get();
            } catch (RuntimeException ex) {
                LOG.log(Level.WARNING, "rendering an event of job " + job.id() + " failed", ex);
                if (item.step) {
                    continue; // a lost preview is not worth failing the job
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
