package dev.sdserve.model;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.core.StreamReadConstraints;
import com.fasterxml.jackson.core.JsonFactory;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * A safetensors file, validated on open: header length capped, header JSON well formed and shallow, every dtype
 * known, shape × dtype size = byte length, offsets inside the data and tiling it with no gap or overlap.
 *
 * <p>Tensor data is read on demand with positional reads (not kept mapped), so loading a 2 GB checkpoint into
 * float32 needs the float32 copy and one tensor-sized buffer, not three copies of the file; the page cache is the
 * kernel's. Thread-safe for reads.
 */
public final class SafeTensors implements AutoCloseable {
    /** Largest header accepted (real SD checkpoints have headers of ~100 KB–1 MB). */
    public static final long MAX_HEADER_BYTES = 64L << 20;
    /** Most tensors accepted in one file. */
    public static final int MAX_TENSORS = 1_000_000;
    private static final int MAX_RANK = 8;

    /** One tensor's header entry; {@code offset} is absolute in the file. */
    public record TensorInfo(String name, DType dtype, long[] shape, long offset, long length) {
        public long elements() {
            long n = 1;
            for (long d : shape) {
                n *= d;
            }
            return n;
        }

        public String shapeString() {
            return Arrays.toString(shape);
        }
    }

    private final Path path;
    private final FileChannel channel;
    private final Map<String, TensorInfo> tensors;
    private final Map<String, String> metadata;
    private final long fileSize;

    private SafeTensors(Path path, FileChannel channel, Map<String, TensorInfo> tensors, Map<String, String> metadata,
                        long fileSize) {
        this.path = path;
        this.channel = channel;
        this.tensors = tensors;
        this.metadata = metadata;
        this.fileSize = fileSize;
    }

    public static SafeTensors open(Path path) throws SafeTensorsException {
        FileChannel ch;
        try {
            ch = FileChannel.open(path, StandardOpenOption.READ);
        } catch (IOException e) {
            throw new SafeTensorsException(path + ": cannot open: " + e.getMessage(), e);
        }
        try {
            return parse(path, ch);
        } catch (SafeTensorsException e) {
            closeQuietly(ch);
            throw e;
        } catch (IOException | RuntimeException e) {
            closeQuietly(ch);
            throw new SafeTensorsException(path + ": " + e.getMessage(), e);
        }
    }

    private static void closeQuietly(FileChannel ch) {
        try {
            ch.close();
        } catch (IOException ignored) {
            // nothing to do
        }
    }

    private static SafeTensors parse(Path path, FileChannel ch) throws IOException {
        long size = ch.size();
        if (size < 8) {
            throw new SafeTensorsException(path + ": not a safetensors file (" + size + " bytes, less than the 8-byte header length)");
        }
        ByteBuffer lenBuf = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
        readFully(ch, lenBuf, 0);
        long headerLen = lenBuf.getLong(0);
        if (headerLen < 2 || headerLen > MAX_HEADER_BYTES) {
            throw new SafeTensorsException(path + ": header length " + Long.toUnsignedString(headerLen)
                    + " outside 2.." + MAX_HEADER_BYTES + " bytes: not a safetensors file or corrupt");
        }
        if (8 + headerLen > size) {
            throw new SafeTensorsException(path + ": truncated: header of " + headerLen + " bytes but file has " + size);
        }
        ByteBuffer hb = ByteBuffer.allocate((int) headerLen);
        readFully(ch, hb, 8);
        byte[] header = hb.array();
        long dataStart = 8 + headerLen;
        long dataLen = size - dataStart;
        Map<String, String> metadata = new LinkedHashMap<>();
        Map<String, TensorInfo> tensors = new LinkedHashMap<>();
        parseHeader(path, header, dataStart, metadata, tensors);
        checkTiling(path, tensors, dataStart, dataLen);
        return new SafeTensors(path, ch, Collections.unmodifiableMap(tensors), Collections.unmodifiableMap(metadata), size);
    }

    private static final JsonFactory JSON = JsonFactory.builder()
            .streamReadConstraints(StreamReadConstraints.builder().maxNestingDepth(8).maxStringLength(1 << 20)
                    .maxNumberLength(40).build())
            .build();

    private static void parseHeader(Path path, byte[] header, long dataStart, Map<String, String> metadata,
                                    Map<String, TensorInfo> tensors) throws IOException {
        String where = path + ": header: ";
        try (JsonParser p = JSON.createParser(header)) {
            if (p.nextToken() != JsonToken.START_OBJECT) {
                throw new SafeTensorsException(where + "not a JSON object");
            }
            while (p.nextToken() == JsonToken.FIELD_NAME) {
                String name = p.currentName();
                JsonToken t = p.nextToken();
                if (t != JsonToken.START_OBJECT) {
                    throw new SafeTensorsException(where + "entry '" + name + "' is not an object");
                }
                if (name.equals("__metadata__")) {
                    while (p.nextToken() == JsonToken.FIELD_NAME) {
                        String k = p.currentName();
                        if (p.nextToken() != JsonToken.VALUE_STRING) {
                            throw new SafeTensorsException(where + "__metadata__." + k + " is not a string");
                        }
                        metadata.put(k, p.getText());
                    }
                    continue;
                }
                if (tensors.containsKey(name)) {
                    throw new SafeTensorsException(where + "tensor '" + name + "' appears twice");
                }
                if (tensors.size() >= MAX_TENSORS) {
                    throw new SafeTensorsException(where + "more than " + MAX_TENSORS + " tensors");
                }
                tensors.put(name, parseEntry(where, name, p, dataStart));
            }
            if (p.currentToken() != JsonToken.END_OBJECT) {
                throw new SafeTensorsException(where + "malformed JSON");
            }
            JsonToken trailing = p.nextToken();
            if (trailing != null) {
                throw new SafeTensorsException(where + "data after the JSON object");
            }
        } catch (SafeTensorsException e) {
            throw e;
        } catch (IOException | RuntimeException e) {
            throw new SafeTensorsException(where + "malformed JSON: " + e.getMessage().split("\n")[0], e);
        }
    }

    private static TensorInfo parseEntry(String where, String name, JsonParser p, long dataStart) throws IOException {
        DType dtype = null;
        long[] shape = null;
        long[] offsets = null;
        while (p.nextToken() == JsonToken.FIELD_NAME) {
            String k = p.currentName();
            JsonToken t = p.nextToken();
            switch (k) {
                case "dtype" -> {
                    if (t != JsonToken.VALUE_STRING) {
                        throw new SafeTensorsException(where + name + ".dtype is not a string");
                    }
                    try {
                        dtype = DType.parse(p.getText());
                    } catch (IllegalArgumentException e) {
                        throw new SafeTensorsException(where + name + ": " + e.getMessage());
                    }
                }
                case "shape" -> shape = longArray(where, name + ".shape", p, MAX_RANK);
                case "data_offsets" -> offsets = longArray(where, name + ".data_offsets", p, 2);
                default -> p.skipChildren();
            }
        }
        if (dtype == null || shape == null || offsets == null) {
            throw new SafeTensorsException(where + "tensor '" + name + "' lacks " + (dtype == null ? "dtype" : shape == null ? "shape" : "data_offsets"));
        }
        if (offsets.length != 2 || offsets[1] < offsets[0]) {
            throw new SafeTensorsException(where + "tensor '" + name + "' has invalid data_offsets " + Arrays.toString(offsets));
        }
        long elements = 1;
        for (long d : shape) {
            if (d < 0) {
                throw new SafeTensorsException(where + "tensor '" + name + "' has a negative dimension " + Arrays.toString(shape));
            }
            elements = multiplyOrRefuse(where, name, shape, elements, d);
        }
        long bytes = multiplyOrRefuse(where, name, shape, elements, dtype.bytes);
        if (bytes != offsets[1] - offsets[0]) {
            throw new SafeTensorsException(where + "tensor '" + name + "': shape " + Arrays.toString(shape) + " × " + dtype
                    + " is " + bytes + " bytes but data_offsets span " + (offsets[1] - offsets[0]));
        }
        return new TensorInfo(name, dtype, shape, dataStart + offsets[0], bytes);
    }

    private static long multiplyOrRefuse(String where, String name, long[] shape, long a, long b)
            throws SafeTensorsException {
        try {
            return Math.multiplyExact(a, b);
        } catch (ArithmeticException e) {
            throw new SafeTensorsException(where + "tensor '" + name + "': shape " + Arrays.toString(shape)
                    + " overflows a 64-bit byte count");
        }
    }

    private static long[] longArray(String where, String what, JsonParser p, int max) throws IOException {
        if (p.currentToken() != JsonToken.START_ARRAY) {
            throw new SafeTensorsException(where + what + " is not an array");
        }
        List<Long> out = new ArrayList<>();
        JsonToken t;
        while ((t = p.nextToken()) != JsonToken.END_ARRAY) {
            if (t != JsonToken.VALUE_NUMBER_INT) {
                throw new SafeTensorsException(where + what + " holds a non-integer");
            }
            if (out.size() >= max) {
                throw new SafeTensorsException(where + what + " has more than " + max + " entries");
            }
            long v;
            try {
                v = p.getLongValue();
            } catch (IOException e) {
                throw new SafeTensorsException(where + what + " holds an integer out of range");
            }
            if (v < 0) {
                throw new SafeTensorsException(where + what + " holds a negative value " + v);
            }
            out.add(v);
        }
        return out.stream().mapToLong(Long::longValue).toArray();
    }

    private static void checkTiling(Path path, Map<String, TensorInfo> tensors, long dataStart, long dataLen)
            throws SafeTensorsException {
        List<TensorInfo> sorted = new ArrayList<>(tensors.values());
        sorted.sort(Comparator.comparingLong(TensorInfo::offset).thenComparingLong(TensorInfo::length));
        long expected = dataStart;
        for (TensorInfo t : sorted) {
            if (t.offset() != expected) {
                throw new SafeTensorsException(path + ": tensor '" + t.name() + "' starts at data offset " + (t.offset() - dataStart)
                        + (t.offset() < expected ? " inside the previous tensor (overlap)" : " leaving a gap after " + (expected - dataStart)));
            }
            expected = t.offset() + t.length();
            if (expected - dataStart > dataLen) {
                throw new SafeTensorsException(path + ": tensor '" + t.name() + "' ends at data offset " + (expected - dataStart)
                        + " beyond the data (" + dataLen + " bytes): truncated file");
            }
        }
        if (expected - dataStart != dataLen) {
            throw new SafeTensorsException(path + ": " + (dataLen - (expected - dataStart)) + " bytes after the last tensor");
        }
    }

    private static void readFully(FileChannel ch, ByteBuffer dst, long position) throws IOException {
        while (dst.hasRemaining()) {
            int n = ch.read(dst, position);
            if (n < 0) {
                throw new SafeTensorsException("unexpected end of file at " + position);
            }
            position += n;
        }
    }

    public Path path() {
        return path;
    }

    public long fileSize() {
        return fileSize;
    }

    public Set<String> names() {
        return tensors.keySet();
    }

    public Map<String, TensorInfo> tensors() {
        return tensors;
    }

    public Map<String, String> metadata() {
        return metadata;
    }

    public boolean has(String name) {
        return tensors.containsKey(name);
    }

    public TensorInfo info(String name) {
        TensorInfo t = tensors.get(name);
        if (t == null) {
            throw new IllegalArgumentException(path.getFileName() + ": no tensor named '" + name + "'");
        }
        return t;
    }

    public long[] shape(String name) {
        return info(name).shape().clone();
    }

    /** Raw little-endian bytes of a tensor into a new heap buffer. */
    public ByteBuffer bytes(String name) throws IOException {
        TensorInfo t = info(name);
        if (t.length() > Integer.MAX_VALUE - 16) {
            throw new SafeTensorsException(path + ": tensor '" + name + "' is larger than 2 GiB");
        }
        ByteBuffer b = ByteBuffer.allocate((int) t.length()).order(ByteOrder.LITTLE_ENDIAN);
        readFully(channel, b, t.offset());
        b.flip();
        return b;
    }

    /** Tensor values as float32 (F32, F16, BF16, F64 converted). */
    public float[] floats(String name) throws IOException {
        TensorInfo t = info(name);
        float[] out = new float[Math.toIntExact(t.elements())];
        readFloats(name, out, 0);
        return out;
    }

    /** Tensor values as float32 into {@code dst} starting at {@code offset}. */
    public void readFloats(String name, float[] dst, int offset) throws IOException {
        TensorInfo t = info(name);
        int n = Math.toIntExact(t.elements());
        if (offset + n > dst.length) {
            throw new IllegalArgumentException("destination too small for " + name);
        }
        ByteBuffer b = bytes(name);
        switch (t.dtype()) {
            case F32 -> b.asFloatBuffer().get(dst, offset, n);
            case F16 -> {
                var sb = b.asShortBuffer();
                for (int i = 0; i < n; i++) {
                    dst[offset + i] = Half.toFloat(sb.get(i));
                }
            }
            case BF16 -> {
                var sb = b.asShortBuffer();
                for (int i = 0; i < n; i++) {
                    dst[offset + i] = Half.bf16ToFloat(sb.get(i));
                }
            }
            case F64 -> {
                var db = b.asDoubleBuffer();
                for (int i = 0; i < n; i++) {
                    dst[offset + i] = (float) db.get(i);
                }
            }
            default -> throw new SafeTensorsException(path + ": tensor '" + name + "' is " + t.dtype() + ", not a float type");
        }
    }

    /**
     * Refuses non-finite weights: a checkpoint with a NaN or Inf weight renders black or noise images, so model
     * loaders call this on every float tensor they read (one pass over values already in memory).
     *
     * @param base index of {@code a[from]} within the tensor, for the message
     */
    public static void requireFinite(Path file, String tensor, float[] a, int from, int n, long base)
            throws SafeTensorsException {
        for (int i = from, end = from + n; i < end; i++) {
            if ((Float.floatToRawIntBits(a[i]) & 0x7f80_0000) == 0x7f80_0000) {
                throw new SafeTensorsException(file + ": tensor '" + tensor + "' holds " + a[i] + " at element "
                        + (base + i - from) + ": the weights are corrupt (non-finite values give black images)");
            }
        }
    }

    /** {@link #floats} that refuses NaN and infinite values (see {@link #requireFinite}). */
    public float[] finiteFloats(String name) throws IOException {
        float[] a = floats(name);
        requireFinite(path, name, a, 0, a.length, 0);
        return a;
    }

    /** Integer tensor values (I64 narrowed with a range check, I32, I16, I8, U8). */
    public int[] ints(String name) throws IOException {
        TensorInfo t = info(name);
        int n = Math.toIntExact(t.elements());
        ByteBuffer b = bytes(name);
        int[] out = new int[n];
        switch (t.dtype()) {
            case I64 -> {
                var lb = b.asLongBuffer();
                for (int i = 0; i < n; i++) {
                    out[i] = Math.toIntExact(lb.get(i));
                }
            }
            case I32 -> b.asIntBuffer().get(out);
            case I16 -> {
                var sb = b.asShortBuffer();
                for (int i = 0; i < n; i++) {
                    out[i] = sb.get(i);
                }
            }
            case I8 -> {
                for (int i = 0; i < n; i++) {
                    out[i] = b.get(i);
                }
            }
            case U8, BOOL -> {
                for (int i = 0; i < n; i++) {
                    out[i] = b.get(i) & 0xff;
                }
            }
            default -> throw new SafeTensorsException(path + ": tensor '" + name + "' is " + t.dtype() + ", not an integer type");
        }
        return out;
    }

    @Override
    public void close() {
        closeQuietly(channel);
    }

    @Override
    public String toString() {
        return "SafeTensors[" + path + ", " + tensors.size() + " tensors]";
    }

    static byte[] utf8(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }
}
