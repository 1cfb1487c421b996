package dev.sdserve.engine.tf;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * UNet batches whose samples have contexts of different lengths (77·k tokens: long prompts, BREAK, a prompt and a
 * negative prompt of different chunk counts). Each sample must get exactly what it gets alone:
 * <ul>
 *   <li>{@link Mode#MASK}: every context is padded with zeros to the longest, and the cross-attention adds −1e30 to
 *       the scores of the padding (softmax weight exactly 0), so one graph call serves the whole batch;</li>
 *   <li>{@link Mode#GROUP}: one call per context length.</li>
 * </ul>
 * {@code -Dsdserve.mixed-context=mask|group} (default {@link #DEFAULT}, chosen by measurement: see the README).
 */
final class MixedContexts {
    enum Mode { MASK, GROUP }

    static final Mode DEFAULT = Mode.MASK;
    static final float PADDING_BIAS = -1e30f;

    private MixedContexts() {
    }

    static Mode configured() {
        return Mode.valueOf(System.getProperty("sdserve.mixed-context", DEFAULT.name()).toUpperCase(Locale.ROOT));
    }

    static boolean mixed(List<float[]> ctx) {
        for (float[] c : ctx) {
            if (c.length != ctx.get(0).length) {
                return true;
            }
        }
        return false;
    }

    /** Rows by context length (floats), in order of first appearance. */
    static Map<Integer, List<Integer>> byLength(List<float[]> ctx) {
        Map<Integer, List<Integer>> g = new LinkedHashMap<>();
        for (int i = 0; i < ctx.size(); i++) {
            g.computeIfAbsent(ctx.get(i).length, k -> new ArrayList<>()).add(i);
        }
        return g;
    }

    /** Contexts padded with zeros to the longest, and per sample its bias row (0 own tokens, −1e30 padding). */
    record Padded(List<float[]> ctx, float[][] bias) {
    }

    static Padded pad(List<float[]> ctx, int dim) {
        int longest = 0;
        for (float[] c : ctx) {
            longest = Math.max(longest, c.length);
        }
        int tokens = longest / dim;
        List<float[]> out = new ArrayList<>(ctx.size());
        float[][] bias = new float[ctx.size()][tokens];
        for (int i = 0; i < ctx.size(); i++) {
            float[] c = ctx.get(i);
            if (c.length % dim != 0) {
                throw new IllegalArgumentException("context of " + c.length + " floats is not tokens × " + dim);
            }
            out.add(c.length == longest ? c : Arrays.copyOf(c, longest));
            Arrays.fill(bias[i], c.length / dim, tokens, PADDING_BIAS);
        }
        return new Padded(out, bias);
    }
}
