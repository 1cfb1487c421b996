package dev.sdserve.clock;

/**
 * Time as the scheduler, the admission controller and the fake engine see it. Production uses {@link #system()};
 * tests and the simulator use a {@link SimClock}, whose time moves only when something sleeps on it (the fake
 * engine "spends" its simulated cost by sleeping), so runs are fast and reproducible.
 */
public interface Clock {
    /** Monotonic nanoseconds (origin arbitrary). */
    long nanoTime();

    /** Wall-clock epoch milliseconds (deadlines and public timestamps use this). */
    long currentTimeMillis();

    /** Lets {@code nanos} of this clock's time pass. */
    void sleepNanos(long nanos) throws InterruptedException;

    default double millisSince(long startNanos) {
        return (nanoTime() - startNanos) / 1e6;
    }

    Clock SYSTEM = new Clock() {
        @Override
        public long nanoTime() {
            return System.nanoTime();
        }

        @Override
        public long currentTimeMillis() {
            return System.currentTimeMillis();
        }

        @Override
        public void sleepNanos(long nanos) throws InterruptedException {
            if (nanos > 0) {
                Thread.sleep(nanos / 1_000_000, (int) (nanos % 1_000_000));
            }
        }

        @Override
        public String toString() {
            return "SystemClock";
        }
    };

    static Clock system() {
        return SYSTEM;
    }
}
