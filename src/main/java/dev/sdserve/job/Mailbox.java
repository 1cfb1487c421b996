package dev.sdserve.job;

import java.util.ArrayDeque;
import java.util.concurrent.CompletableFuture;

/**
 * One watcher's queue of events. The publisher never blocks: step events conflate (an undelivered step preview is
 * replaced by a newer one), every other event is kept until taken. The consumer pulls with {@link #next()}.
 */
public final class Mailbox {
    private final ArrayDeque<JobEvent> queue = new ArrayDeque<>();
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
                // Conflate steps, but never let a step without a preview replace one that carries a preview.
                if (e instanceof JobEvent.Step s && !queue.isEmpty() && queue.peekLast() instanceof JobEvent.Step last
                        && (last.preview() == null || s.preview() != null)) {
                    queue.pollLast();
                    conflated++;
                }
                if (queue.isEmpty()) {
                    oldestUndeliveredNanos = System.nanoTime();
                }
                queue.addLast(e);
                return true;
            }
        }
        w.complete(e);
        return true;
    }

    /** The next event: completes at once when one is queued, else when one arrives. */
    public synchronized CompletableFuture<JobEvent> next() {
        JobEvent e = queue.pollFirst();
        if (e != null) {
            oldestUndeliveredNanos = queue.isEmpty() ? -1 : System.nanoTime();
            return CompletableFuture.completedFuture(e);
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

    public synchronized int queued() {
        return queue.size();
    }

    /** Step events replaced before their consumer took them. */
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
