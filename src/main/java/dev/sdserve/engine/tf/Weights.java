package dev.sdserve.engine.tf;

import dev.sdserve.model.Half;
import dev.sdserve.model.SafeTensors;
import org.tensorflow.ndarray.buffer.FloatDataBuffer;
import org.tensorflow.ndarray.Shape;
import org.tensorflow.ndarray.buffer.DataBuffers;
import org.tensorflow.types.TFloat32;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.StandardOpenOption;
import java.util.Arrays;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * A model's weights, loaded once into float32 TF tensors and shared (fed by reference, not copied) by every graph
 * of the model. Keys are the checkpoint's LDM names. Layouts: k×k convolutions (k &gt; 1) are stored HWIO (TF's
 * Conv2D filter layout), 1×1 convolutions as [out, in] (a linear), everything else as in the file.
 *
 * <p>Loading streams each tensor from the file in 1M-element chunks straight into native tensor memory (fp16/bf16
 * converted on the way); only k×k convolution kernels, which are transposed to HWIO, pass through one float[] of
 * their size. Peak memory is the float32 weights plus a few MB, not several copies of the checkpoint.
 */
public final class Weights implements AutoCloseable {
    /** LDM prefixes of the three networks; other keys (EMA copies, schedule buffers, position ids) are ignored. */
    public static final List<String> PREFIXES = List.of("model.diffusion_model.", "first_stage_model.",
            "cond_stage_model.transformer.text_model.");

    private final Map<String, TFloat32> tensors = new LinkedHashMap<>();
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

    public static Weights load(SafeTensors st) throws IOException {
        Weights w = new Weights(st.path().toString());
        List<SafeTensors.TensorInfo> todo = new ArrayList<>();
        for (var e : st.tensors().entrySet()) {
            SafeTensors.TensorInfo info = e.getValue();
            if (info.dtype().floating() && PREFIXES.stream().anyMatch(e.getKey()::startsWith)) {
                todo.add(info);
            }
        }
        // Conversion (fp16 → fp32, OIHW → HWIO) is CPU-bound: spread the tensors over the configured threads; each
        // thread streams through its own buffers, and results are registered in file order afterwards.
        int threads = Math.max(1, Math.min(Integer.getInteger("sdserve.threads", Runtime.getRuntime().availableProcessors()),
                Runtime.getRuntime().availableProcessors()));
        Loaded[] out = new Loaded[todo.size()];
        java.util.concurrent.atomic.AtomicInteger next = new java.util.concurrent.atomic.AtomicInteger();
        java.util.concurrent.atomic.AtomicReference<Exception> failure = new java.util.concurrent.atomic.AtomicReference<>();
        Runnable worker = () -> {
            try (FileChannel ch = FileChannel.open(st.path(), StandardOpenOption.READ)) {
                Streamer streamer = new Streamer(ch, st.path());
                int k;
                while (failure.get() == null && (k = next.getAndIncrement()) < out.length) {
                    out[k] = convert(st, todo.get(k), streamer);
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

    private record Loaded(String key, long[] shape, TFloat32 tensor, long bytes) {
    }

    private static Loaded convert(SafeTensors st, SafeTensors.TensorInfo info, Streamer streamer) throws IOException {
        String key = info.name();
        long[] s = info.shape();
        if (s.length == 4 && s[2] * s[3] > 1) {
            return tensorOf(key, s, st.finiteFloats(key)); // transposed to HWIO through one float[] of this tensor
        }
        long[] shape = s.length == 4 ? new long[]{s[0], s[1]} : s.clone();
        TFloat32 t = TFloat32.tensorOf(Shape.of(shape));
        try {
            streamer.copy(info, t.asRawTensor().data().asFloats());
        } catch (IOException | RuntimeException e) {
            t.close();
            throw e;
        }
        return new Loaded(key, shape, t, 4L * info.elements());
    }

    /** Converts file bytes chunk by chunk into native tensor memory (no tensor-sized heap copies). */
    private static final class Streamer {
        static final int CHUNK = 1 << 20; // elements
        final FileChannel ch;
        final ByteBuffer bytes = ByteBuffer.allocateDirect(CHUNK * 8).order(ByteOrder.LITTLE_ENDIAN);
        final float[] floats = new float[CHUNK];

        final java.nio.file.Path path;

        Streamer(FileChannel ch, java.nio.file.Path path) {
            this.ch = ch;
            this.path = path;
        }

        void copy(SafeTensors.TensorInfo info, FloatDataBuffer dst) throws IOException {
            long n = info.elements();
            int es = info.dtype().bytes;
            long pos = info.offset();
            for (long done = 0; done < n; ) {
                int k = (int) Math.min(CHUNK, n - done);
                bytes.clear().limit(k * es);
                while (bytes.hasRemaining()) {
                    int r = ch.read(bytes, pos + bytes.position());
                    if (r < 0) {
                        throw new IOException("unexpected end of file reading " + info.name());
                    }
                }
                bytes.flip();
                switch (info.dtype()) {
                    case F32 -> bytes.asFloatBuffer().get(floats, 0, k);
                    case F16 -> {
                        for (int i = 0; i < k; i++) {
                            floats[i] = Half.toFloat(bytes.getShort(i * 2));
                        }
                    }
                    case BF16 -> {
                        for (int i = 0; i < k; i++) {
                            floats[i] = Half.bf16ToFloat(bytes.getShort(i * 2));
                        }
                    }
                    case F64 -> {
                        for (int i = 0; i < k; i++) {
                            floats[i] = (float) bytes.getDouble(i * 8);
                        }
                    }
                    default -> throw new IOException(info.name() + ": not a float tensor (" + info.dtype() + ")");
                }
                SafeTensors.requireFinite(path, info.name(), floats, 0, k, done);
                dst.offset(done).write(floats, 0, k);
                done += k;
                pos += (long) k * es;
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

    private synchronized void register(String key, long[] shape, TFloat32 t, long nbytes) {
        TFloat32 old = tensors.put(key, t);
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

    public TFloat32 get(String key) {
        TFloat32 t = tensors.get(key);
        if (t == null) {
            throw new IllegalStateException(source + ": checkpoint has no tensor '" + key + "'");
        }
        return t;
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

    /** Bytes of float32 weight data held. */
    public long bytes() {
        return bytes;
    }

    @Override
    public void close() {
        for (TFloat32 t : tensors.values()) {
            t.close();
        }
        tensors.clear();
    }

    @Override
    public String toString() {
        return "Weights[" + source + ", " + tensors.size() + " tensors, " + bytes / (1 << 20) + " MiB]";
    }

    static String shapeString(long[] s) {
        return Arrays.toString(s);
    }
}
