package dev.sdserve.tools.simulate;

import dev.sdserve.job.GenerationRequest;

import java.util.SplittableRandom;

/**
 * The text-embedding cache's simulator scenario: prompts and negative prompts as a public service sees them, drawn
 * from the request's seed (its index in the trace). 30% of the prompts repeat one of 20 popular prompts (Zipf-like:
 * the k-th is drawn with weight 1/k), the rest are new; 60% of the negatives are empty, 30% one of 3 common
 * negatives, 10% new. Each request encodes its prompt and its negative, so about 30% of the prompts and 90% of the
 * negatives can hit once the popular ones are in: about 60% of the encoded texts.
 */
final class TextCacheScenario {
    private static final int POPULAR = 20;

    private TextCacheScenario() {
    }

    static GenerationRequest prompts(GenerationRequest r) {
        long index = r.seed() == null ? 0 : r.seed();
        SplittableRandom rnd = new SplittableRandom(0x7e3cL * 1_000_003L + index);
        String prompt = rnd.nextDouble() < 0.3 ? "popular prompt " + zipf(rnd, POPULAR) : r.prompt();
        double n = rnd.nextDouble();
        String negative = n < 0.6 ? "" : n < 0.9 ? "common negative " + rnd.nextInt(3) : "negative of request " + index;
        return r.withPrompt(prompt).withNegative(negative);
    }

    private static int zipf(SplittableRandom rnd, int n) {
        double h = 0;
        for (int k = 1; k <= n; k++) {
            h += 1.0 / k;
        }
        double u = rnd.nextDouble() * h;
        for (int k = 1; k <= n; k++) {
            u -= 1.0 / k;
            if (u <= 0) {
                return k;
            }
        }
        return n;
    }
}
