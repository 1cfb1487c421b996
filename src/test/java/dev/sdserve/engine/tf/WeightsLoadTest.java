package dev.sdserve.engine.tf;

import dev.sdserve.model.DType;
import dev.sdserve.model.Half;
import dev.sdserve.model.SafeTensors;
import dev.sdserve.model.SafeTensorsException;
import dev.sdserve.model.SafeTensorsWriter;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.tensorflow.types.TFloat16;
import org.tensorflow.types.TFloat32;

import java.nio.file.Path;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The streaming loader against a naive reference: values as the file's dtype decodes them (Half.toFloat, plain
 * bf16 widening), k×k kernels in HWIO by the textbook index formula, 1×1 convolutions as [out, in], the half
 * policy, and non-finite values refused in both the flat and the transposed path.
 */
class WeightsLoadTest {
    static final String UNET = "model.diffusion_model.";
    static final String VAE = "first_stage_model.";

    static float[] values(int n, long seed, DType dt) {
        SplittableRandom r = new SplittableRandom(seed);
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            float f = (float) (r.nextGaussian() * 0.5);
            // what the file will hold, exactly
            v[i] = switch (dt) {
                case F16 -> Half.toFloat(Half.fromFloat(f));
                case BF16 -> Float.intBitsToFloat(Float.floatToRawIntBits(f) & 0xffff0000);
                default -> f;
            };
        }
        return v;
    }

    /** Reference HWIO index for OIHW element (a, b, y, x). */
    static float[] hwio(float[] oihw, int o, int i, int kh, int kw) {
        float[] d = new float[oihw.length];
        for (int a = 0; a < o; a++) {
            for (int b = 0; b < i; b++) {
                for (int y = 0; y < kh; y++) {
                    for (int x = 0; x < kw; x++) {
                        d[((y * kw + x) * i + b) * o + a] = oihw[((a * i + b) * kh + y) * kw + x];
                    }
                }
            }
        }
        return d;
    }

    static float[] read(Weights w, String key) {
        return w.floats(key);
    }

    @Test
    void everyDtypeAndLayoutMatchesTheNaiveReference(@TempDir Path dir) throws Exception {
        for (DType dt : new DType[]{DType.F16, DType.F32, DType.BF16}) {
            // 11 input channels: more than one transposition block (8) and a partial one; 3×3 and 1×1 kernels,
            // a vector, and a tensor larger than one streaming chunk (1M elements)
            int o = 5, i = 11;
            float[] k3 = values(o * i * 9, 1, dt), k1 = values(7 * 3, 2, dt), bias = values(5, 3, dt);
            float[] big = values((1 << 20) + 123, 4, dt), vk3 = values(4 * 3 * 9, 5, dt);
            Path f = dir.resolve("w-" + dt + ".safetensors");
            new SafeTensorsWriter()
                    .add(UNET + "a.weight", dt, new long[]{o, i, 3, 3}, k3)
                    .add(UNET + "b.weight", dt, new long[]{7, 3, 1, 1}, k1)
                    .add(UNET + "a.bias", dt, new long[]{5}, bias)
                    .add(UNET + "big", dt, new long[]{big.length}, big)
                    .add(VAE + "c.weight", dt, new long[]{4, 3, 3, 3}, vk3)
                    .write(f);
            try (SafeTensors st = SafeTensors.open(f); Weights w = Weights.load(st, Weights.HalfPolicy.VAE_AND_TEXT)) {
                assertArrayEquals(new long[]{3, 3, i, o}, w.shape(UNET + "a.weight"));
                assertArrayEquals(hwio(k3, o, i, 3, 3), read(w, UNET + "a.weight"), dt + " 3x3");
                assertArrayEquals(new long[]{7, 3}, w.shape(UNET + "b.weight"));
                assertArrayEquals(k1, read(w, UNET + "b.weight"), dt + " 1x1");
                assertArrayEquals(bias, read(w, UNET + "a.bias"), dt + " bias");
                assertArrayEquals(big, read(w, UNET + "big"), dt + " multi-chunk");
                assertArrayEquals(hwio(vk3, 4, 3, 3, 3), read(w, VAE + "c.weight"), dt + " vae 3x3");
                assertInstanceOf(TFloat32.class, w.tensor(UNET + "a.weight"));
                // the VAE keeps half storage only when the file has F16 (no rounding of F32/BF16 files)
                assertEquals(dt == DType.F16, w.isHalf(VAE + "c.weight"), dt + " vae storage");
                if (dt == DType.F16) {
                    assertInstanceOf(TFloat16.class, w.tensor(VAE + "c.weight"));
                    IllegalStateException e = assertThrows(IllegalStateException.class, () -> w.get(VAE + "c.weight"));
                    assertTrue(e.getMessage().contains("half precision"), e.getMessage());
                }
                long expectBytes = 4L * (k3.length + k1.length + bias.length + big.length)
                        + (dt == DType.F16 ? 2L : 4L) * vk3.length;
                assertEquals(expectBytes, w.bytes());
            }
            try (SafeTensors st = SafeTensors.open(f); Weights w = Weights.load(st, Weights.HalfPolicy.NONE)) {
                assertFalse(w.isHalf(VAE + "c.weight"));
                assertArrayEquals(hwio(vk3, 4, 3, 3, 3), read(w, VAE + "c.weight"));
            }
        }
    }

    @Test
    void nonFiniteValuesAreRefusedInBothPaths(@TempDir Path dir) throws Exception {
        for (boolean conv : new boolean[]{true, false}) {
            for (DType dt : new DType[]{DType.F16, DType.F32}) {
                float[] v = values(4 * 9 * 9, 7, dt);
                v[100] = Float.POSITIVE_INFINITY;
                Path f = dir.resolve("bad-" + conv + dt + ".safetensors");
                long[] shape = conv ? new long[]{4, 9, 3, 3} : new long[]{v.length};
                new SafeTensorsWriter().add(VAE + "bad.weight", dt, shape, v).write(f);
                try (SafeTensors st = SafeTensors.open(f)) {
                    SafeTensorsException e = assertThrows(SafeTensorsException.class,
                            () -> Weights.load(st, Weights.HalfPolicy.VAE_AND_TEXT).close());
                    assertTrue(e.getMessage().contains("bad.weight") && e.getMessage().contains("Infinity"),
                            e.getMessage());
                }
            }
        }
    }

    /** Independent half → float: sign · mantissa · 2^(exponent − 25) in double arithmetic (exact), then narrowed. */
    static float naiveHalf(int h) {
        int e = (h >>> 10) & 31, m = h & 1023;
        double v = e == 0 ? m * Math.pow(2, -24) : (1024 + m) * Math.pow(2, e - 25);
        return (float) ((h & 0x8000) != 0 ? -v : v);
    }

    /** Every finite half pattern (±0, subnormals, normals up to ±65504), shuffled, cycled to {@code n} values. */
    static float[] everyFiniteHalf(int n) {
        float[] all = new float[63488];
        int k = 0;
        for (int h = 0; h < 65536; h++) {
            if ((h & 0x7c00) != 0x7c00) {
                all[k++] = naiveHalf(h);
            }
        }
        SplittableRandom r = new SplittableRandom(n); // shuffled: no structure between neighbours or rows
        for (int i = all.length - 1; i > 0; i--) {
            int j = r.nextInt(i + 1);
            float t = all[i];
            all[i] = all[j];
            all[j] = t;
        }
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            v[i] = all[i % all.length];
        }
        return v;
    }

    static void assertBitsEqual(float[] expected, float[] actual, String what) {
        assertEquals(expected.length, actual.length, what + " length");
        for (int i = 0; i < expected.length; i++) {
            if (Float.floatToRawIntBits(expected[i]) != Float.floatToRawIntBits(actual[i])) {
                throw new AssertionError(what + ": element " + i + " is " + actual[i] + " (0x"
                        + Integer.toHexString(Float.floatToRawIntBits(actual[i])) + "), expected " + expected[i]
                        + " (0x" + Integer.toHexString(Float.floatToRawIntBits(expected[i])) + ")");
            }
        }
    }

    /**
     * F16 → F32 bit for bit against the naive formula, for every finite half pattern, through the file-order
     * path (odd length over several chunks) and the transposed path (several output-channel groups, a partial
     * last group, a kernel row wider than a group, an odd number of output channels), both from a mapped file and
     * from positional reads, with the UNet converted to float32 and kept in half precision (the file's bits).
     */
    @Test
    void everyFiniteHalfConvertsExactlyInEveryPath(@TempDir Path dir) throws Exception {
        float[] flat = everyFiniteHalf(3 * 65536 + 77);
        int o = 70, i = 7000; // 63 000 columns: groups of 64 output channels, then 6
        int po = 7, pi = 5; // an odd number of output channels
        float[] odd = everyFiniteHalf(po * pi * 9);
        float[] k3 = everyFiniteHalf(o * i * 9);
        int wo = 2, wi = 466_700; // one output channel (4.2M values) is wider than a group
        float[] wide = everyFiniteHalf(wo * wi * 9);
        Path f = dir.resolve("halves.safetensors");
        new SafeTensorsWriter()
                .add(UNET + "flat", DType.F16, new long[]{flat.length}, flat)
                .add(UNET + "k3.weight", DType.F16, new long[]{o, i, 3, 3}, k3)
                .add(UNET + "wide.weight", DType.F16, new long[]{wo, wi, 3, 3}, wide)
                .add(UNET + "odd.weight", DType.F16, new long[]{po, pi, 3, 3}, odd)
                .add(VAE + "flat", DType.F16, new long[]{flat.length}, flat)
                .add(VAE + "k3.weight", DType.F16, new long[]{o, i, 3, 3}, k3)
                .write(f);
        float[] k3Hwio = hwio(k3, o, i, 3, 3), wideHwio = hwio(wide, wo, wi, 3, 3);
        for (int run = 0; run < 4; run++) {
            boolean map = run % 2 == 0;
            // VAE_AND_TEXT: the UNet tensors go F16 → F32; ALL: every tensor stays F16 (kernels transposed in pairs
            // of output channels where their count is even, element by element where it is not: the wide one)
            Weights.HalfPolicy policy = run < 2 ? Weights.HalfPolicy.VAE_AND_TEXT : Weights.HalfPolicy.ALL;
            Weights.mapResident = map;
            try (SafeTensors st = SafeTensors.open(f); Weights w = Weights.load(st, policy)) {
                String how = (map ? "mapped " : "read ") + policy;
                assertEquals(run >= 2, w.isHalf(UNET + "k3.weight"), how);
                assertBitsEqual(flat, w.floats(UNET + "flat"), how + " unet flat");
                assertBitsEqual(k3Hwio, w.floats(UNET + "k3.weight"), how + " unet 3x3");
                assertBitsEqual(wideHwio, w.floats(UNET + "wide.weight"), how + " unet wide 3x3");
                assertBitsEqual(hwio(odd, po, pi, 3, 3), w.floats(UNET + "odd.weight"), how + " odd 3x3");
                assertTrue(w.isHalf(VAE + "flat") && w.isHalf(VAE + "k3.weight"));
                assertBitsEqual(flat, w.floats(VAE + "flat"), how + " flat f16");
                assertBitsEqual(k3Hwio, w.floats(VAE + "k3.weight"), how + " 3x3 f16");
            } finally {
                Weights.mapResident = true;
            }
        }
    }

    /**
     * A non-finite half is found wherever it sits (the odd last element, a later output-channel group), whether
     * the tensor is converted to float32 or kept in half precision.
     */
    @Test
    void nonFiniteHalvesAreFoundInTailsAndLaterGroups(@TempDir Path dir) throws Exception {
        float[] odd = values(65536 + 3, 8, DType.F16);
        odd[odd.length - 1] = Float.NEGATIVE_INFINITY;
        int o = 70, i = 7000;
        // the flat tail; then a kernel with NaN in the second group (output channels 64..69), in an even and in an
        // odd output channel (the paired transposition reads rows two at a time)
        for (int bad : new int[]{-1, 66, 67}) {
            boolean conv = bad >= 0;
            float[] k3 = values(o * i * 9, 9, DType.F16);
            int at = conv ? bad * i * 9 + 5 : odd.length - 1;
            Path f = dir.resolve("bad-" + bad + ".safetensors");
            SafeTensorsWriter wr = new SafeTensorsWriter();
            if (conv) {
                k3[at] = Float.NaN;
                wr.add(UNET + "bad.weight", DType.F16, new long[]{o, i, 3, 3}, k3);
            } else {
                wr.add(UNET + "bad.weight", DType.F16, new long[]{odd.length}, odd);
            }
            wr.write(f);
            // float32 conversion, and half storage (for the kernel: the paired transposition's own check)
            for (Weights.HalfPolicy policy : new Weights.HalfPolicy[]{Weights.HalfPolicy.VAE_AND_TEXT,
                    Weights.HalfPolicy.ALL}) {
                try (SafeTensors st = SafeTensors.open(f)) {
                    SafeTensorsException e = assertThrows(SafeTensorsException.class,
                            () -> Weights.load(st, policy).close());
                    assertTrue(e.getMessage().contains("bad.weight") && e.getMessage().contains("at element " + at)
                            && e.getMessage().contains(conv ? "NaN" : "-Infinity"), policy + ": " + e.getMessage());
                }
            }
        }
    }
}
