package dev.sdserve.clock;

import java.util.concurrent.atomic.AtomicLong;

/**
 * A simulated clock: time advances only through {@link #sleepNanos} / {@link #advanceMillis}. Thread-safe; meant
 * for a single thread that does the "work" (the scheduler thread calling the fake engine) while others read.
 */
public final class SimClock implements Clock {
    private final AtomicLong nanos = new AtomicLong();
    private final long epochMillisAtZero;

    /** A clock that starts at the given epoch milliseconds. */
    public SimClock(long epochMillisAtZero) {
        this.epochMillisAtZero = epochMillisAtZero;
    }

    /** A clock that starts at 2026-01-01T00:00:00Z. */
    public SimClock() {
        this(1_767_225_600_000L);
    }

    @Override
    public long nanoTime() {
        return nanos.get();
    }

    @Override
    public long currentTimeMillis() {
        return epochMillisAtZero + Math.floorDiv(nanos.get(), 1_000_000L);
    }

    @Override
    public void sleepNanos(long n) {
        if (n > 0) {
            nanos.addAndGet(n);
        }
    }

    public void advanceMillis(double ms) {
        sleepNanos(Math.round(ms * 1e6));
    }

    /** Moves time forward to {@code targetNanos} (no-op when already past it). */
    public void advanceTo(long targetNanos) {
        nanos.accumulateAndGet(targetNanos, Math::max);
    }

    /** Simulated seconds since the origin. */
    public double seconds() {
        return nanos.get() / 1e9;
    }

    @Override
    public String toString() {
        return "SimClock[" + seconds() + " s]";
    }
}
