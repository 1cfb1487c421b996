package dev.sdserve.testutil;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** Comparing float outputs (latents, images, predictions) in tests. */
public final class Floats {
    private Floats() {
    }

    /** {@code n} standard normal samples from {@code random}, as floats. */
    public static float[] gaussian(java.util.Random random, int n) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) {
            a[i] = (float) random.nextGaussian();
        }
        return a;
    }

    /** The largest absolute difference between two arrays of the same length (asserted). */
    public static double maxAbsDiff(float[] a, float[] b) {
        assertEquals(a.length, b.length, "lengths");
        double m = 0;
        for (int i = 0; i < a.length; i++) {
            m = Math.max(m, Math.abs(a[i] - b[i]));
        }
        return m;
    }
}
