package dev.sdserve.job;

import java.util.ArrayDeque;
import java.util.concurrent.CompletableFuture;

/**
 * One watcher's queue of events. The publisher never blocks, and nothing but preview payloads is ever dropped: every
 * event is kept until taken, every step included, but at most one preview waits per watcher: when a step with a
 * preview arrives while an older undelivered step still holds one, the older step goes on without it
 * ({@link JobEvent.Step#previewDropped()}). So a lagging consumer still sees every step index in order, and the
 * memory held is one preview plus a few bytes a step (a job has a bounded number of steps, and the service cancels
 * a job whose watcher takes nothing for too long). The consumer pulls with {@link #next()}.
 */
public final class Mailbox {
    /** A queued event; a step's slot is rewritten in place when its preview is dropped. */
    private static final class Slot {
        JobEvent event;

        Slot(JobEvent event) {
            this.event = event;
        }
    }

    private final ArrayDeque<Slot> queue = new ArrayDeque<>();
    /** The queued step that holds the undelivered preview, if any. */
    private Slot withPreview;
    private CompletableFuture<JobEvent> waiting;
    private long oldestUndeliveredNanos = -1;
    private boolean closed;
    private long conflated;

    /** Offers an event; returns false once the mailbox is closed. */
    public boolean offer(JobEvent e) {
        CompletableFuture<JobEvent> w;
        synchronized (this) {
            if (closed) {
                return false;
            }
            if (waiting != null) {
                w = waiting;
                waiting = null;
            } else {
                Slot slot = new Slot(e);
                if (e instanceof JobEvent.Step s && !s.previews().isEmpty()) {
                    if (withPreview != null) {
                        withPreview.event = ((JobEvent.Step) withPreview.event).withoutPreviews();
                        conflated++;
                    }
                    withPreview = slot;
                }
                if (queue.isEmpty()) {
                    oldestUndeliveredNanos = System.nanoTime();
                }
                queue.addLast(slot);
                return true;
            }
        }
        w.complete(e);
        return true;
    }

    /** The next event: completes at once when one is queued, else when one arrives. */
    public synchronized CompletableFuture<JobEvent> next() {
        Slot s = queue.pollFirst();
        if (s != null) {
            if (s == withPreview) {
                withPreview = null;
            }
            oldestUndeliveredNanos = queue.isEmpty() ? -1 : System.nanoTime();
            return CompletableFuture.completedFuture(s.event);
        }
        if (waiting == null) {
            waiting = new CompletableFuture<>();
        }
        return waiting;
    }

    /** Nanoseconds the oldest queued event has waited for its consumer (0 when none waits). */
    public synchronized long stalledNanos(long nowNanos) {
        return oldestUndeliveredNanos < 0 ? 0 : nowNanos - oldestUndeliveredNanos;
    }

    /** The queued events, oldest first, without taking them. */
    synchronized java.util.List<JobEvent> snapshot() {
        java.util.List<JobEvent> out = new java.util.ArrayList<>(queue.size());
        for (Slot s : queue) {
            out.add(s.event);
        }
        return out;
    }

    public synchronized int queued() {
        return queue.size();
    }

    /** Previews dropped (their steps delivered without them) because a newer one arrived before the consumer took them. */
    public synchronized long conflated() {
        return conflated;
    }

    public synchronized void close() {
        closed = true;
        if (waiting != null) {
            waiting.cancel(false);
            waiting = null;
        }
    }

    public synchronized boolean closed() {
        return closed;
    }
}
