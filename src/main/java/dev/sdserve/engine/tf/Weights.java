package dev.sdserve.engine.tf;

import dev.sdserve.model.DType;
import dev.sdserve.model.Half;
import dev.sdserve.model.SafeTensors;
import dev.sdserve.model.SafeTensorsException;
import org.bytedeco.javacpp.BytePointer;
import org.tensorflow.Tensor;
import org.tensorflow.ndarray.Shape;
import org.tensorflow.ndarray.buffer.DataBuffers;
import org.tensorflow.ndarray.buffer.FloatDataBuffer;
import org.tensorflow.ndarray.buffer.ShortDataBuffer;
import org.tensorflow.types.TFloat16;
import org.tensorflow.types.TFloat32;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.ShortBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;

/**
 * A model's weights, loaded once into native TF tensors and shared (fed by reference, not copied) by every graph
 * and session of the model. Keys are the checkpoint's LDM names. Layouts: k×k convolutions (k &gt; 1) are stored
 * HWIO (TF's Conv2D filter layout), 1×1 convolutions as [out, in] (a linear), everything else as in the file.
 *
 * <p><b>Storage dtype.</b> Float32, except tensors the {@link HalfPolicy} keeps in half precision: by default every
 * tensor the file stores as F16 stays F16 (lossless: the graph casts it to float32 right before its layer, giving
 * exactly the values a float32 copy would hold). For the SD 1.5 fp16 file that is 2.0 GB of weights instead of
 * 3.6 GB (UNet float32), a peak RSS after load of 1.35× the file instead of 2.15×, for 3–5% more time per UNet call
 * (the casts; measured side by side with {@code bench}): {@code -Dsdserve.weights.half=vae-te} holds the UNet in
 * float32 for that last bit of speed.
 *
 * <p><b>Loading</b> reads every tensor with positional reads into a per-thread native staging buffer (JavaCPP
 * memory freed when the load ends, never the Java heap), converts it chunk by chunk (fp16 → fp32 through a table;
 * k×k kernels transposed OIHW → HWIO in cache-sized blocks) into the tensor's native memory, and checks that every
 * value is finite on the way. Peak memory is the stored weights plus a few tens of MB per loading thread, not
 * several copies of the checkpoint; tensors are spread over {@code sdserve.threads} threads.
 */
public final class Weights implements AutoCloseable {
    /** LDM prefixes of the three networks; other keys (EMA copies, schedule buffers, position ids) are ignored. */
    public static final List<String> PREFIXES = List.of("model.diffusion_model.", "first_stage_model.",
            "cond_stage_model.transformer.text_model.");

    /** Which tensors a load keeps in half precision (only ever tensors the file stores as F16: no rounding). */
    public record HalfPolicy(List<String> prefixes) {
        /** Everything float32. */
        public static final HalfPolicy NONE = new HalfPolicy(List.of());
        /** The VAE and the text encoder keep F16 storage, the UNet is held in float32 (3–5% faster calls). */
        public static final HalfPolicy VAE_AND_TEXT = new HalfPolicy(List.of("first_stage_model.",
                "cond_stage_model."));
        /** Every F16 tensor stays F16 (the default; always with fp16 compute graphs). */
        public static final HalfPolicy ALL = new HalfPolicy(List.of(""));

        boolean keepsHalf(String key) {
            for (String p : prefixes) {
                if (key.startsWith(p)) {
                    return true;
                }
            }
            return false;
        }

        /** {@code -Dsdserve.weights.half=all|vae-te|none} (default all). */
        public static HalfPolicy configured() {
            String v = System.getProperty("sdserve.weights.half", "all").toLowerCase(Locale.ROOT);
            return switch (v) {
                case "vae-te" -> VAE_AND_TEXT;
                case "none" -> NONE;
                case "all", "default" -> ALL;
                default -> throw new IllegalArgumentException("sdserve.weights.half must be vae-te, none or all, got '"
                        + v + "'");
            };
        }
    }

    private final Map<String, Tensor> tensors = new LinkedHashMap<>();
    private final Map<String, long[]> shapes = new LinkedHashMap<>();
    private final String source;
    private long bytes;

    private Weights(String source) {
        this.source = source;
    }

    /** An empty set to fill with {@link #put} (tests, synthetic models). */
    static Weights empty(String source) {
        return new Weights(source);
    }

    /** Loads with the configured {@link HalfPolicy} (default: every tensor stored F16 stays F16). */
    public static Weights load(SafeTensors st) throws IOException {
        return load(st, HalfPolicy.configured());
    }

    public static Weights load(SafeTensors st, HalfPolicy policy) throws IOException {
        Weights w = new Weights(st.path().toString());
        List<SafeTensors.TensorInfo> todo = new ArrayList<>();
        for (var e : st.tensors().entrySet()) {
            SafeTensors.TensorInfo info = e.getValue();
            if (info.dtype().floating() && PREFIXES.stream().anyMatch(e.getKey()::startsWith)) {
                todo.add(info);
            }
        }
        int threads = Math.max(1, Math.min(Integer.getInteger("sdserve.threads", Runtime.getRuntime().availableProcessors()),
                Runtime.getRuntime().availableProcessors()));
        Loaded[] out = new Loaded[todo.size()];
        AtomicInteger next = new AtomicInteger();
        AtomicReference<Exception> failure = new AtomicReference<>();
        Runnable worker = () -> {
            try (FileChannel ch = FileChannel.open(st.path(), StandardOpenOption.READ);
                 Staging staging = new Staging(ch, st.path())) {
                int k;
                while (failure.get() == null && (k = next.getAndIncrement()) < out.length) {
                    SafeTensors.TensorInfo info = todo.get(k);
                    out[k] = staging.load(info, info.dtype() == DType.F16 && policy.keepsHalf(info.name()));
                }
            } catch (IOException | RuntimeException ex) {
                failure.compareAndSet(null, ex);
            }
        };
        List<Thread> pool = new ArrayList<>();
        for (int i = 1; i < threads; i++) {
            Thread t = new Thread(worker, "sdserve-weights-" + i);
            t.start();
            pool.add(t);
        }
        worker.run();
        for (Thread t : pool) {
            try {
                t.join();
            } catch (InterruptedException ie) {
                Thread.currentThread().interrupt();
                failure.compareAndSet(null, new IOException("interrupted while loading " + st.path()));
            }
        }
        if (failure.get() != null) {
            for (Loaded l : out) {
                if (l != null) {
                    l.tensor().close();
                }
            }
            w.close();
            Exception ex = failure.get();
            if (ex instanceof IOException io) {
                throw io;
            }
            throw (RuntimeException) ex;
        }
        for (Loaded l : out) {
            w.register(l.key(), l.shape(), l.tensor(), l.bytes());
        }
        return w;
    }

    private record Loaded(String key, long[] shape, Tensor tensor, long bytes) {
    }

    /**
     * One loading thread's buffers: native staging memory for the file bytes (grown to the largest k×k kernel this
     * thread meets, freed on close) and small heap chunks for conversion.
     */
    private static final class Staging implements AutoCloseable {
        static final int CHUNK = 1 << 20; // elements
        /** Input channels per transposition block (with all output channels and all kernel taps). */
        static final int BLOCK = 8;
        final FileChannel ch;
        final Path path;
        final float[] floats = new float[CHUNK];
        final short[] shorts = new short[CHUNK];
        BytePointer mem;
        ByteBuffer buf;

        Staging(FileChannel ch, Path path) {
            this.ch = ch;
            this.path = path;
        }

        ByteBuffer buffer(long bytes) {
            if (bytes > Integer.MAX_VALUE - 64) {
                throw new IllegalStateException(path + ": a tensor of " + bytes + " bytes (over 2 GiB) is not supported");
            }
            if (buf == null || buf.capacity() < bytes) {
                if (mem != null) {
                    mem.deallocate();
                }
                long cap = Math.max(bytes, 8L * CHUNK);
                mem = new BytePointer(cap);
                buf = mem.capacity(cap).asByteBuffer().order(ByteOrder.LITTLE_ENDIAN);
            }
            buf.clear();
            return buf;
        }

        /** Reads {@code n} bytes at {@code pos} into the staging buffer (position 0, limit n). */
        ByteBuffer read(String name, long pos, int n) throws IOException {
            ByteBuffer b = buffer(n);
            b.limit(n);
            while (b.hasRemaining()) {
                int r = ch.read(b, pos + b.position());
                if (r < 0) {
                    throw new IOException(path + ": unexpected end of file reading " + name);
                }
            }
            b.flip();
            return b;
        }

        Loaded load(SafeTensors.TensorInfo info, boolean half) throws IOException {
            String key = info.name();
            long[] s = info.shape();
            boolean kxk = s.length == 4 && s[2] * s[3] > 1;
            long[] shape = !kxk ? (s.length == 4 ? new long[]{s[0], s[1]} : s.clone())
                    : new long[]{s[2], s[3], s[1], s[0]};
            Tensor t = half ? TFloat16.tensorOf(Shape.of(shape)) : TFloat32.tensorOf(Shape.of(shape));
            try {
                if (kxk) {
                    transposed(info, t, half);
                } else {
                    flat(info, t, half);
                }
            } catch (IOException | RuntimeException e) {
                t.close();
                throw e;
            }
            return new Loaded(key, shape, t, (half ? 2L : 4L) * info.elements());
        }

        /** Same element order as the file: chunks of CHUNK elements. */
        private void flat(SafeTensors.TensorInfo info, Tensor t, boolean half) throws IOException {
            long n = info.elements();
            int es = info.dtype().bytes;
            FloatDataBuffer fd = half ? null : t.asRawTensor().data().asFloats();
            ShortDataBuffer sd = half ? t.asRawTensor().data().asShorts() : null;
            for (long done = 0; done < n; ) {
                int k = (int) Math.min(CHUNK, n - done);
                ByteBuffer b = read(info.name(), info.offset() + done * es, k * es);
                switch (info.dtype()) {
                    case F16 -> {
                        b.asShortBuffer().get(shorts, 0, k);
                        finiteHalf(info.name(), shorts, k, done);
                        if (half) {
                            sd.offset(done).write(shorts, 0, k);
                            done += k;
                            continue;
                        }
                        for (int i = 0; i < k; i++) {
                            floats[i] = Half.toFloat(shorts[i]);
                        }
                    }
                    case F32 -> b.asFloatBuffer().get(floats, 0, k);
                    case BF16 -> {
                        b.asShortBuffer().get(shorts, 0, k);
                        for (int i = 0; i < k; i++) {
                            floats[i] = Half.bf16ToFloat(shorts[i]);
                        }
                    }
                    case F64 -> {
                        var db = b.asDoubleBuffer();
                        for (int i = 0; i < k; i++) {
                            floats[i] = (float) db.get(i);
                        }
                    }
                    default -> throw new IOException(info.name() + ": not a float tensor (" + info.dtype() + ")");
                }
                SafeTensors.requireFinite(path, info.name(), floats, 0, k, done);
                fd.offset(done).write(floats, 0, k);
                done += k;
            }
        }

        /**
         * A k×k kernel, OIHW in the file, into HWIO: the whole kernel is staged, then converted in blocks of
         * {@link #BLOCK} input channels × all output channels × all taps (source reads sequential per output
         * channel, the block's destination rows stay in cache), each block written as kh·kw contiguous runs.
         */
        private void transposed(SafeTensors.TensorInfo info, Tensor t, boolean half) throws IOException {
            long[] s = info.shape();
            int o = Math.toIntExact(s[0]), in = Math.toIntExact(s[1]), taps = Math.toIntExact(s[2] * s[3]);
            DType dt = info.dtype();
            ByteBuffer b = read(info.name(), info.offset(), Math.toIntExact(info.length()));
            FloatDataBuffer fd = half ? null : t.asRawTensor().data().asFloats();
            ShortDataBuffer sd = half ? t.asRawTensor().data().asShorts() : null;
            int block = Math.max(1, Math.min(BLOCK, CHUNK / (taps * o)));
            if (block * taps * o > CHUNK) {
                throw new IllegalStateException(info.name() + ": kernel " + Arrays.toString(s) + " too wide to convert");
            }
            ShortBuffer sb = dt == DType.F16 || dt == DType.BF16 ? b.asShortBuffer() : null;
            java.nio.FloatBuffer fb = dt == DType.F32 ? b.asFloatBuffer() : null;
            java.nio.DoubleBuffer db = dt == DType.F64 ? b.asDoubleBuffer() : null;
            if (sb == null && fb == null && db == null) {
                throw new IOException(info.name() + ": not a float tensor (" + dt + ")");
            }
            for (int b0 = 0; b0 < in; b0 += block) {
                int nb = Math.min(block, in - b0);
                for (int a = 0; a < o; a++) {
                    int base = (a * in + b0) * taps;
                    for (int bb = 0; bb < nb; bb++) {
                        for (int tap = 0; tap < taps; tap++) {
                            int src = base + bb * taps + tap;
                            int dst = (tap * block + bb) * o + a;
                            if (half) {
                                short h = sb.get(src);
                                if ((h & 0x7c00) == 0x7c00) {
                                    throw nonFinite(info.name(), Half.toFloat(h), src);
                                }
                                shorts[dst] = h;
                            } else {
                                float v = switch (dt) {
                                    case F16 -> Half.toFloat(sb.get(src));
                                    case BF16 -> Half.bf16ToFloat(sb.get(src));
                                    case F32 -> fb.get(src);
                                    default -> (float) db.get(src);
                                };
                                if ((Float.floatToRawIntBits(v) & 0x7f80_0000) == 0x7f80_0000) {
                                    throw nonFinite(info.name(), v, src);
                                }
                                floats[dst] = v;
                            }
                        }
                    }
                }
                for (int tap = 0; tap < taps; tap++) {
                    long at = ((long) tap * in + b0) * o;
                    if (half) {
                        sd.offset(at).write(shorts, tap * block * o, nb * o);
                    } else {
                        fd.offset(at).write(floats, tap * block * o, nb * o);
                    }
                }
            }
        }

        private void finiteHalf(String name, short[] a, int n, long base) throws SafeTensorsException {
            for (int i = 0; i < n; i++) {
                if ((a[i] & 0x7c00) == 0x7c00) {
                    throw nonFinite(name, Half.toFloat(a[i]), base + i);
                }
            }
        }

        private SafeTensorsException nonFinite(String name, float v, long at) {
            return new SafeTensorsException(path + ": tensor '" + name + "' holds " + v + " at element " + at
                    + ": the weights are corrupt (non-finite values give black images)");
        }

        @Override
        public void close() {
            if (mem != null) {
                mem.deallocate();
                mem = null;
                buf = null;
            }
        }
    }

    /** Adds a tensor given in PyTorch layout (convolutions OIHW); takes ownership of {@code values}. */
    void put(String key, long[] torchShape, float[] values) {
        Loaded l = tensorOf(key, torchShape, values);
        register(l.key(), l.shape(), l.tensor(), l.bytes());
    }

    /** A TF tensor of a PyTorch-layout tensor: k×k convolutions become HWIO, 1×1 convolutions [out, in]. */
    private static Loaded tensorOf(String key, long[] torchShape, float[] values) {
        long[] shape = torchShape;
        float[] data = values;
        if (torchShape.length == 4) {
            int o = (int) torchShape[0], i = (int) torchShape[1], kh = (int) torchShape[2], kw = (int) torchShape[3];
            if (kh == 1 && kw == 1) {
                shape = new long[]{o, i};
            } else {
                data = oihwToHwio(values, o, i, kh, kw);
                shape = new long[]{kh, kw, i, o};
            }
        }
        float[] d = data;
        TFloat32 t = TFloat32.tensorOf(Shape.of(shape), dst -> dst.copyFrom(DataBuffers.of(d, true, false)));
        return new Loaded(key, shape, t, 4L * d.length);
    }

    private synchronized void register(String key, long[] shape, Tensor t, long nbytes) {
        Tensor old = tensors.put(key, t);
        if (old != null) {
            old.close();
        }
        shapes.put(key, shape);
        bytes += nbytes;
    }

    static float[] oihwToHwio(float[] src, int o, int i, int kh, int kw) {
        float[] dst = new float[src.length];
        for (int a = 0; a < o; a++) {
            for (int b = 0; b < i; b++) {
                for (int y = 0; y < kh; y++) {
                    for (int x = 0; x < kw; x++) {
                        dst[((y * kw + x) * i + b) * o + a] = src[((a * i + b) * kh + y) * kw + x];
                    }
                }
            }
        }
        return dst;
    }

    public boolean has(String key) {
        return tensors.containsKey(key);
    }

    /** The stored tensor (a {@link TFloat32}, or a {@link TFloat16} for tensors kept in half precision). */
    public Tensor tensor(String key) {
        Tensor t = tensors.get(key);
        if (t == null) {
            throw new IllegalStateException(source + ": checkpoint has no tensor '" + key + "'");
        }
        return t;
    }

    /** True when the tensor is held in half precision (see {@link HalfPolicy}). */
    public boolean isHalf(String key) {
        return tensor(key) instanceof TFloat16;
    }

    /** The float32 tensor of that key; fails (naming it) for a tensor held in half precision: use {@link #tensor}. */
    public TFloat32 get(String key) {
        Tensor t = tensor(key);
        if (t instanceof TFloat32 f) {
            return f;
        }
        throw new IllegalStateException(source + ": tensor '" + key + "' is held in half precision (" + t.dataType()
                + "); read it with tensor() or floats()");
    }

    /** The values as float32 in the stored (TF) layout, whatever the storage dtype (LoRA merging). */
    public float[] floats(String key) {
        Tensor t = tensor(key);
        int n = Math.toIntExact(t.shape().size());
        float[] out = new float[n];
        if (t instanceof TFloat32 f) {
            f.asRawTensor().data().asFloats().read(out);
        } else {
            short[] h = new short[n];
            t.asRawTensor().data().asShorts().read(h);
            for (int i = 0; i < n; i++) {
                out[i] = Half.toFloat(h[i]);
            }
        }
        return out;
    }

    /** Shape in the stored (TF) layout. */
    public long[] shape(String key) {
        long[] s = shapes.get(key);
        if (s == null) {
            throw new IllegalStateException(source + ": checkpoint has no tensor '" + key + "'");
        }
        return s.clone();
    }

    public Set<String> keys() {
        return tensors.keySet();
    }

    /** Bytes of native weight data held (float32 and half tensors). */
    public long bytes() {
        return bytes;
    }

    @Override
    public void close() {
        for (Tensor t : tensors.values()) {
            t.close();
        }
        tensors.clear();
    }

    @Override
    public String toString() {
        long half = tensors.values().stream().filter(t -> t instanceof TFloat16).count();
        return "Weights[" + source + ", " + tensors.size() + " tensors (" + half + " fp16), " + bytes / (1 << 20)
                + " MiB]";
    }

    static String shapeString(long[] s) {
        return Arrays.toString(s);
    }
}
