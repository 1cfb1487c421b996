package dev.sdserve.engine;

import java.util.List;

/**
 * DeepCache (Ma, Fang, Wang 2023): a full UNet step keeps the feature its deep path hands to the shallowest up
 * blocks; the next {@code interval − 1} steps run only the shallow path (the input convolution, the first down
 * block's first layer, the last two up blocks, the output head) on that cached feature. The cache belongs to the
 * request: a {@link Slot} per image, held by the scheduler's per-request state and dropped with it.
 */
public final class DeepCache {
    /**
     * A shallow step's time as a fraction of a full step's at the same batch, before the scheduler has measured one:
     * {@code bench --deepcache} measured 0.20 (latents 32²) and 0.33 (64²) on the full-size SD 1.5, 0.43–0.58 on the
     * demo model (README "DeepCache"); 0.5 errs on the side of predicting too much rather than too little. The scheduler learns the real
     * ratio per bucket from its shallow calls; the simulator's scenario uses this one.
     */
    public static final double SHALLOW_COST_PRIOR = 0.5;

    private DeepCache() {
    }

    /** The step of a request's evaluation {@code k} (0-based): a full step every {@code interval}, shallow ones between. */
    public static boolean shallowAt(int interval, int k) {
        return interval > 1 && k % interval != 0;
    }

    /**
     * One image's cache: the deep feature of each UNet row of its last full step (the prompt's row, then the
     * negative's when guided), NHWC floats, or none yet.
     */
    public static final class Slot {
        private float[][] rows;

        /** The cached features (prompt row first), or null before the first full step. */
        public synchronized float[][] rows() {
            return rows;
        }

        public synchronized void set(float[][] rows) {
            this.rows = rows;
        }

        /** Whether a shallow step needing {@code n} rows (1, 2 under guidance) can run from this cache. */
        public synchronized boolean covers(int n) {
            return rows != null && rows.length >= n;
        }

        /** Frees the cache (the request finished, failed or was cancelled). */
        public synchronized void clear() {
            rows = null;
        }

        /** Bytes held. */
        public synchronized long bytes() {
            long n = 0;
            if (rows != null) {
                for (float[] r : rows) {
                    n += 4L * r.length;
                }
            }
            return n;
        }
    }

    /**
     * What one denoise item does under DeepCache: {@code shallow} false runs the whole UNet and refills the slot;
     * true runs the shallow path from the slot's features.
     */
    public record Step(Slot slot, boolean shallow) {
    }

    /** True when any item of a batch takes part in DeepCache (null list or entries: none). */
    public static boolean any(List<Step> steps) {
        return steps != null && steps.stream().anyMatch(s -> s != null);
    }
}
