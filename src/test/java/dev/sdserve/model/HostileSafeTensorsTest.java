package dev.sdserve.model;

import dev.sdserve.engine.tf.Weights;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Hostile safetensors files beyond {@link SafeTensorsTest#hostileFilesGetClearErrors}: every one must be refused with
 * a {@link SafeTensorsException} whose message names the problem, quickly and without a large allocation
 * (the test JVM's heap is far smaller than what the headers claim).
 */
class HostileSafeTensorsTest {
    @TempDir
    Path tmp;

    record Bad(String what, byte[] file, String expect) {
    }

    private static byte[] file(String json, byte[] data) {
        byte[] h = json.getBytes(StandardCharsets.UTF_8);
        return ByteBuffer.allocate(8 + h.length + data.length).order(ByteOrder.LITTLE_ENDIAN).putLong(h.length).put(h)
                .put(data).array();
    }

    private static byte[] file(String json, int dataBytes) {
        return file(json, new byte[dataBytes]);
    }

    private static String nested(int depth) {
        return "{\"a\":".repeat(depth) + "{}" + "}".repeat(depth);
    }

    private static String t(String name, String dtype, String shape, long from, long to) {
        return "\"" + name + "\":{\"dtype\":\"" + dtype + "\",\"shape\":" + shape + ",\"data_offsets\":[" + from + "," + to + "]}";
    }

    static List<Bad> openCases() {
        List<Bad> c = new ArrayList<>();
        c.add(new Bad("100-level nested JSON", file(nested(100), 0), "malformed JSON"));
        c.add(new Bad("10000-level nested JSON", file(nested(10_000), 0), "malformed JSON"));
        c.add(new Bad("nested array in shape", file("{" + t("a", "F32", "[[[[1]]]]", 0, 4) + "}", 4), "non-integer"));
        c.add(new Bad("2^40 elements claimed, tiny span", file("{" + t("a", "F32", "[1048576,1048576]", 0, 4) + "}", 4), "span"));
        c.add(new Bad("2^40 elements with matching offsets", file("{" + t("a", "F32", "[1048576,1048576]", 0, 1L << 42) + "}", 4), "truncated"));
        c.add(new Bad("2^62 x 4 bytes overflows", file("{" + t("a", "F32", "[4611686018427387904,4]", 0, 4) + "}", 4), "overflow"));
        c.add(new Bad("product overflows to a small number", file("{" + t("a", "U8", "[4294967296,4294967296]", 0, 0) + "}", 0), "overflow"));
        c.add(new Bad("rank 9", file("{" + t("a", "F32", "[1,1,1,1,1,1,1,1,1]", 0, 4) + "}", 4), "more than 8"));
        c.add(new Bad("offset beyond long", file("{" + t("a", "F32", "[1]", 0, 0) .replace("[0,0]", "[0,99999999999999999999]") + "}", 4), "out of range"));
        c.add(new Bad("huge number literal", file("{" + t("a", "F32", "[1]", 0, 4).replace("[1]", "[" + "9".repeat(100) + "]") + "}", 4), "malformed JSON"));
        c.add(new Bad("float in shape", file("{" + t("a", "F32", "[1.5]", 0, 4) + "}", 4), "non-integer"));
        c.add(new Bad("reversed offsets", file("{" + t("a", "F32", "[1]", 4, 0) + "}", 4), "invalid data_offsets"));
        c.add(new Bad("duplicate tensor", file("{" + t("a", "F32", "[1]", 0, 4) + "," + t("a", "F32", "[1]", 4, 8) + "}", 8), "twice"));
        c.add(new Bad("dtype/shape mismatch (F16 bytes for F32)", file("{" + t("a", "F32", "[4]", 0, 8) + "}", 8), "span"));
        c.add(new Bad("metadata not a string", file("{\"__metadata__\":{\"k\":1}}", 0), "not a string"));
        c.add(new Bad("tensor entry not an object", file("{\"a\":[1,2]}", 0), "not an object"));
        c.add(new Bad("missing dtype", file("{\"a\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4), "lacks dtype"));
        c.add(new Bad("trailing garbage after JSON", file("{}xx", 0), "JSON"));
        c.add(new Bad("invalid UTF-8 in header", file("{\"\u00ff\":{}}", 0), ""));
        c.add(new Bad("header length exactly past the end", truncatedHeader(), "truncated"));
        c.add(new Bad("negative header length", ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN).putLong(-8).array(), "header length"));
        c.add(new Bad("64 MiB + 1 header length", ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN).putLong((64L << 20) + 1).array(), "header length"));
        c.add(new Bad("empty file", new byte[0], "not a safetensors"));
        c.add(new Bad("very long string", file("{\"" + "a".repeat((1 << 20) + 10) + "\":{}}", 0), "malformed JSON"));
        return c;
    }

    private static byte[] truncatedHeader() {
        byte[] f = file("{}", 0);
        ByteBuffer.wrap(f).order(ByteOrder.LITTLE_ENDIAN).putLong(0, 3);
        return f;
    }

    @Test
    void hostileHeadersAreRefusedWithClearErrors() throws IOException {
        List<String> failures = new ArrayList<>();
        int n = 0;
        for (Bad b : openCases()) {
            n++;
            Path p = tmp.resolve("bad" + n + ".safetensors");
            Files.write(p, b.file());
            long t0 = System.nanoTime();
            try (SafeTensors st = SafeTensors.open(p)) {
                failures.add(b.what() + ": opened (" + st.tensors().size() + " tensors)");
            } catch (SafeTensorsException e) {
                String m = e.getMessage();
                if (!m.contains(p.toString()) && !m.contains("bad" + n)) {
                    failures.add(b.what() + ": message does not name the file: " + m);
                }
                if (!m.toLowerCase().contains(b.expect().toLowerCase())) {
                    failures.add(b.what() + ": expected '" + b.expect() + "' in: " + m);
                }
            } catch (Throwable e) {
                failures.add(b.what() + ": " + e);
            }
            long ms = (System.nanoTime() - t0) / 1_000_000;
            if (ms > 2000) {
                failures.add(b.what() + ": took " + ms + " ms");
            }
        }
        System.out.println("HostileSafeTensorsTest: " + n + " hostile headers tried");
        assertTrue(failures.isEmpty(), String.join("\n", failures));
    }

    private static byte[] f32(float... v) {
        ByteBuffer b = ByteBuffer.allocate(v.length * 4).order(ByteOrder.LITTLE_ENDIAN);
        for (float x : v) {
            b.putFloat(x);
        }
        return b.array();
    }

    private static byte[] f16(short... v) {
        ByteBuffer b = ByteBuffer.allocate(v.length * 2).order(ByteOrder.LITTLE_ENDIAN);
        for (short x : v) {
            b.putShort(x);
        }
        return b.array();
    }

    @Test
    void nonFiniteWeightsAreRefusedNamingTheTensorAndElement() throws IOException {
        String name = "model.diffusion_model.out.0.weight";
        record W(String what, String dtype, byte[] data, int n, String value, long index) {
        }
        List<W> ws = List.of(
                new W("F32 NaN", "F32", f32(1, 2, Float.NaN, 4), 4, "NaN", 2),
                new W("F32 +Inf", "F32", f32(Float.POSITIVE_INFINITY, 0, 0, 0), 4, "Infinity", 0),
                new W("F32 -Inf", "F32", f32(0, 0, 0, Float.NEGATIVE_INFINITY), 4, "-Infinity", 3),
                new W("F16 +Inf (0x7c00)", "F16", f16((short) 0x3c00, (short) 0x7c00), 2, "Infinity", 1),
                new W("F16 NaN (0x7e00)", "F16", f16((short) 0x7e00, (short) 0), 2, "NaN", 0),
                new W("BF16 NaN (0x7fc0)", "BF16", f16((short) 0, (short) 0x7fc0), 2, "NaN", 1),
                new W("BF16 -Inf (0xff80)", "BF16", f16((short) 0xff80, (short) 0), 2, "-Infinity", 0));
        int n = 0;
        for (W w : ws) {
            Path p = tmp.resolve("nan" + n++ + ".safetensors");
            Files.write(p, file("{" + t(name, w.dtype(), "[" + w.n() + "]", 0, w.data().length) + "}", w.data()));
            try (SafeTensors st = SafeTensors.open(p)) {
                assertEquals(w.n(), st.floats(name).length, "plain reads still work (golden data, diagnostics)");
                SafeTensorsException e = assertThrows(SafeTensorsException.class, () -> st.finiteFloats(name), w.what());
                assertTrue(e.getMessage().contains("'" + name + "'") && e.getMessage().contains(" " + w.value() + " ")
                        && e.getMessage().contains("element " + w.index()), w.what() + ": " + e.getMessage());
            }
        }
        // A finite tensor passes, including the largest finite halves and subnormals.
        Path ok = tmp.resolve("ok.safetensors");
        Files.write(ok, file("{" + t(name, "F16", "[3]", 0, 6) + "}", f16((short) 0x7bff, (short) 0x0001, (short) 0xfbff)));
        try (SafeTensors st = SafeTensors.open(ok)) {
            assertArrayEquals(new float[]{65504f, 5.9604645e-8f, -65504f}, st.finiteFloats(name));
        }
        System.out.println("HostileSafeTensorsTest: " + ws.size() + " non-finite weight files tried");
    }

    @Test
    void theTfEngineLoaderRefusesNonFiniteWeightsInStreamedAndTransposedTensors() throws IOException {
        // 1-D tensor: streamed in chunks straight into TF memory; 4-D 3x3 kernel: transposed through a float[].
        String streamed = "model.diffusion_model.time_embed.0.bias";
        String kernel = "model.diffusion_model.input_blocks.0.0.weight";
        float[] k = new float[9];
        k[7] = Float.NaN;
        for (String which : List.of(streamed, kernel)) {
            byte[] a = which.equals(streamed) ? f32(0.5f, Float.POSITIVE_INFINITY) : f32(0.5f, 0.25f);
            byte[] b = which.equals(kernel) ? f32(k) : f32(new float[9]);
            byte[] data = ByteBuffer.allocate(a.length + b.length).put(a).put(b).array();
            Path p = tmp.resolve("w-" + which.length() + ".safetensors");
            Files.write(p, file("{" + t(streamed, "F32", "[2]", 0, 8) + "," + t(kernel, "F32", "[1,1,3,3]", 8, 44) + "}", data));
            try (SafeTensors st = SafeTensors.open(p)) {
                SafeTensorsException e = assertThrows(SafeTensorsException.class, () -> Weights.load(st).close());
                assertTrue(e.getMessage().contains("'" + which + "'"), e.getMessage());
            }
        }
    }
}
