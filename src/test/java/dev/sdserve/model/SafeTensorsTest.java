package dev.sdserve.model;

import dev.sdserve.testutil.Shared;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.*;

class SafeTensorsTest {
    @TempDir
    Path tmp;

    @Test
    void readsTheGoldenModelInBothPrecisions() throws IOException {
        Path dir = Shared.golden("sd15-tiny");
        try (SafeTensors f32 = SafeTensors.open(dir.resolve("tiny-sd15.safetensors"));
             SafeTensors f16 = SafeTensors.open(dir.resolve("tiny-sd15-fp16.safetensors"))) {
            assertTrue(f32.names().size() > 500, "tensors: " + f32.names().size());
            String name = "model.diffusion_model.input_blocks.0.0.weight";
            assertEquals(DType.F32, f32.info(name).dtype());
            assertEquals(DType.F16, f16.info(name).dtype());
            assertArrayEquals(new long[]{32, 4, 3, 3}, f32.shape(name));
            float[] a = f32.floats(name);
            float[] b = f16.floats(name);
            assertEquals(a.length, b.length);
            for (int i = 0; i < a.length; i++) {
                // fp16 keeps 11 significant bits: relative error ≤ 2^-11 for normal numbers
                assertEquals(a[i], b[i], Math.abs(a[i]) * 0x1p-11 + 1e-7, "element " + i);
            }
        }
    }

    @Test
    void halfConversionRoundsToNearestEven() {
        assertEquals(0x3c00, Half.fromFloat(1f) & 0xffff);
        assertEquals(0xc000, Half.fromFloat(-2f) & 0xffff);
        assertEquals(0x7bff, Half.fromFloat(65504f) & 0xffff);
        assertEquals(0x7c00, Half.fromFloat(1e6f) & 0xffff);
        assertEquals(0x0001, Half.fromFloat(0x1p-24f) & 0xffff);
        assertEquals(0x0400, Half.fromFloat(0x1p-14f) & 0xffff);
        // 1 + 2^-11 is halfway between 1 and the next half (1 + 2^-10): ties to even → 1
        assertEquals(0x3c00, Half.fromFloat(1f + 0x1p-11f) & 0xffff);
        assertEquals(0x3c02, Half.fromFloat(1f + 3 * 0x1p-11f) & 0xffff);
        for (int h = 0; h < 65536; h++) {
            float f = Half.toFloat((short) h);
            if (!Float.isNaN(f)) {
                assertEquals(h, Half.fromFloat(f) & 0xffff, "round trip of 0x" + Integer.toHexString(h));
            }
        }
    }

    @Test
    void writerRoundTripsEveryDtype() throws IOException {
        Path p = tmp.resolve("t.safetensors");
        float[] v = {1.5f, -2.25f, 3.0e-3f, 1000f, 0f, -0f};
        new SafeTensorsWriter().metadata("format", "pt")
                .add("a", DType.F32, new long[]{2, 3}, v)
                .add("b", DType.F16, new long[]{6}, v)
                .add("c", DType.BF16, new long[]{3, 2}, v)
                .addLongs("ids", DType.I64, new long[]{1, 3}, new long[]{0, 1, 76})
                .write(p);
        try (SafeTensors st = SafeTensors.open(p)) {
            assertEquals("pt", st.metadata().get("format"));
            assertArrayEquals(v, st.floats("a"));
            float[] b = st.floats("b");
            float[] c = st.floats("c");
            for (int i = 0; i < v.length; i++) {
                assertEquals(v[i], b[i], Math.abs(v[i]) * 1e-3);
                assertEquals(v[i], c[i], Math.abs(v[i]) * 1e-2);
            }
            assertArrayEquals(new int[]{0, 1, 76}, st.ints("ids"));
        }
    }

    private Path raw(String json, int dataBytes) throws IOException {
        byte[] h = json.getBytes(StandardCharsets.UTF_8);
        ByteBuffer b = ByteBuffer.allocate(8 + h.length + dataBytes).order(ByteOrder.LITTLE_ENDIAN);
        b.putLong(h.length).put(h);
        Path p = Files.createTempFile(tmp, "bad", ".safetensors");
        Files.write(p, b.array());
        return p;
    }

    private String error(Path p) {
        SafeTensorsException e = assertThrows(SafeTensorsException.class, () -> SafeTensors.open(p).close());
        return e.getMessage();
    }

    @Test
    void hostileFilesGetClearErrors() throws IOException {
        Path huge = tmp.resolve("huge");
        Files.write(huge, ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN).putLong(Long.MAX_VALUE).array());
        assertTrue(error(huge).contains("header length"), error(huge));
        Path tiny = tmp.resolve("tiny");
        Files.write(tiny, new byte[3]);
        assertTrue(error(tiny).contains("not a safetensors"));
        assertTrue(error(raw("{\"a\":", 0)).contains("malformed JSON"));
        assertTrue(error(raw("[1,2]", 0)).contains("not a JSON object"));
        assertTrue(error(raw("{\"a\":{\"dtype\":\"Q8\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1)).contains("unsupported dtype"));
        assertTrue(error(raw("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4]}}", 4)).contains("span"));
        assertTrue(error(raw("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 4)).contains("truncated"));
        assertTrue(error(raw("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                + "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[2,6]}}", 8)).contains("overlap"));
        assertTrue(error(raw("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8)).contains("gap"));
        assertTrue(error(raw("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 12)).contains("after the last tensor"));
        assertTrue(error(raw("{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4)).contains("negative"));
        assertTrue(error(raw("{\"a\":{\"b\":{\"c\":{\"d\":{\"e\":{\"f\":{\"g\":{\"h\":{\"i\":{}}}}}}}}}}", 0)).contains("malformed JSON"));
        assertTrue(error(raw("{\"a\":{\"dtype\":\"F32\",\"shape\":[4611686018427387904,4],\"data_offsets\":[0,4]}}", 4)).length() > 0);
    }
}
