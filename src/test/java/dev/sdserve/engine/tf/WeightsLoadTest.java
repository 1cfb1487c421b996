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
}
