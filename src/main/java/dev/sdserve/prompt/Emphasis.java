package dev.sdserve.prompt;

import java.util.Locale;

/**
 * What the per-token weights do to the text encoder's output (AUTOMATIC1111's "Emphasis mode" setting).
 */
public enum Emphasis {
    /** Brackets and BREAK are plain text; every weight is 1. */
    NONE("None"),
    /** Parsed (brackets removed, BREAK starts a chunk) but the weights are not applied. */
    IGNORE("Ignore"),
    /** Hidden states × weight, then the chunk rescaled so its mean equals the mean before weighting (A1111's default). */
    ORIGINAL("Original"),
    /** Hidden states × weight, no rescaling. */
    NO_NORM("No norm");

    private final String a1111;

    Emphasis(String a1111) {
        this.a1111 = a1111;
    }

    /** The name A1111 gives the mode ("Original", "No norm", …). */
    public String a1111Name() {
        return a1111;
    }

    /** By A1111's name or the enum name, any case ({@code original}, {@code No norm}, {@code no_norm}). */
    public static Emphasis of(String name) {
        String n = name.strip().toLowerCase(Locale.ROOT).replace('_', ' ');
        for (Emphasis e : values()) {
            if (e.a1111.toLowerCase(Locale.ROOT).equals(n)) {
                return e;
            }
        }
        throw new IllegalArgumentException("emphasis '" + name + "' is not one of None, Ignore, Original, No norm");
    }

    /**
     * Applies the weights to one chunk position across a batch: {@code z[r]} is row r's hidden states
     * ({@code tokens × width}), {@code w[r]} its per-token weights, {@code count[r]} how many times the row stands in
     * the batch (A1111 takes the means over every row of its batch, duplicates included). Rows are changed in place.
     * The means are over all rows together, as A1111's {@code z.mean()} over its (batch, tokens, width) tensor.
     */
    void apply(float[][] z, float[][] w, int[] count) {
        if (this == NONE || this == IGNORE) {
            return;
        }
        double before = 0;
        double after = 0;
        long n = 0;
        for (int r = 0; r < z.length; r++) {
            float[] zr = z[r];
            int tokens = w[r].length;
            int width = zr.length / tokens;
            double sb = 0;
            double sa = 0;
            for (int t = 0; t < tokens; t++) {
                float wt = w[r][t];
                for (int c = t * width, e = c + width; c < e; c++) {
                    sb += zr[c];
                    zr[c] *= wt;
                    sa += zr[c];
                }
            }
            before += sb * count[r];
            after += sa * count[r];
            n += (long) zr.length * count[r];
        }
        if (this == NO_NORM) {
            return;
        }
        // float32 means and ratio, as torch computes them
        float factor = (float) (before / n) / (float) (after / n);
        for (float[] zr : z) {
            for (int c = 0; c < zr.length; c++) {
                zr[c] *= factor;
            }
        }
    }
}
