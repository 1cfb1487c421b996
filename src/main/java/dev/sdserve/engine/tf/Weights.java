package dev.sdserve.engine.tf;

import dev.sdserve.model.SafeTensors;
import org.tensorflow.ndarray.Shape;
import org.tensorflow.ndarray.buffer.DataBuffers;
import org.tensorflow.types.TFloat32;

import java.io.IOException;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * A model's weights, loaded once into float32 TF tensors and shared (fed by reference, not copied) by every graph
 * of the model. Keys are the checkpoint's LDM names. Layouts: k×k convolutions (k &gt; 1) are stored HWIO (TF's
 * Conv2D filter layout), 1×1 convolutions as [out, in] (a linear), everything else as in the file.
 *
 * <p>Loading converts one tensor at a time (fp16/bf16/fp32 → one float[] → the TF tensor), so peak memory is the
 * float32 weights plus one tensor, not several copies of the checkpoint.
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

    public static Weights load(SafeTensors st) throws IOException {
        Weights w = new Weights(st.path().toString());
        try {
            for (var e : st.tensors().entrySet()) {
                String key = e.getKey();
                SafeTensors.TensorInfo info = e.getValue();
                if (!info.dtype().floating() || PREFIXES.stream().noneMatch(key::startsWith)) {
                    continue;
                }
                w.put(key, info.shape(), st.floats(key));
            }
        } catch (IOException | RuntimeException ex) {
            w.close();
            throw ex;
        }
        return w;
    }

    /** Adds a tensor given in PyTorch layout (convolutions OIHW); takes ownership of {@code values}. */
    void put(String key, long[] torchShape, float[] values) {
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
        TFloat32 old = tensors.put(key, t);
        if (old != null) {
            old.close();
        }
        shapes.put(key, shape);
        bytes += 4L * d.length;
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
