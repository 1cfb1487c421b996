package dev.sdserve.engine.tf;

import org.tensorflow.Operand;
import org.tensorflow.ndarray.Shape;
import org.tensorflow.op.Ops;
import org.tensorflow.op.core.Split;
import org.tensorflow.op.linalg.MatMul;
import org.tensorflow.types.TFloat32;
import org.tensorflow.types.TInt32;

import java.util.ArrayList;
import java.util.List;

/**
 * Every primitive the networks use, in one place, so that faster kernels (im2col / Winograd convolutions, fused
 * attention) can replace these bodies without touching the networks. Tensors are NHWC (images) or [B, L, D]
 * (sequences); the batch dimension may be unknown (-1), every other dimension is static.
 *
 * <p>Weights come from the {@link WeightBinder}: the checkpoint's LDM key, in the layout of {@link Weights}
 * (k×k convolutions HWIO, 1×1 convolutions and linears [out, in]).
 */
public final class Nn {
    /**
     * How 3×3 convolutions are built: {@code -Dsdserve.conv3x3=AUTO|NATIVE|IM2COL|IM2COL_CONCAT|WINOGRAD2|WINOGRAD4}
     * (read when a graph is built, so a test can build the same model both ways).
     */
    static Conv3x3.Method configuredConv3x3() {
        return Conv3x3.Method.valueOf(System.getProperty("sdserve.conv3x3", Conv3x3.DEFAULT.name()));
    }

    /** Self-attention query chunk ({@code -Dsdserve.attnChunk}, 0 = whole). */
    static final int ATTENTION_QUERY_CHUNK = Integer.getInteger("sdserve.attnChunk", 1024);
    /** GroupNorm: {@code -Dsdserve.groupNorm=plain} for the textbook formulation (for before/after timing). */
    static final boolean PLAIN_GROUP_NORM = "plain".equals(System.getProperty("sdserve.groupNorm"));

    private final Ops tf;
    private final WeightBinder weights;
    private final Conv3x3.Method conv3x3;
    /** The LoRA hook: terms added to linears (null: none); see {@link LinearHook}. */
    private LinearHook linearHook;
    /** See {@link #textTower}. */
    private boolean textTower;

    public Nn(Ops tf, WeightBinder weights) {
        this(tf, weights, configuredConv3x3());
    }

    /**
     * With an explicit 3×3 convolution method: training graphs need {@link Conv3x3.Method#NATIVE} (TF has
     * gradients for Conv2D, none for ExtractImagePatches).
     */
    public Nn(Ops tf, WeightBinder weights, Conv3x3.Method conv3x3) {
        this.tf = tf;
        this.weights = weights;
        this.conv3x3 = conv3x3;
    }

    /**
     * Adds the hook's (LoRA) terms to the linears and 1×1 convolutions it covers, for graphs built after this call:
     * {@link LowRank} when serving, the trainable factors when training.
     */
    public void linearHook(LinearHook hook) {
        this.linearHook = hook;
    }

    public Ops tf() {
        return tf;
    }

    /** The weight of that LDM key, as a graph input; fails naming the key when the checkpoint lacks it. */
    public Operand<TFloat32> w(String key) {
        return weights.bind(tf, key);
    }

    /**
     * As {@link #w(String)}, for a layer whose input is {@code after}: a weight held in half precision is cast to
     * float32 only once {@code after} exists (so only the running layer's float32 copy is alive).
     */
    public Operand<TFloat32> w(String key, Operand<?> after) {
        return weights.bind(tf, key, after);
    }

    public boolean has(String key) {
        return weights.has(key);
    }

    public long[] weightShape(String key) {
        return weights.shape(key);
    }

    // ---------------------------------------------------------------- shapes

    public static long[] dims(Operand<?> x) {
        Shape s = x.shape();
        long[] d = new long[s.numDimensions()];
        for (int i = 0; i < d.length; i++) {
            d[i] = s.get(i);
        }
        return d;
    }

    private static long last(Operand<?> x) {
        Shape s = x.shape();
        return s.get(s.numDimensions() - 1);
    }

    /** Reshape; a -1 stands for the (dynamic) batch dimension. */
    public Operand<TFloat32> reshape(Operand<TFloat32> x, long... shape) {
        return tf.reshape(x, tf.constant(shape));
    }

    public Operand<TFloat32> transpose(Operand<TFloat32> x, int... perm) {
        return tf.linalg.transpose(x, tf.constant(perm));
    }

    public Operand<TFloat32> nchwToNhwc(Operand<TFloat32> x) {
        return transpose(x, 0, 2, 3, 1);
    }

    public Operand<TFloat32> nhwcToNchw(Operand<TFloat32> x) {
        return transpose(x, 0, 3, 1, 2);
    }

    // ---------------------------------------------------------------- elementwise

    public Operand<TFloat32> add(Operand<TFloat32> a, Operand<TFloat32> b) {
        return tf.math.add(a, b);
    }

    public Operand<TFloat32> sub(Operand<TFloat32> a, Operand<TFloat32> b) {
        return tf.math.sub(a, b);
    }

    public Operand<TFloat32> mul(Operand<TFloat32> a, Operand<TFloat32> b) {
        return tf.math.mul(a, b);
    }

    public Operand<TFloat32> scale(Operand<TFloat32> a, float s) {
        return tf.math.mul(a, Shapes.scalar(tf, s, a));
    }

    public Operand<TFloat32> divide(Operand<TFloat32> a, float s) {
        return tf.math.div(a, Shapes.scalar(tf, s, a));
    }

    /** The dtype the networks compute in. */
    public ComputeDType compute() {
        return weights.compute();
    }

    /** A float32 graph input in the compute dtype (a cast when computing in half). */
    public Operand<TFloat32> toCompute(Operand<TFloat32> x) {
        return Shapes.castTo(tf, x, compute() == ComputeDType.FP16);
    }

    /** A value back to float32 for a graph output. */
    public Operand<TFloat32> toFloat32(Operand<TFloat32> x) {
        return Shapes.castTo(tf, x, false);
    }

    public Operand<TFloat32> silu(Operand<TFloat32> x) {
        return tf.math.mul(x, tf.math.sigmoid(x));
    }

    /** Exact (erf) GELU, as torch's default. */
    public Operand<TFloat32> gelu(Operand<TFloat32> x) {
        Operand<TFloat32> e = tf.math.erf(tf.math.mul(x, Shapes.scalar(tf, (float) (1.0 / Math.sqrt(2.0)), x)));
        return tf.math.mul(tf.math.mul(x, Shapes.scalar(tf, 0.5f, x)), tf.math.add(e, Shapes.scalar(tf, 1f, x)));
    }

    /** CLIP's quick_gelu: x·σ(1.702x). */
    public Operand<TFloat32> quickGelu(Operand<TFloat32> x) {
        return tf.math.mul(x, tf.math.sigmoid(tf.math.mul(x, Shapes.scalar(tf, 1.702f, x))));
    }

    public Operand<TFloat32> activation(String name, Operand<TFloat32> x) {
        return switch (name) {
            case "quick_gelu" -> quickGelu(x);
            case "gelu" -> gelu(x);
            case "silu", "swish" -> silu(x);
            default -> throw new IllegalArgumentException("unsupported activation '" + name + "'");
        };
    }

    public Operand<TFloat32> clamp(Operand<TFloat32> x, float lo, float hi) {
        return tf.math.minimum(tf.math.maximum(x, Shapes.scalar(tf, lo, x)), Shapes.scalar(tf, hi, x));
    }

    // ---------------------------------------------------------------- linear / conv

    /**
     * Linears over at most this many rows per sample ({@code -Dsdserve.linearTransposedRows}, read when a graph is
     * built; 0 = never) are computed as {@code (W · xᵀ)ᵀ} instead of {@code x · Wᵀ}: with few rows (the text
     * encoder's 77 tokens, cross-attention's context, the UNet's 8×8 and 4×4 levels) oneDNN's fused MatMul + bias
     * splits the short side between the threads; the transposed product was 0.71× the time of the text encoder at
     * batch 1, 0.95× at batch 2 and 0.98× of a 32×32 UNet call at batch 2 ({@code bench --ab-props}).
     */
    static final long TRANSPOSED_LINEAR_ROWS = 200;

    /**
     * Which linears take their weight held transposed ({@code [in, out]}, {@link WeightBinder#transposed}), so the
     * product is {@code x · Wt} with no transposed operand: oneDNN's product with an {@code [out, in]} weight was 1.15–2.5×
     * slower for narrowing shapes (in &gt; out: an MLP's down projection, fc2, an up block's 1×1 skip;
     * {@code KernelBench gemmt}), and in a text tower for every shape. {@code -Dsdserve.linearWt} (read at graph
     * build): {@code auto} (default: narrowing linears, and every linear of a text tower, {@link #textTower}),
     * {@code narrowing}, {@code all}, {@code none}; the copies are held within {@code -Dsdserve.linearTransposeCacheMb}
     * (image networks) and {@code -Dsdserve.textTransposeCacheMb} (text towers) per model.
     */
    private boolean transposedWeight(long in, long out) {
        return switch (System.getProperty("sdserve.linearWt", "auto")) {
            case "none" -> false;
            case "all" -> true;
            case "narrowing" -> in > out;
            default -> in > out || textTower;
        };
    }

    /**
     * The linears built after this call are a text tower's: under {@code sdserve.linearWt=auto} every one takes its
     * weight transposed, counted in the text towers' budget ({@link KernelTransformCache.Pool#TEXT}).
     */
    public void textTower(boolean text) {
        this.textTower = text;
    }

    /** A 2-D tensor transposed. */
    static Operand<TFloat32> transpose2d(Ops tf, Operand<TFloat32> w) {
        return tf.linalg.transpose(w, tf.constant(new int[]{1, 0}));
    }

    /** Rows of a linear's input per sample: every dimension but the last, a dynamic batch counted once. */
    static long rowsPerSample(long[] d) {
        long rows = 1;
        for (int i = 0; i < d.length - 1; i++) {
            rows *= Math.max(1, d[i]);
        }
        return rows;
    }

    /** x[..., in] · Wᵀ (+ b) with W = {@code prefix.weight} [out, in] (or a 1×1 conv weight), b = {@code prefix.bias}. */
    public Operand<TFloat32> linear(Operand<TFloat32> x, String prefix, boolean bias) {
        return linear(x, prefix + ".weight", bias ? prefix + ".bias" : null);
    }

    /**
     * x[..., in] · Wᵀ (+ b) with the weight and bias keys given (OpenCLIP's fused {@code attn.in_proj_weight} /
     * {@code attn.in_proj_bias}); {@code biasKey} null for none.
     */
    public Operand<TFloat32> linear(Operand<TFloat32> x, String weightKey, String biasKey) {
        long[] d = dims(x);
        long in = d[d.length - 1];
        Operand<TFloat32> w = w(weightKey, x);
        long[] ws = weightShape(weightKey);
        if (ws.length != 2 || ws[1] != in) {
            throw new IllegalStateException(weightKey + " has shape " + java.util.Arrays.toString(ws)
                    + ", expected [out, " + in + "]");
        }
        long out = ws[0];
        Operand<TFloat32> x2 = flatten(x, d);
        Operand<TFloat32> wt = transposedWeight(in, out) ? weights.transposed(tf, weightKey, w,
                textTower ? KernelTransformCache.Pool.TEXT : KernelTransformCache.Pool.IMAGE) : null;
        Operand<TFloat32> y;
        if (wt != null) {
            y = tf.linalg.matMul(x2, wt); // the weight held [in, out] (see transposedWeight)
        } else if (rowsPerSample(d) <= Long.getLong("sdserve.linearTransposedRows", TRANSPOSED_LINEAR_ROWS)) {
            // few rows: (W · xᵀ)ᵀ, so the long side of the product is the weight's rows (see the constant)
            y = tf.linalg.transpose(tf.linalg.matMul(w, x2, MatMul.transposeB(true)), tf.constant(new int[]{1, 0}));
        } else {
            y = tf.linalg.matMul(x2, w, MatMul.transposeB(true));
        }
        if (linearHook != null) {
            Operand<TFloat32> extra = linearHook.extra(this, weightKey, x2, d, out);
            if (extra != null) {
                y = tf.math.add(y, extra);
            }
        }
        if (biasKey != null) {
            y = tf.nn.biasAdd(y, w(biasKey, x));
        }
        return unflatten(y, d);
    }

    /**
     * As {@link #projections} when they run as one product and no LoRA term applies: the outputs side by side in
     * one tensor {@code [..., outputs · out]} (for {@link #attentionPacked}); null otherwise.
     */
    public Operand<TFloat32> packedProjections(Operand<TFloat32> x, List<String> weightKeys, List<String> biasKeys,
                                               int outputs, float firstScale) {
        if (linearHook != null) {
            return null;
        }
        List<Operand<TFloat32>> fused = fusedOperands(x, weightKeys, biasKeys, outputs, firstScale);
        if (fused == null) {
            return null;
        }
        long[] d = dims(x);
        return unflatten(fusedProduct(flatten(x, d), fused), d);
    }

    /** x [..., in] as [rows, in] ({@code d}: its dims). */
    private Operand<TFloat32> flatten(Operand<TFloat32> x, long[] d) {
        return d.length == 2 ? x : reshape(x, -1, d[d.length - 1]);
    }

    /** y [rows, out] back to the leading dims {@code d} of the input it was computed from: [..., out]. */
    private Operand<TFloat32> unflatten(Operand<TFloat32> y, long[] d) {
        if (d.length == 2) {
            return y;
        }
        long[] outShape = d.clone();
        outShape[0] = -1;
        outShape[d.length - 1] = Shapes.dim(y, 1, "projection");
        return reshape(y, outShape);
    }

    /** x2 [rows, in] times the stacked weight, plus the stacked bias when there is one ({@link #fusedOperands}). */
    private Operand<TFloat32> fusedProduct(Operand<TFloat32> x2, List<Operand<TFloat32>> fused) {
        Operand<TFloat32> y = tf.linalg.matMul(x2, fused.get(0));
        return fused.size() > 1 ? tf.nn.biasAdd(y, fused.get(1)) : y;
    }

    /** The stacked weight (and bias, when there are biases) of {@link #projections}, or null when not held. */
    private List<Operand<TFloat32>> fusedOperands(Operand<TFloat32> x, List<String> weightKeys, List<String> biasKeys,
                                                  int outputs, float firstScale) {
        if (weightKeys.size() != outputs && weightKeys.size() != 1) {
            throw new IllegalArgumentException(weightKeys.size() + " weights for " + outputs + " outputs");
        }
        long[] d = dims(x);
        long in = d[d.length - 1];
        List<Operand<TFloat32>> ws = new ArrayList<>();
        long total = 0;
        for (String k : weightKeys) {
            ws.add(w(k, x));
            long[] s = weightShape(k);
            if (s.length != 2 || s[1] != in) {
                throw new IllegalStateException(k + " has shape " + java.util.Arrays.toString(s)
                        + ", expected [out, " + in + "]");
            }
            total += s[0];
        }
        if (total % outputs != 0) {
            throw new IllegalStateException(weightKeys + ": " + total + " outputs not divisible into " + outputs);
        }
        long each = total / outputs;
        if (!textTower || weightKeys.size() * outputs <= 1 || !transposedWeight(in, each)
                || "off".equals(System.getProperty("sdserve.fusedProjections"))) {
            return null;
        }
        Operand<TFloat32> wt = weights.fused(tf, new KernelTransformCache.Fused(weightKeys, each, firstScale), ws,
                KernelTransformCache.Pool.TEXT);
        if (wt == null || biasKeys == null) {
            return wt == null ? null : List.of(wt);
        }
        List<Operand<TFloat32>> bs = new ArrayList<>();
        biasKeys.forEach(k -> bs.add(w(k, x)));
        Operand<TFloat32> bias = weights.fused(tf, new KernelTransformCache.Fused(biasKeys, each, firstScale), bs,
                KernelTransformCache.Pool.TEXT);
        return bias == null ? null : List.of(wt, bias);
    }

    /**
     * Several projections of one input {@code x [..., in]}: {@code weightKeys} either one weight per output (CLIP's
     * q, k, v) or one weight whose output splits into {@code outputs} equal parts (OpenCLIP's {@code in_proj}),
     * {@code biasKeys} the same way (or null), and the first output multiplied by {@code firstScale} (the
     * attention's 1/√d). With a text tower's held copies ({@link #textTower}, {@code -Dsdserve.fusedProjections},
     * default {@code on}) it is one product with the weights stacked, the scale folded into them
     * ({@link WeightBinder#fused}); otherwise one linear per weight and a multiply, as before.
     */
    public List<Operand<TFloat32>> projections(Operand<TFloat32> x, List<String> weightKeys, List<String> biasKeys,
                                               int outputs, float firstScale) {
        long[] d = dims(x);
        List<Operand<TFloat32>> fused = fusedOperands(x, weightKeys, biasKeys, outputs, firstScale);
        List<Operand<TFloat32>> out = new ArrayList<>();
        if (fused == null) { // the separate forms
            for (int i = 0; i < weightKeys.size(); i++) {
                Operand<TFloat32> y = linear(x, weightKeys.get(i), biasKeys == null ? null : biasKeys.get(i));
                out.addAll(weightKeys.size() == outputs ? List.of(y) : splitLast(y, outputs));
            }
            if (firstScale != 1f) {
                out.set(0, scale(out.get(0), firstScale));
            }
            return out;
        }
        Operand<TFloat32> x2 = flatten(x, d);
        Operand<TFloat32> y = fusedProduct(x2, fused);
        out.addAll(splitLast(y, outputs));
        if (linearHook != null) { // LoRA terms, each scaled as its output is
            List<Operand<TFloat32>> extra = new ArrayList<>(java.util.Collections.nCopies(outputs, null));
            for (int j = 0; j < weightKeys.size(); j++) {
                String k = weightKeys.get(j);
                Operand<TFloat32> e = linearHook.extra(this, k, x2, d, weightShape(k)[0]);
                if (e != null && weightKeys.size() == outputs) {
                    extra.set(j, e);
                } else if (e != null) {
                    List<Operand<TFloat32>> parts = splitLast(e, outputs);
                    for (int i = 0; i < outputs; i++) {
                        extra.set(i, parts.get(i));
                    }
                }
            }
            for (int i = 0; i < outputs; i++) {
                Operand<TFloat32> e = extra.get(i);
                if (e != null) {
                    out.set(i, tf.math.add(out.get(i), i == 0 && firstScale != 1f ? scale(e, firstScale) : e));
                }
            }
        }
        out.replaceAll(o -> unflatten(o, d));
        return out;
    }

    /** Stride-1 convolution with "same" padding for odd kernels (k×k HWIO or 1×1 [out, in]), plus bias. */
    public Operand<TFloat32> conv(Operand<TFloat32> x, String prefix) {
        long[] ws = weightShape(prefix + ".weight");
        if (ws.length == 2) { // 1×1 convolution, stored [out, in]
            return linear(x, prefix, true);
        }
        if (ws.length == 4 && ws[0] == 3 && ws[1] == 3) {
            return Conv3x3.conv(tf, x, w(prefix + ".weight", x), w(prefix + ".bias", x), 1, conv3x3,
                    t -> weights.transformed(prefix + ".weight", t));
        }
        Operand<TFloat32> y = tf.nn.conv2d(x, w(prefix + ".weight", x), List.of(1L, 1L, 1L, 1L), "SAME");
        return tf.nn.biasAdd(y, w(prefix + ".bias", x));
    }

    /** Convolution with explicit zero padding (top, bottom, left, right) and stride, plus bias. */
    public Operand<TFloat32> conv(Operand<TFloat32> x, String prefix, int stride, int padTop, int padBottom,
                                  int padLeft, int padRight) {
        long[] ws = weightShape(prefix + ".weight");
        if (ws.length == 4 && ws[0] == 3 && ws[1] == 3 && (stride == 1 || stride == 2)) {
            if (padTop == 1 && padBottom == 1 && padLeft == 1 && padRight == 1) {
                return Conv3x3.conv(tf, x, w(prefix + ".weight", x), w(prefix + ".bias", x), stride, conv3x3,
                        t -> weights.transformed(prefix + ".weight", t));
            }
            Operand<TFloat32> p = tf.pad(x, tf.constant(new int[][]{{0, 0}, {padTop, padBottom}, {padLeft, padRight},
                    {0, 0}}), Shapes.scalar(tf, 0f, x));
            return Conv3x3.convValid(tf, p, w(prefix + ".weight", x), w(prefix + ".bias", x), stride, conv3x3,
                    t -> weights.transformed(prefix + ".weight", t));
        }
        Operand<TFloat32> p = x;
        if (padTop + padBottom + padLeft + padRight > 0) {
            p = tf.pad(x, tf.constant(new int[][]{{0, 0}, {padTop, padBottom}, {padLeft, padRight}, {0, 0}}),
                    Shapes.scalar(tf, 0f, x));
        }
        Operand<TFloat32> y = tf.nn.conv2d(p, w(prefix + ".weight", x), List.of(1L, (long) stride, (long) stride, 1L),
                "VALID");
        return tf.nn.biasAdd(y, w(prefix + ".bias", x));
    }

    /**
     * A stride-1, "same"-padded convolution of one activation held as parts along its rows ({@code [N, H_i, W, C]}
     * each, top to bottom): a 1×1 convolution per part; a 3×3 one reads one row of each neighbouring part (zero
     * padding only at the whole activation's top and bottom), with the method the whole layer would get
     * ({@link Conv3x3#auto} of all its output pixels), so each part computes exactly its rows of the whole layer's
     * output. One part is {@link #conv(Operand, String)} itself.
     */
    public List<Operand<TFloat32>> convParts(List<Operand<TFloat32>> parts, String prefix) {
        return convParts(parts, prefix, 1);
    }

    /**
     * As {@link #convParts(List, String)} with stride 1 or 2 (a 3×3 kernel, padding 1 on every side, as PyTorch's
     * downsamplers; each part of even height: a part's outputs read one row of the part above and none below).
     */
    public List<Operand<TFloat32>> convParts(List<Operand<TFloat32>> parts, String prefix, int stride) {
        if (parts.size() == 1) {
            return List.of(stride == 1 ? conv(parts.get(0), prefix) : conv(parts.get(0), prefix, stride, 1, 1, 1, 1));
        }
        long[] ws = weightShape(prefix + ".weight");
        List<Operand<TFloat32>> out = new ArrayList<>(parts.size());
        if (ws.length == 2 && stride == 1) {
            for (Operand<TFloat32> x : parts) {
                out.add(linear(x, prefix, true));
            }
            return out;
        }
        if (ws.length != 4 || ws[0] != 3 || ws[1] != 3 || (stride != 1 && stride != 2)) {
            throw new IllegalArgumentException(prefix + ": convolution over row parts needs a 1×1 kernel or a 3×3"
                    + " one of stride 1 or 2, got " + java.util.Arrays.toString(ws) + " stride " + stride);
        }
        long rows = 0, width = dims(parts.get(0))[2];
        for (Operand<TFloat32> x : parts) {
            long h = dims(x)[1];
            if (stride == 2 && h % 2 != 0) {
                throw new IllegalArgumentException(prefix + ": stride 2 over row parts needs parts of even height, got "
                        + h);
            }
            rows += h;
        }
        long outPixels = stride == 1 ? rows * width : (rows / 2) * ((width - 1) / 2 + 1);
        Conv3x3.Method method = conv3x3 == Conv3x3.Method.AUTO
                ? Conv3x3.auto(outPixels, stride, Shapes.isHalf(parts.get(0))) : conv3x3;
        int last = parts.size() - 1;
        for (int i = 0; i <= last; i++) {
            Operand<TFloat32> x = parts.get(i);
            List<Operand<TFloat32>> band = new ArrayList<>(3);
            if (i > 0) {
                band.add(rowsOf(parts.get(i - 1), -1));
            }
            band.add(x);
            if (i < last && stride == 1) {
                band.add(rowsOf(parts.get(i + 1), 0));
            }
            Operand<TFloat32> b = band.size() == 1 ? x : tf.concat(band, tf.constant(1));
            int padTop = i == 0 ? 1 : 0, padBottom = i == last && stride == 1 ? 1 : 0;
            Operand<TFloat32> p = tf.pad(b, tf.constant(new int[][]{{0, 0}, {padTop, padBottom}, {1, 1}, {0, 0}}),
                    Shapes.scalar(tf, 0f, x));
            out.add(Conv3x3.convValid(tf, p, w(prefix + ".weight", x), w(prefix + ".bias", x), stride, method,
                    t -> weights.transformed(prefix + ".weight", t)));
        }
        return out;
    }

    /** NHWC {@code x} cut into {@code rows} consecutive parts of equal height, top to bottom (1: x itself). */
    public List<Operand<TFloat32>> splitRows(Operand<TFloat32> x, int rows) {
        if (rows == 1) {
            return List.of(x);
        }
        long h = dims(x)[1];
        if (h % rows != 0) {
            throw new IllegalArgumentException("height " + h + " does not split into " + rows + " row parts");
        }
        List<Operand<TFloat32>> parts = new ArrayList<>(rows);
        long step = h / rows;
        for (int i = 0; i < rows; i++) {
            parts.add(rowSlice(x, i * step, (i + 1) * step));
        }
        return parts;
    }

    /** Row parts joined back into the whole NHWC activation (one part: itself). */
    public Operand<TFloat32> joinRows(List<Operand<TFloat32>> parts) {
        return parts.size() == 1 ? parts.get(0) : tf.concat(parts, tf.constant(1));
    }

    /** Row {@code row} of NHWC {@code x} (−1: the last), kept as a one-row [N, 1, W, C]. */
    private Operand<TFloat32> rowsOf(Operand<TFloat32> x, int row) {
        long r = row < 0 ? dims(x)[1] + row : row;
        return rowSlice(x, r, r + 1);
    }

    /** Rows [r0, r1) of NHWC {@code x}, every sample, column and channel. */
    private Operand<TFloat32> rowSlice(Operand<TFloat32> x, long r0, long r1) {
        return tf.stridedSlice(x, tf.constant(new long[]{0, r0, 0, 0}), tf.constant(new long[]{0, r1, 0, 0}),
                tf.constant(new long[]{1, 1, 1, 1}), org.tensorflow.op.core.StridedSlice.beginMask(13L).endMask(13L));
    }

    /** {@link #groupNorm} of one activation held as row parts ({@link GroupNorm#normParts}). */
    public List<Operand<TFloat32>> groupNormParts(List<Operand<TFloat32>> parts, String prefix, int groups, double eps) {
        if (parts.size() == 1) {
            return List.of(groupNorm(parts.get(0), prefix, groups, eps));
        }
        if (PLAIN_GROUP_NORM) { // VaeNet.rowParts and UNetNet.rowParts never choose parts with it
            throw new IllegalStateException("the plain group norm (sdserve.groupNorm=plain) has no row-parts form");
        }
        Operand<TFloat32> x = parts.get(0);
        return GroupNorm.normParts(tf, parts, w(prefix + ".weight", x), w(prefix + ".bias", x), groups, eps, false);
    }

    // ---------------------------------------------------------------- normalisation

    /** GroupNorm over NHWC with affine {@code prefix.weight}/{@code prefix.bias}. */
    public Operand<TFloat32> groupNorm(Operand<TFloat32> x, String prefix, int groups, double eps) {
        long c = dims(x)[3];
        if (c % groups != 0) {
            throw new IllegalStateException(prefix + ": " + c + " channels not divisible into " + groups + " groups");
        }
        if (PLAIN_GROUP_NORM) {
            return plainGroupNorm(x, prefix, groups, eps);
        }
        return GroupNorm.norm(tf, x, w(prefix + ".weight", x), w(prefix + ".bias", x), groups, eps, false);
    }

    /** The textbook formulation (normalise, then affine), kept for before/after timing. */
    private Operand<TFloat32> plainGroupNorm(Operand<TFloat32> x, String prefix, int groups, double eps) {
        long[] d = dims(x);
        long h = d[1], wd = d[2], c = d[3];
        Operand<TFloat32> g = reshape(x, -1, h, wd, groups, c / groups);
        Operand<TInt32> axes = tf.constant(new int[]{1, 2, 4});
        Operand<TFloat32> mean = tf.math.mean(g, axes, org.tensorflow.op.math.Mean.keepDims(true));
        Operand<TFloat32> centered = tf.math.sub(g, mean);
        Operand<TFloat32> var = tf.math.mean(tf.math.square(centered), axes, org.tensorflow.op.math.Mean.keepDims(true));
        Operand<TFloat32> n = tf.math.mul(centered, tf.math.rsqrt(tf.math.add(var, tf.constant((float) eps))));
        Operand<TFloat32> y = reshape(n, -1, h, wd, c);
        return tf.math.add(tf.math.mul(y, w(prefix + ".weight", x)), w(prefix + ".bias", x));
    }

    /** LayerNorm over the last dimension. */
    public Operand<TFloat32> layerNorm(Operand<TFloat32> x, String prefix, double eps) {
        // Not LayerNorm.norm: its squaredDifference form is what grappler's remapper fuses into oneDNN's layer norm,
        // which measured 4.8e-2 off diffusers on the golden text encoder; this form stays at 3e-7.
        boolean half = Shapes.isHalf(x); // statistics in float32 (as torch's autocast), result back in half
        Operand<TFloat32> gamma = Shapes.castTo(tf, w(prefix + ".weight", x), false);
        Operand<TFloat32> beta = Shapes.castTo(tf, w(prefix + ".bias", x), false);
        x = Shapes.castTo(tf, x, false);
        int rank = x.shape().numDimensions();
        Operand<TInt32> axis = tf.constant(new int[]{rank - 1});
        Operand<TFloat32> mean = tf.math.mean(x, axis, org.tensorflow.op.math.Mean.keepDims(true));
        Operand<TFloat32> centered = tf.math.sub(x, mean);
        Operand<TFloat32> var = tf.math.mean(tf.math.square(centered), axis, org.tensorflow.op.math.Mean.keepDims(true));
        Operand<TFloat32> n = tf.math.mul(centered, tf.math.rsqrt(tf.math.add(var, tf.constant((float) eps))));
        return Shapes.castTo(tf, tf.math.add(tf.math.mul(n, gamma), beta), half);
    }

    // ---------------------------------------------------------------- attention

    /**
     * Multi-head scaled dot-product attention. q [B, Lq, D], k and v [B, Lk, D] (already projected); mask (or null)
     * is added to the scores, broadcast over [B, heads, Lq, Lk]. Returns [B, Lq, D].
     */
    public Operand<TFloat32> attention(Operand<TFloat32> q, Operand<TFloat32> k, Operand<TFloat32> v, int heads,
                                       Operand<TFloat32> mask) {
        return attention(q, k, v, heads, mask, false);
    }

    /**
     * As {@link #attention(Operand, Operand, Operand, int, Operand)}; {@code qScaled}: the queries already carry
     * the 1/√d scale ({@link #projections}).
     */
    public Operand<TFloat32> attention(Operand<TFloat32> q, Operand<TFloat32> k, Operand<TFloat32> v, int heads,
                                       Operand<TFloat32> mask, boolean qScaled) {
        long[] qd = dims(q);
        long[] kd = dims(k);
        long lq = qd[1], lk = kd[1], dim = qd[2];
        if (dim % heads != 0) {
            throw new IllegalStateException("attention width " + dim + " not divisible by " + heads + " heads");
        }
        return Attention.attend(tf, q, k, v, heads, Integer.getInteger("sdserve.attnChunk", ATTENTION_QUERY_CHUNK),
                mask, qScaled);
    }

    /**
     * Attention over {@link #packedProjections}' output {@code qkv [B, L, 3·D]} (q already scaled, then k, v):
     * one transpose makes every head's q, k and v. Returns [B, L, D].
     */
    public Operand<TFloat32> attentionPacked(Operand<TFloat32> qkv, int heads, Operand<TFloat32> mask) {
        return Attention.attendPacked(tf, qkv, heads, mask);
    }

    /** A [len, len] additive mask: 0 on and below the diagonal, a large negative number above. */
    public Operand<TFloat32> causalMask(int len) {
        float[][] m = new float[len][len];
        for (int i = 0; i < len; i++) {
            for (int j = i + 1; j < len; j++) {
                m[i][j] = -1e30f;
            }
        }
        return tf.constant(m);
    }

    // ---------------------------------------------------------------- resampling / structure

    /** Nearest-neighbour 2× upsampling of NHWC (as torch's interpolate(scale_factor=2, mode="nearest")). */
    public Operand<TFloat32> upsampleNearest2x(Operand<TFloat32> x) {
        long[] d = dims(x);
        return upsampleNearest(x, (int) d[1] * 2, (int) d[2] * 2);
    }

    /**
     * Nearest-neighbour resize of NHWC {@code x} to {@code height × width}: output row i reads input row
     * floor(i · H_in / height) (TF's legacy rule, the same as PyTorch's {@code interpolate(mode="nearest")}).
     */
    public Operand<TFloat32> upsampleNearest(Operand<TFloat32> x, int height, int width) {
        return resizeNearest(tf, x, height, width);
    }

    static Operand<TFloat32> resizeNearest(Ops tf, Operand<TFloat32> x, int height, int width) {
        return tf.image.resizeNearestNeighbor(x, tf.constant(new int[]{height, width}));
    }

    public Operand<TFloat32> concatChannels(Operand<TFloat32> a, Operand<TFloat32> b) {
        List<Operand<TFloat32>> l = new ArrayList<>(2);
        l.add(a);
        l.add(b);
        return tf.concat(l, tf.constant(a.shape().numDimensions() - 1));
    }

    /** Splits the last dimension into {@code n} equal parts. */
    public List<Operand<TFloat32>> splitLast(Operand<TFloat32> x, int n) {
        Split<TFloat32> s = tf.split(tf.constant(x.shape().numDimensions() - 1), x, (long) n);
        return new ArrayList<>(s.output());
    }

    public long channels(Operand<TFloat32> x) {
        return last(x);
    }
}
