package dev.sdserve.preview;

import java.util.LinkedHashMap;
import java.util.Map;

/** The demo model's colour words with common RGB values, and the nearest of them to a colour (tests by colour). */
final class Colours {
    static final Map<String, int[]> NAMED = new LinkedHashMap<>();

    static {
        NAMED.put("red", new int[]{255, 0, 0});
        NAMED.put("green", new int[]{0, 128, 0});
        NAMED.put("blue", new int[]{0, 0, 255});
        NAMED.put("yellow", new int[]{255, 255, 0});
        NAMED.put("orange", new int[]{255, 165, 0});
        NAMED.put("purple", new int[]{128, 0, 128});
        NAMED.put("pink", new int[]{255, 192, 203});
        NAMED.put("white", new int[]{255, 255, 255});
        NAMED.put("black", new int[]{0, 0, 0});
        NAMED.put("cyan", new int[]{0, 255, 255});
        NAMED.put("gray", new int[]{128, 128, 128});
        NAMED.put("brown", new int[]{139, 69, 19});
    }

    private Colours() {
    }

    /** Hue in degrees [0, 360) of an RGB colour in [0, 1] (0 for greys). */
    static double hue(float[] c) {
        double r = c[0], g = c[1], b = c[2];
        double mx = Math.max(r, Math.max(g, b)), mn = Math.min(r, Math.min(g, b));
        if (mx - mn < 1e-9) {
            return 0;
        }
        double h;
        if (mx == r) {
            h = ((g - b) / (mx - mn)) % 6;
        } else if (mx == g) {
            h = (b - r) / (mx - mn) + 2;
        } else {
            h = (r - g) / (mx - mn) + 4;
        }
        return (60 * h + 360) % 360;
    }

    /** HSV saturation of an RGB colour in [0, 1]. */
    static double saturation(float[] c) {
        double mx = Math.max(c[0], Math.max(c[1], c[2])), mn = Math.min(c[0], Math.min(c[1], c[2]));
        return mx <= 0 ? 0 : (mx - mn) / mx;
    }

    /** Whether a colour is visibly coloured (saturation ≥ 0.15) with a hue in [from, to] degrees. */
    static boolean isHue(float[] c, double from, double to) {
        double h = hue(c);
        return saturation(c) >= 0.15 && h >= from && h <= to;
    }

    static String describe(float[] c) {
        return String.format(java.util.Locale.ROOT, "rgb(%d, %d, %d), hue %.0f°, saturation %.2f, nearest %s",
                Math.round(c[0] * 255), Math.round(c[1] * 255), Math.round(c[2] * 255), hue(c), saturation(c), nearest(c));
    }

    /** The named colour nearest (Euclidean, 0–255) to an RGB colour in [0, 1]. */
    static String nearest(float[] rgb01) {
        String best = null;
        double bestD = Double.MAX_VALUE;
        for (var e : NAMED.entrySet()) {
            double d = 0;
            for (int r = 0; r < 3; r++) {
                double v = rgb01[r] * 255 - e.getValue()[r];
                d += v * v;
            }
            if (d < bestD) {
                bestD = d;
                best = e.getKey();
            }
        }
        return best;
    }
}
