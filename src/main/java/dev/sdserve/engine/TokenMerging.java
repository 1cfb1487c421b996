package dev.sdserve.engine;

/**
 * Token merging (ToMe for Stable Diffusion) as requests and the scheduler see it: the ratio's limits and steps, how
 * many tokens a ratio merges, and what a merged UNet call costs against the full one (measured; see the README's
 * token merging section). The graph side is {@code engine.tf.TokenMerge}.
 *
 * <p>Destinations are one token per 2×2 cell of the latent (a quarter of the tokens), the rest are sources; a ratio
 * merges {@code ⌊ratio · N⌋} tokens, at most every source, so ratios above 0.75 merge as 0.75 does.
 */
public final class TokenMerging {
    private TokenMerging() {
    }

    /** Ratios are served in steps of this size (each merged-token count is a UNet graph of its own). */
    public static final double RATIO_STEP = 0.05;
    /** The largest ratio a request may give (A1111's slider maximum). */
    public static final double MAX_RATIO = 0.9;

    /** A ratio as served: rounded to {@link #RATIO_STEP}. */
    public static double quantize(double ratio) {
        return Math.round(ratio / RATIO_STEP) / (1 / RATIO_STEP);
    }

    /** Tokens merged away at {@code ratio} on an {@code h × w} latent: ⌊ratio · N⌋, at most the sources. */
    public static int merged(int h, int w, double ratio) {
        if (!(ratio > 0)) {
            return 0;
        }
        int n = h * w;
        return Math.min(n - (h / 2) * (w / 2), (int) Math.floor(ratio * n + 1e-9));
    }

    /** The scheduler's bucket suffix of a ratio: none without merging, so buckets stay what they were. */
    public static String bucketSuffix(double ratio) {
        return ratio > 0 ? "/tome" + quantize(ratio) : "";
    }

    /** Latent tokens (h·w) of the measured points, ascending. */
    static final int[] MEASURED_TOKENS = {256, 1024, 4096};
    /** Measured ratios, ascending, starting at 0. */
    static final double[] MEASURED_RATIOS = {0, 0.3, 0.5};
    /**
     * Time of a merged UNet call over the full one, per measured token count (rows) and ratio (columns), from
     * {@code bench --tome-model} on the random SD 1.5 file (2026-12-03 11:18–11:48 UTC, 2 threads, load 2.0–4.1,
     * ratios alternated call by call): 256 tokens (batch 2) 1.00 / 0.98, 1024 tokens 0.99 / 0.97 (batch 1) and
     * 0.97 / 0.96 (batch 2), median of 7; 4096 tokens 0.89 / 0.83 (batch 1, median of 7; 0.89 / 0.82 in a run of 5)
     * and 0.73 / 0.66 (batch 2, median of 5). Rows take the batch mean. At 256 tokens no saving is claimed: whole
     * requests on the demo model (16×16 latents, small channels) ran at 1.02–1.03× with the option (bench --savings),
     * within noise.
     */
    static final double[][] MEASURED_COST = {
            {1.0, 1.0, 1.0},
            {1.0, 0.98, 0.97},
            {1.0, 0.81, 0.75}};

    /**
     * What a UNet sample with token merging at {@code ratio} costs against one without, on a latent of
     * {@code shape}: the measured table, interpolated linearly in the ratio and in log2 of the token count, held
     * constant outside it (ratios above the last measured one are extrapolated linearly, never below 0.1).
     */
    public static double costFactor(double ratio, LatentShape shape) {
        if (!(ratio > 0) || shape == null) {
            return 1.0;
        }
        double tokens = Math.max(1, (double) shape.height() * shape.width());
        double lt = Math.log(tokens) / Math.log(2);
        int hi = 0;
        while (hi < MEASURED_TOKENS.length - 1 && MEASURED_TOKENS[hi] < tokens) {
            hi++;
        }
        int lo = Math.max(0, hi - 1);
        double llo = Math.log(MEASURED_TOKENS[lo]) / Math.log(2), lhi = Math.log(MEASURED_TOKENS[hi]) / Math.log(2);
        double w = hi == lo ? 0 : Math.max(0, Math.min(1, (lt - llo) / (lhi - llo)));
        double r = Math.min(ratio, 0.75);
        double f = (1 - w) * atRatio(MEASURED_COST[lo], r) + w * atRatio(MEASURED_COST[hi], r);
        return Math.max(0.1, Math.min(1.0, f));
    }

    private static double atRatio(double[] row, double r) {
        int n = MEASURED_RATIOS.length;
        int k = 1;
        while (k < n - 1 && MEASURED_RATIOS[k] < r) {
            k++;
        }
        double w = (r - MEASURED_RATIOS[k - 1]) / (MEASURED_RATIOS[k] - MEASURED_RATIOS[k - 1]);
        return row[k - 1] + w * (row[k] - row[k - 1]);
    }
}
