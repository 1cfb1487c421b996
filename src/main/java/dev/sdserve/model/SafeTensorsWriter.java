package dev.sdserve.model;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.IOException;
import java.io.OutputStream;
import java.io.BufferedOutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Writes safetensors files, streaming tensor data so a multi-GB checkpoint never sits in memory. The file appears
 * atomically (written beside, then renamed).
 */
public final class SafeTensorsWriter {
    /** Produces a tensor's values chunk by chunk: fill {@code chunk} with elements starting at {@code start}. */
    @FunctionalInterface
    public interface FloatSource {
        void fill(long start, float[] chunk, int count);
    }

    private record Entry(String name, DType dtype, long[] shape, FloatSource floats, long[] longs) {
        long elements() {
            long n = 1;
            for (long d : shape) {
                n *= d;
            }
            return n;
        }
    }

    private final List<Entry> entries = new ArrayList<>();
    private final Map<String, String> metadata = new LinkedHashMap<>();

    public SafeTensorsWriter metadata(String key, String value) {
        metadata.put(key, value);
        return this;
    }

    public SafeTensorsWriter add(String name, DType dtype, long[] shape, float[] values) {
        long n = 1;
        for (long d : shape) {
            n *= d;
        }
        if (n != values.length) {
            throw new IllegalArgumentException(name + ": " + values.length + " values for shape " + java.util.Arrays.toString(shape));
        }
        return add(name, dtype, shape, (start, chunk, count) -> System.arraycopy(values, (int) start, chunk, 0, count));
    }

    public SafeTensorsWriter add(String name, DType dtype, long[] shape, FloatSource source) {
        if (!dtype.floating() || dtype == DType.F64) {
            throw new IllegalArgumentException("float writer supports F32, F16, BF16, not " + dtype);
        }
        entries.add(new Entry(name, dtype, shape.clone(), source, null));
        return this;
    }

    public SafeTensorsWriter addLongs(String name, DType dtype, long[] shape, long[] values) {
        if (dtype != DType.I64 && dtype != DType.I32) {
            throw new IllegalArgumentException("integer writer supports I64 and I32, not " + dtype);
        }
        entries.add(new Entry(name, dtype, shape.clone(), null, values.clone()));
        return this;
    }

    public void write(Path target) throws IOException {
        ObjectMapper om = new ObjectMapper();
        ObjectNode header = om.createObjectNode();
        if (!metadata.isEmpty()) {
            ObjectNode md = header.putObject("__metadata__");
            metadata.forEach(md::put);
        }
        long offset = 0;
        for (Entry e : entries) {
            ObjectNode o = header.putObject(e.name());
            o.put("dtype", e.dtype().name());
            ArrayNode sh = o.putArray("shape");
            for (long d : e.shape()) {
                sh.add(d);
            }
            long len = e.elements() * e.dtype().bytes;
            ArrayNode off = o.putArray("data_offsets");
            off.add(offset);
            off.add(offset + len);
            offset += len;
        }
        byte[] json = om.writeValueAsString(header).getBytes(StandardCharsets.UTF_8);
        int padded = (json.length + 7) / 8 * 8;
        byte[] hdr = new byte[padded];
        java.util.Arrays.fill(hdr, (byte) ' ');
        System.arraycopy(json, 0, hdr, 0, json.length);

        Path tmp = target.resolveSibling(target.getFileName() + ".tmp" + ProcessHandle.current().pid());
        try (OutputStream out = new BufferedOutputStream(Files.newOutputStream(tmp), 1 << 20)) {
            ByteBuffer len = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(padded);
            out.write(len.array());
            out.write(hdr);
            float[] chunk = new float[1 << 16];
            ByteBuffer buf = ByteBuffer.allocate(chunk.length * 8).order(ByteOrder.LITTLE_ENDIAN);
            for (Entry e : entries) {
                if (e.longs() != null) {
                    buf.clear();
                    for (long v : e.longs()) {
                        if (buf.remaining() < 8) {
                            out.write(buf.array(), 0, buf.position());
                            buf.clear();
                        }
                        if (e.dtype() == DType.I64) {
                            buf.putLong(v);
                        } else {
                            buf.putInt(Math.toIntExact(v));
                        }
                    }
                    out.write(buf.array(), 0, buf.position());
                    continue;
                }
                long total = e.elements();
                for (long start = 0; start < total; start += chunk.length) {
                    int count = (int) Math.min(chunk.length, total - start);
                    e.floats().fill(start, chunk, count);
                    buf.clear();
                    switch (e.dtype()) {
                        case F32 -> {
                            for (int i = 0; i < count; i++) {
                                buf.putFloat(chunk[i]);
                            }
                        }
                        case F16 -> {
                            for (int i = 0; i < count; i++) {
                                buf.putShort(Half.fromFloat(chunk[i]));
                            }
                        }
                        case BF16 -> {
                            for (int i = 0; i < count; i++) {
                                buf.putShort((short) (Float.floatToRawIntBits(chunk[i]) >>> 16));
                            }
                        }
                        default -> throw new IllegalStateException();
                    }
                    out.write(buf.array(), 0, buf.position());
                }
            }
        } catch (IOException | RuntimeException e) {
            Files.deleteIfExists(tmp);
            throw e;
        }
        Files.move(tmp, target, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
    }
}
