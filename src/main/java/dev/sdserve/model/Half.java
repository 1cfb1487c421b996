package dev.sdserve.model;

/** IEEE 754 binary16 and bfloat16 conversions (Java 17 has no Float.float16ToFloat). */
public final class Half {
    private static final float[] TABLE = new float[65536];

    static {
        for (int h = 0; h < 65536; h++) {
            TABLE[h] = slowToFloat((short) h);
        }
    }

    private Half() {
    }

    public static float toFloat(short h) {
        return TABLE[h & 0xffff];
    }

    public static float bf16ToFloat(short b) {
        return Float.intBitsToFloat((b & 0xffff) << 16);
    }

    private static float slowToFloat(short hs) {
        int h = hs & 0xffff;
        int sign = (h >>> 15) & 1;
        int exp = (h >>> 10) & 0x1f;
        int mant = h & 0x3ff;
        float v;
        if (exp == 0) {
            v = mant * 0x1p-24f;
        } else if (exp == 31) {
            v = mant == 0 ? Float.POSITIVE_INFINITY : Float.NaN;
        } else {
            v = Float.intBitsToFloat(((exp - 15 + 127) << 23) | (mant << 13));
        }
        return sign == 1 ? -v : v;
    }

    /** Round-to-nearest-even float → binary16. */
    public static short fromFloat(float f) {
        int bits = Float.floatToRawIntBits(f);
        int sign = (bits >>> 16) & 0x8000;
        int val = bits & 0x7fffffff;
        if (val >= 0x7f800000) { // inf or nan
            return (short) (sign | 0x7c00 | (val > 0x7f800000 ? 0x200 : 0));
        }
        if (val >= 0x477ff000) { // rounds to >= 65520: overflow to inf
            return (short) (sign | 0x7c00);
        }
        if (val < 0x38800000) { // subnormal half (or zero)
            if (val < 0x33000000) {
                return (short) sign;
            }
            int exp = val >>> 23;
            int mant = (val & 0x7fffff) | 0x800000;
            int shift = 126 - exp; // |f| / 2^-24 = mant · 2^(exp − 126)
            int half = mant >>> shift;
            int rem = mant & ((1 << shift) - 1);
            int mid = 1 << (shift - 1);
            if (rem > mid || (rem == mid && (half & 1) == 1)) {
                half++;
            }
            return (short) (sign | half);
        }
        int h = ((val - 0x38000000) >>> 13);
        int rem = val & 0x1fff;
        if (rem > 0x1000 || (rem == 0x1000 && (h & 1) == 1)) {
            h++;
        }
        return (short) (sign | h);
    }
}
