package dev.sdserve.engine.tf;

import dev.sdserve.model.DType;
import dev.sdserve.model.Half;
import dev.sdserve.model.SafeTensors;
import dev.sdserve.model.SafeTensorsException;
import org.bytedeco.javacpp.BytePointer;
import org.tensorflow.Tensor;
import org.tensorflow.ndarray.Shape;
import org.tensorflow.ndarray.buffer.DataBuffers;
import org.tensorflow.ndarray.buffer.DataStorageVisitor;
import org.tensorflow.types.TFloat16;
import org.tensorflow.types.TFloat32;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.IntBuffer;
import java.nio.MappedByteBuffer;
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
 * <p><b>Storage dtype.</b> Float32 by default: an F16 tensor is converted once at load (lossless), so no call
 * casts weights. {@code -Dsdserve.weights.half=all} keeps every tensor the file stores as F16 in F16 instead (the
 * graph casts it to float32 right before its layer, giving exactly the values a float32 copy would hold): for the
 * SD 1.5 fp16 file 2.13 GB of weights instead of 4.26 GB, paid with the casts on every call. Measured side by side
 * ({@code bench --ab-weights all,none}, alternated calls, busy machine): float32 storage takes 0.78× the time of a
 * UNet 32×32 batch-1 call, 0.75× of a 64×64 batch-2 call, 0.49× of a text-encoder call and 0.71× at batch 2.
 *
 * <p><b>Loading</b> spreads the tensors over {@code sdserve.threads} threads. Each takes the file's bytes from a
 * read-only mapping when they are already in the page cache (no copy into a buffer), else with positional reads
 * into a small native staging buffer; it checks that every value is finite on the way (on the half bits for F16:
 * one vectorised OR per chunk) and writes straight into the tensor's native memory: fp16 → fp32 through a table in
 * chunks that stay in the L2 cache, k×k kernels transposed OIHW → HWIO from groups of whole output channels.
 * Peak memory is the stored weights plus a few tens of MB per loading thread, not several copies of the
 * checkpoint.
 */
public final class Weights implements AutoCloseable {
    /**
     * Key prefixes of the networks (UNet, VAE; SD 1.x's CLIP, SD 2.x's OpenCLIP tower, SDXL's two towers); other keys
     * (EMA copies, schedule buffers, position ids, OpenCLIP's logit_scale) are ignored.
     */
    public static final List<String> PREFIXES = List.of("model.diffusion_model.", "first_stage_model.",
            "cond_stage_model.transformer.text_model.", "cond_stage_model.model.", "conditioner.embedders.");

    /** Which tensors a load keeps in half precision (only ever tensors the file stores as F16: no rounding). */
    public record HalfPolicy(List<String> prefixes) {
        /** Everything float32. */
        public static final HalfPolicy NONE = new HalfPolicy(List.of());
        /**
         * The VAE and the text encoder keep F16 storage, the UNet is held in float32 (no per-call casts, +1.6 GB
         * for SD 1.5).
         */
        public static final HalfPolicy VAE_AND_TEXT = new HalfPolicy(List.of("first_stage_model.",
                "cond_stage_model."));
        /** Every F16 tensor stays F16 (half the memory, casts on every call; always with fp16 compute graphs). */
        public static final HalfPolicy ALL = new HalfPolicy(List.of(""));

        boolean keepsHalf(String key) {
            for (String p : prefixes) {
                if (key.startsWith(p)) {
                    return true;
                }
            }
            return false;
        }

        /** {@code -Dsdserve.weights.half=all|vae-te|none} (default none: every weight float32, no per-call casts). */
        public static HalfPolicy configured() {
            String v = System.getProperty("sdserve.weights.half", "none").toLowerCase(Locale.ROOT);
            return switch (v) {
                case "vae-te" -> VAE_AND_TEXT;
                case "none", "default" -> NONE;
                case "all" -> ALL;
                default -> throw new IllegalArgumentException("sdserve.weights.half must be vae-te, none or all, got '"
                        + v + "'");
            };
        }
    }

    private final Map<String, Tensor> tensors = new LinkedHashMap<>();
    private final Map<String, long[]> shapes = new LinkedHashMap<>();
    private final KernelTransformCache transforms = new KernelTransformCache(this);
    private final String source;
    private long bytes;

    private Weights(String source) {
        this.source = source;
    }

    /** An empty set to fill with {@link #put} (tests, synthetic models). */
    static Weights empty(String source) {
        return new Weights(source);
    }

    /** Loads with the configured {@link HalfPolicy} (default: every tensor float32). */
    public static Weights load(SafeTensors st) throws IOException {
        return load(st, HalfPolicy.configured());
    }

    public static Weights load(SafeTensors st, HalfPolicy policy) throws IOException {
        if (ByteOrder.nativeOrder() != ByteOrder.LITTLE_ENDIAN) {
            throw new IllegalStateException("the weights loader copies little-endian file bytes into tensor memory "
                    + "as they are: a big-endian host is not supported");
        }
        Weights w = new Weights(st.path().toString());
        List<SafeTensors.TensorInfo> todo = new ArrayList<>();
        for (var e : st.tensors().entrySet()) {
            SafeTensors.TensorInfo info = e.getValue();
            if (info.dtype().floating() && PREFIXES.stream().anyMatch(e.getKey()::startsWith)
                    && !dev.sdserve.model.CheckpointLayout.isExtra(e.getKey())) {
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

    /** False: always read, never map (tests use it to cover the cold-cache path with a file in the page cache). */
    static volatile boolean mapResident = true;

    /**
     * One loading thread's source of file bytes and its heap arrays. File bytes come from a read-only mapping of
     * the file (a window of {@link #WINDOW} bytes, unmapped when the thread moves past it) when the window's pages
     * are already in the page cache, which spares the copy a read makes; otherwise (a cold cache, where read's
     * readahead is what matters) from positional reads into native staging memory (freed on close). Values go
     * straight into the tensor's native memory through a direct buffer over it ({@link #nativeBytes}): bulk copies
     * for tensors in file order, per-element stores for transposed kernels.
     */
    private static final class Staging implements AutoCloseable {
        /** Elements per step for tensors in file order (their halves and floats stay in the L2 cache). */
        static final int CHUNK = 1 << 16;
        /** Elements per group of whole output channels of a k×k kernel (longer runs per destination row). */
        static final int KERNEL_CHUNK = 1 << 22;
        /** Input channels per transposition block (all taps and the group's output channels). */
        static final int IN_BLOCK = 32;
        /** Bytes per mapping window. */
        static final long WINDOW = 32L << 20;
        final FileChannel ch;
        final Path path;
        final long size;
        float[] floats = new float[CHUNK];
        short[] shorts = new short[CHUNK];
        int[] ints = new int[CHUNK / 2 + 1];
        BytePointer mem;
        ByteBuffer buf;
        MappedByteBuffer window;
        long windowAt;
        /** Bytes before this file offset were found not resident: read them instead of mapping. */
        long coldUntil;

        Staging(FileChannel ch, Path path) throws IOException {
            this.ch = ch;
            this.path = path;
            this.size = ch.size();
        }

        /** Grows the heap arrays to hold {@code n} elements. */
        void ensure(int n) {
            if (shorts.length < n) {
                shorts = new short[n];
            }
        }

        void ensureFloats(int n) {
            if (floats.length < n) {
                floats = new float[n];
            }
        }

        private ByteBuffer buffer(long bytes) {
            if (buf == null || buf.capacity() < bytes) {
                if (mem != null) {
                    mem.deallocate();
                }
                long cap = Math.max(bytes, 4L * CHUNK);
                mem = new BytePointer(cap);
                buf = mem.capacity(cap).asByteBuffer().order(ByteOrder.LITTLE_ENDIAN);
            }
            buf.clear();
            return buf;
        }

        /** The {@code n} bytes at {@code pos} (position 0, limit n, little endian), mapped or read. */
        ByteBuffer read(String name, long pos, int n) throws IOException {
            if (pos + n > size) {
                throw new IOException(path + ": unexpected end of file reading " + name);
            }
            ByteBuffer m = mapped(pos, n);
            if (m != null) {
                return m;
            }
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

        private ByteBuffer mapped(long pos, int n) throws IOException {
            if (!mapResident || UNMAPPER == null || pos < coldUntil) {
                return null;
            }
            if (window == null || pos < windowAt || pos + n > windowAt + window.capacity()) {
                unmap();
                long len = Math.min(size - pos, Math.max(n, WINDOW));
                MappedByteBuffer w = ch.map(FileChannel.MapMode.READ_ONLY, pos, len);
                if (!w.isLoaded()) {
                    UNMAPPER.accept(w);
                    coldUntil = pos + len;
                    return null;
                }
                window = w;
                windowAt = pos;
            }
            int at = (int) (pos - windowAt);
            return window.duplicate().position(at).limit(at + n).slice().order(ByteOrder.LITTLE_ENDIAN);
        }

        private void unmap() {
            if (window != null) {
                UNMAPPER.accept(window);
                window = null;
            }
        }

        Loaded load(SafeTensors.TensorInfo info, boolean half) throws IOException {
            String key = info.name();
            long[] s = info.shape();
            boolean kxk = s.length == 4 && s[2] * s[3] > 1;
            long[] shape = !kxk ? (s.length == 4 ? new long[]{s[0], s[1]} : s.clone())
                    : new long[]{s[2], s[3], s[1], s[0]};
            Tensor t = half ? TFloat16.tensorOf(Shape.of(shape)) : TFloat32.tensorOf(Shape.of(shape));
            try {
                if (info.elements() > 0) {
                    ByteBuffer dst = nativeBytes(t);
                    if (kxk) {
                        transposed(info, dst, half);
                    } else {
                        flat(info, dst, half);
                    }
                }
            } catch (IOException | RuntimeException e) {
                t.close();
                throw e;
            }
            return new Loaded(key, shape, t, (half ? 2L : 4L) * info.elements());
        }

        /** Same element order as the file, {@link #CHUNK} elements at a time. */
        private void flat(SafeTensors.TensorInfo info, ByteBuffer dst, boolean half) throws IOException {
            long n = info.elements();
            int es = info.dtype().bytes;
            FloatBuffer fd = half ? null : dst.asFloatBuffer();
            for (long done = 0; done < n; ) {
                int k = (int) Math.min(CHUNK, n - done);
                ByteBuffer b = read(info.name(), info.offset() + done * es, k * es);
                if (half) { // F16 kept F16: checked, then copied as is
                    checkHalves(info.name(), b, k, done);
                    dst.put((int) (2 * done), b, 0, 2 * k);
                } else {
                    decode(info, b, k, done);
                    fd.put((int) done, floats, 0, k);
                }
                done += k;
            }
        }

        /**
         * A k×k kernel, OIHW in the file ([o][i·taps] rows), into HWIO ([taps][i][o]): groups of whole output
         * channels (one contiguous read of at most {@link #KERNEL_CHUNK} elements) are transposed in blocks of
         * {@link #IN_BLOCK} input channels, each (tap, input channel) landing as one contiguous run of the group's
         * output channels.
         */
        private void transposed(SafeTensors.TensorInfo info, ByteBuffer dst, boolean half) throws IOException {
            long[] s = info.shape();
            int o = Math.toIntExact(s[0]), in = Math.toIntExact(s[1]), taps = Math.toIntExact(s[2] * s[3]);
            int cols = Math.multiplyExact(in, taps), es = info.dtype().bytes;
            boolean f16 = info.dtype() == DType.F16;
            int group = Math.max(1, Math.min(o, KERNEL_CHUNK / cols));
            if (group > 16) {
                group &= ~15; // whole cache lines of output channels per destination run
            }
            FloatBuffer fd = half ? null : dst.asFloatBuffer();
            ShortBuffer sd = half ? dst.asShortBuffer() : null;
            IntBuffer di = half ? dst.asIntBuffer() : null;
            if ((long) group * cols * es > Integer.MAX_VALUE - 64) {
                throw new IllegalStateException(path + ": tensor '" + info.name() + "' has output channels of "
                        + (long) cols * es + " bytes each: over 2 GiB at once is not supported");
            }
            for (int a0 = 0; a0 < o; a0 += group) {
                int na = Math.min(group, o - a0), k = na * cols;
                ByteBuffer b = read(info.name(), info.offset() + (long) a0 * cols * es, k * es);
                if (f16 && half && (cols & 1) == 0 && (o & 1) == 0 && (na & 1) == 0) {
                    if ((transposeHalfPairs(b.asIntBuffer(), di, in, taps, o, a0, na) & 0x8000_8000) != 0) {
                        checkHalves(info.name(), b, k, (long) a0 * cols); // throws, naming the element
                    }
                } else if (f16) {
                    checkHalves(info.name(), b, k, (long) a0 * cols);
                    ensure(k);
                    b.asShortBuffer().get(shorts, 0, k);
                    if (half) {
                        transposeHalves(shorts, sd, in, taps, o, a0, na);
                    } else {
                        transposeHalvesToFloats(shorts, fd, in, taps, o, a0, na);
                    }
                } else {
                    ensureFloats(k);
                    decode(info, b, k, (long) a0 * cols);
                    transposeFloats(floats, fd, in, taps, o, a0, na);
                }
            }
        }

        /**
         * {@link #transposeHalves} two by two, straight from the file bytes: with an even number of columns and of
         * output channels, the halves of rows r, r+1 at columns c, c+1 are two ints of the source, and become the
         * int (r, r+1) of destination row c and the int (r, r+1) of destination row c+1 (little endian: the even
         * element in the low bits). Returns the finiteness flag of {@link #checkHalves} over every source int (bit
         * 15 or 31 set: a non-finite half somewhere in the group).
         */
        private static int transposeHalfPairs(IntBuffer src, IntBuffer di, int in, int taps, int o, int a0, int na) {
            int cols = in * taps, hc = cols >>> 1, ho = o >>> 1, rows = na >>> 1, block = 2 * IN_BLOCK * taps;
            int flag = 0;
            for (int c0 = 0; c0 < cols; c0 += block) {
                for (int c = c0, ce = Math.min(cols, c0 + block); c < ce; c += 2) {
                    int c1 = c + 1;
                    int rowA = ((c % taps) * in + c / taps) * ho + (a0 >>> 1);
                    int rowB = ((c1 % taps) * in + c1 / taps) * ho + (a0 >>> 1);
                    for (int j = 0, q = c >>> 1; j < rows; j++, q += cols) {
                        int x = src.get(q), y = src.get(q + hc);
                        flag |= ((x & 0x7c00_7c00) + 0x0400_0400) | ((y & 0x7c00_7c00) + 0x0400_0400);
                        di.put(rowA + j, (x & 0xffff) | (y << 16));
                        di.put(rowB + j, (x >>> 16) | (y & 0xffff_0000));
                    }
                }
            }
            return flag;
        }

        private static void transposeHalvesToFloats(short[] src, FloatBuffer fd, int in, int taps, int o, int a0,
                                                    int na) {
            int cols = in * taps;
            for (int b0 = 0; b0 < in; b0 += IN_BLOCK) {
                int be = Math.min(in, b0 + IN_BLOCK);
                for (int tap = 0; tap < taps; tap++) {
                    for (int b = b0; b < be; b++) {
                        int at = (tap * in + b) * o + a0, c = b * taps + tap;
                        for (int r = 0; r < na; r++) {
                            fd.put(at + r, Half.toFloat(src[r * cols + c]));
                        }
                    }
                }
            }
        }

        private static void transposeHalves(short[] src, ShortBuffer sd, int in, int taps, int o, int a0, int na) {
            int cols = in * taps;
            for (int b0 = 0; b0 < in; b0 += IN_BLOCK) {
                int be = Math.min(in, b0 + IN_BLOCK);
                for (int tap = 0; tap < taps; tap++) {
                    for (int b = b0; b < be; b++) {
                        int at = (tap * in + b) * o + a0, c = b * taps + tap;
                        for (int r = 0; r < na; r++) {
                            sd.put(at + r, src[r * cols + c]);
                        }
                    }
                }
            }
        }

        private static void transposeFloats(float[] src, FloatBuffer fd, int in, int taps, int o, int a0, int na) {
            int cols = in * taps;
            for (int b0 = 0; b0 < in; b0 += IN_BLOCK) {
                int be = Math.min(in, b0 + IN_BLOCK);
                for (int tap = 0; tap < taps; tap++) {
                    for (int b = b0; b < be; b++) {
                        int at = (tap * in + b) * o + a0, c = b * taps + tap;
                        for (int r = 0; r < na; r++) {
                            fd.put(at + r, src[r * cols + c]);
                        }
                    }
                }
            }
        }

        /** The {@code k} values in {@code b} (file dtype) as float32 in {@link #floats}, checked finite. */
        private void decode(SafeTensors.TensorInfo info, ByteBuffer b, int k, long base) throws IOException {
            switch (info.dtype()) {
                case F16 -> {
                    checkHalves(info.name(), b, k, base);
                    ensure(k);
                    b.asShortBuffer().get(shorts, 0, k);
                    for (int i = 0; i < k; i++) {
                        floats[i] = Half.toFloat(shorts[i]);
                    }
                    return; // finite: checked on the half bits
                }
                case F32 -> b.asFloatBuffer().get(floats, 0, k);
                case BF16 -> {
                    ensure(k);
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
            SafeTensors.requireFinite(path, info.name(), floats, 0, k, base);
        }

        /**
         * Refuses a non-finite half among the {@code k} at the start of {@code b} (little endian). Two halves per
         * int: an all-ones exponent is the only one that carries into its half's top bit when 0x0400 is added, so
         * one OR over the ints (a loop the JIT vectorises) flags a chunk; a flagged chunk is then scanned for the
         * element to name.
         */
        private void checkHalves(String name, ByteBuffer b, int k, long base) throws SafeTensorsException {
            int flag = 0;
            IntBuffer ib = b.asIntBuffer();
            int[] p = ints;
            for (int j0 = 0, pairs = k >>> 1; j0 < pairs; j0 += p.length) {
                int m = Math.min(p.length, pairs - j0);
                ib.get(j0, p, 0, m);
                for (int j = 0; j < m; j++) {
                    flag |= (p[j] & 0x7c00_7c00) + 0x0400_0400;
                }
            }
            if ((k & 1) != 0) {
                flag |= (b.getShort(2 * (k - 1)) & 0x7c00) + 0x0400;
            }
            if ((flag & 0x8000_8000) != 0) {
                for (int i = 0; i < k; i++) {
                    short h = b.getShort(2 * i);
                    if ((h & 0x7c00) == 0x7c00) {
                        throw nonFinite(name, Half.toFloat(h), base + i);
                    }
                }
            }
        }

        private SafeTensorsException nonFinite(String name, float v, long at) {
            return new SafeTensorsException(path + ": tensor '" + name + "' holds " + v + " at element " + at
                    + ": the weights are corrupt (non-finite values give black images)");
        }

        @Override
        public void close() {
            unmap();
            if (mem != null) {
                mem.deallocate();
                mem = null;
                buf = null;
            }
        }
    }

    /** Unmaps a mapping now (sun.misc.Unsafe#invokeCleaner), or null when that is not available. */
    private static final java.util.function.Consumer<ByteBuffer> UNMAPPER = unmapper();

    private static java.util.function.Consumer<ByteBuffer> unmapper() {
        try {
            Class<?> c = Class.forName("sun.misc.Unsafe");
            java.lang.reflect.Field f = c.getDeclaredField("theUnsafe");
            f.setAccessible(true);
            Object unsafe = f.get(null);
            java.lang.reflect.Method m = c.getMethod("invokeCleaner", ByteBuffer.class);
            return b -> {
                try {
                    m.invoke(unsafe, b);
                } catch (ReflectiveOperationException e) {
                    throw new IllegalStateException("cannot unmap a weights window", e);
                }
            };
        } catch (ReflectiveOperationException | RuntimeException e) {
            return null;
        }
    }

    /**
     * A direct buffer over a tensor's native memory (native byte order, which the loader requires to be little
     * endian like the file), valid while the tensor is open.
     */
    static ByteBuffer nativeBytes(Tensor t) {
        long[] where = t.asRawTensor().data().accept(new DataStorageVisitor<long[]>() {
            @Override
            public long[] visit(long address, long length, long scale) {
                return new long[]{address, length};
            }

            @Override
            public long[] fallback() {
                throw new IllegalStateException("TF tensor memory is not addressable (" + t.dataType() + " "
                        + t.shape() + ")");
            }
        });
        if (where[1] > Integer.MAX_VALUE) {
            throw new IllegalStateException("a tensor of " + where[1] + " bytes (over 2 GiB) is not supported ("
                    + t.dataType() + " " + t.shape() + ")");
        }
        if (where[0] == 0 || where[1] != t.numBytes()) {
            throw new IllegalStateException("unexpected TF tensor memory: address " + where[0] + ", " + where[1]
                    + " bytes for " + t.numBytes());
        }
        BytePointer p = new BytePointer() {
            {
                address = where[0];
            }
        };
        return p.capacity(where[1]).asByteBuffer().order(ByteOrder.nativeOrder());
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
            transforms.forget(key);
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

    /**
     * Bytes of precomputed Winograd kernel transforms and transposed linear weights held (or promised to a graph)
     * beside the weights ({@link KernelTransformCache}).
     */
    public long transformBytes() {
        return transforms.bytes();
    }

    /** Of {@link #transformBytes()}, the linear weights held transposed. */
    public long transposedWeightBytes() {
        return transforms.transposedBytes();
    }

    /** Precomputed Winograd kernel transforms of these weights (see {@link KernelTransformCache}). */
    KernelTransformCache transforms() {
        return transforms;
    }

    @Override
    public void close() {
        transforms.close();
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
