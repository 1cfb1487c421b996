package dev.sdserve.engine.tf;

import dev.sdserve.model.UNetConfig;
import org.tensorflow.Operand;
import org.tensorflow.ndarray.Shape;
import org.tensorflow.op.core.Placeholder;
import org.tensorflow.types.TFloat32;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The SD 1.x/2.x UNet in the LDM key layout ({@code model.diffusion_model.}). Inputs: {@code x} [B, C, H, W]
 * (NCHW, transposed to NHWC inside), {@code t} float [B] (one timestep per sample), {@code ctx} [B, tokens, dim].
 * Output {@code eps} [B, C, H, W]. H and W must be multiples of 2^(levels − 1).
 */
public final class UNetNet {
    public static final String PREFIX = "model.diffusion_model.";
    /** GroupNorm epsilon of the spatial transformers (fixed in SD's code). */
    static final double TRANSFORMER_NORM_EPS = 1e-6;
    static final double LAYER_NORM_EPS = 1e-5;

    private final Nn nn;
    private final UNetConfig cfg;
    /** Cross-attention key mask [B, 1, 1, tokens] for contexts padded to one length, or null. */
    private Operand<TFloat32> ctxMask;
    /** SDXL's added-conditioning inputs (float32 graph inputs), null for SD 1.x/2.x. */
    private Operand<TFloat32> textEmbeds;
    private Operand<TFloat32> timeIds;
    /** Token merging: tokens merged away at the latent's full resolution ({@link TokenMerge}), 0 = off. */
    private int mergeHeight;
    private int mergeWidth;
    private int mergeTokens;
    /** The embedding every res block receives, set by {@link #forward}. */
    private Operand<TFloat32> emb;
    /** DeepCache: the output block whose input {@link #forward} keeps in {@link #deepFeature} (−1: none). */
    private int captureBlock = -1;
    private Operand<TFloat32> deepFeature;
    /** Row parts of the plain UNet graph ({@link #rowParts}; 1 = whole). */
    private int rows = 1;

    /** A UNet sample's work below which row parts do not pay for their larger graph ({@link Lanes#unetWork}). */
    static final long ROWS_MIN_WORK = Lanes.UNET_MIN_WORK;

    /**
     * Row parts for a UNet call: {@code -Dsdserve.unet.rowParts} (read at each graph choice), 1 by default (off), 2 to
     * opt in. On the Zen 4 development machines a UNet call at batch 1 in two parts took 0.974–0.997 of the whole
     * graph's time, which is noise, so they are not the default. Each part's chain runs on a core of its own with one
     * thread inside each op, as {@link Lanes} do for a batch's halves. Used for the plain graph only (no lanes, so a
     * batch of 1 or an odd one; no DeepCache graph, no token merging, no per-sample LoRA terms; float32), when the
     * latent's height divides into the parts at every level (a multiple of parts × 2^(levels − 1), each part at least
     * 2 rows at the deepest level), the work is at least {@link #ROWS_MIN_WORK} ({@code -Dsdserve.lanes.anySize=true}
     * drops the bound, as for {@link Lanes}), there is a thread per part and sessions have their own pools; else 1.
     */
    public static int rowParts(UNetConfig cfg, int height, int width, int lanes, boolean plain, boolean half) {
        int rows = Math.max(1, Integer.getInteger("sdserve.unet.rowParts", 1));
        int threads = Integer.getInteger("sdserve.threads", Runtime.getRuntime().availableProcessors());
        long unit = (long) rows << (cfg.levels() - 1);
        if (rows < 2 || Nn.PLAIN_GROUP_NORM || lanes > 1 || !plain || half || height % unit != 0 || height / unit < 2
                || threads < rows
                || (Lanes.unetWork(height, width, cfg.blockOutChannels().get(0)) < ROWS_MIN_WORK
                && !Boolean.getBoolean("sdserve.lanes.anySize"))
                || !Lanes.perSessionPools()) {
            return 1;
        }
        return rows;
    }

    private UNetNet(Nn nn, UNetConfig cfg) {
        this.nn = nn;
        this.cfg = cfg;
    }

    /**
     * The UNet applied to graph operands already in a graph (training): x [B, C, H, W] NCHW, t [B], ctx
     * [B, tokens, dim] → eps NCHW; the {@link Nn}'s {@link LinearHook} (if any) adds its LoRA terms.
     */
    public static Operand<TFloat32> apply(Nn nn, UNetConfig cfg, Operand<TFloat32> x, Operand<TFloat32> t,
                                          Operand<TFloat32> ctx) {
        if (cfg.hasAddedConditioning()) {
            throw new IllegalArgumentException("training graphs support UNets without added conditioning (SD 1.x/2.x), "
                    + "not SDXL's");
        }
        return nn.nhwcToNchw(new UNetNet(nn, cfg).forward(nn.nchwToNhwc(x), t, ctx));
    }

    /**
     * The UNet graph for latents of {@code height × width} and contexts of {@code tokens × ctxDim}. A UNet with added
     * conditioning (SDXL) also takes {@code text_embeds} [B, pooled] and {@code time_ids} [B, 6]; every UNet also
     * outputs {@code emb} [B, time embedding], the vector every res block receives (before its SiLU).
     */
    public static void build(TfGraph.Builder b, UNetConfig cfg, int height, int width, int tokens, int ctxDim) {
        build(b, cfg, height, width, tokens, ctxDim, false);
    }

    /**
     * As {@link #build(TfGraph.Builder, UNetConfig, int, int, int, int)}; with {@code masked} the graph also takes
     * {@code ctx_bias} [B, tokens] (0 for a sample's own tokens, −1e30 for padding), added to the cross-attention
     * scores, so samples with shorter contexts padded to {@code tokens} attend only to their own tokens.
     */
    public static void build(TfGraph.Builder b, UNetConfig cfg, int height, int width, int tokens, int ctxDim,
                             boolean masked) {
        build(b, cfg, height, width, tokens, ctxDim, masked, DeepCacheGraph.NONE, 0);
    }

    /**
     * As {@link #build(TfGraph.Builder, UNetConfig, int, int, int, int, boolean)} in one of DeepCache's variants
     * ({@link DeepCacheGraph}): the full UNet that also outputs {@code deep}, or the shallow path that takes it.
     */
    public static void build(TfGraph.Builder b, UNetConfig cfg, int height, int width, int tokens, int ctxDim,
                             boolean masked, DeepCacheGraph deepCache) {
        build(b, cfg, height, width, tokens, ctxDim, masked, deepCache, 0);
    }

    /**
     * As {@link #build(TfGraph.Builder, UNetConfig, int, int, int, int, boolean, DeepCacheGraph)} with token merging
     * ({@link TokenMerge}) at {@code tokenMerging} (0 = off: the graph is the one without) in the self-attention of
     * the transformers at the latent's full resolution (tomesd's max_downsample = 1; SDXL has none there), in the
     * whole UNet and in DeepCache's shallow path alike.
     */
    public static void build(TfGraph.Builder b, UNetConfig cfg, int height, int width, int tokens, int ctxDim,
                             boolean masked, DeepCacheGraph deepCache, double tokenMerging) {
        build(b, cfg, height, width, tokens, ctxDim, masked, deepCache, tokenMerging, 1);
    }

    /**
     * As {@link #build(TfGraph.Builder, UNetConfig, int, int, int, int, boolean, DeepCacheGraph, double)} in
     * {@code lanes} per-sample lanes ({@link Lanes}: the batch, which must divide evenly, cut into that many parts,
     * each run through its own copy of the network's ops on the same weights; 1 = the plain graph).
     */
    public static void build(TfGraph.Builder b, UNetConfig cfg, int height, int width, int tokens, int ctxDim,
                             boolean masked, DeepCacheGraph deepCache, double tokenMerging, int lanes) {
        build(b, cfg, height, width, tokens, ctxDim, masked, deepCache, tokenMerging, lanes, 1);
    }

    /**
     * As {@link #build(TfGraph.Builder, UNetConfig, int, int, int, int, boolean, DeepCacheGraph, double, int)} with
     * the activations in {@code rows} row parts ({@link #rowParts}; 1 = whole), run by a session with one thread per
     * part. Row parts and lanes exclude each other, and row parts are for the plain UNet (no DeepCache graph, no token
     * merging).
     */
    public static void build(TfGraph.Builder b, UNetConfig cfg, int height, int width, int tokens, int ctxDim,
                             boolean masked, DeepCacheGraph deepCache, double tokenMerging, int lanes, int rows) {
        if (rows > 1 && (lanes > 1 || deepCache != DeepCacheGraph.NONE
                || TokenMerge.merged(height, width, tokenMerging) > 0)) {
            throw new IllegalArgumentException("row parts are for the plain UNet without lanes");
        }
        if (height < 1 || width < 1) {
            throw new IllegalArgumentException("latent " + height + "x" + width + " is empty");
        }
        var tf = b.tf;
        Map<String, Operand<TFloat32>> in = new LinkedHashMap<>();
        in.put("x", b.input("x", tf.placeholder(TFloat32.class,
                Placeholder.shape(Shape.of(-1, cfg.inChannels(), height, width)))));
        in.put("t", b.input("t", tf.placeholder(TFloat32.class, Placeholder.shape(Shape.of(-1)))));
        in.put("ctx", b.input("ctx", tf.placeholder(TFloat32.class, Placeholder.shape(Shape.of(-1, tokens, ctxDim)))));
        if (masked) {
            in.put("ctx_bias", b.input("ctx_bias", tf.placeholder(TFloat32.class,
                    Placeholder.shape(Shape.of(-1, tokens)))));
        }
        if (cfg.hasAddedConditioning()) {
            in.put("text_embeds", b.input("text_embeds", tf.placeholder(TFloat32.class,
                    Placeholder.shape(Shape.of(-1, cfg.pooledDim())))));
            in.put("time_ids", b.input("time_ids", tf.placeholder(TFloat32.class,
                    Placeholder.shape(Shape.of(-1, UNetConfig.TIME_IDS)))));
        }
        if (deepCache == DeepCacheGraph.SHALLOW) {
            in.put("deep", b.input("deep", tf.placeholder(TFloat32.class,
                    Placeholder.shape(Shape.of(-1, height, width, deepFeatureChannels(cfg))))));
        }
        List<Map<String, Operand<TFloat32>>> outs = new ArrayList<>();
        for (Map<String, Operand<TFloat32>> part : Lanes.split(tf, in, lanes)) {
            UNetNet net = new UNetNet(b.nn, cfg);
            net.mergeTokens(height, width, tokenMerging);
            net.rows = rows;
            outs.add(net.outputs(part, tokens, deepCache));
        }
        Lanes.join(tf, outs).forEach(b::output);
        b.lanes(Math.max(lanes, rows));
    }

    /** The graph's outputs on one part of the batch (inputs by name, as {@link #build} registers them). */
    private Map<String, Operand<TFloat32>> outputs(Map<String, Operand<TFloat32>> in, int tokens,
                                                   DeepCacheGraph deepCache) {
        var tf = nn.tf();
        if (in.containsKey("ctx_bias")) {
            ctxMask = tf.reshape(in.get("ctx_bias"), tf.constant(new long[]{-1, 1, 1, tokens}));
        }
        textEmbeds = in.get("text_embeds");
        timeIds = in.get("time_ids");
        Operand<TFloat32> xin = nn.toCompute(nn.nchwToNhwc(in.get("x")));
        Operand<TFloat32> t = in.get("t");
        Operand<TFloat32> c = nn.toCompute(in.get("ctx"));
        Map<String, Operand<TFloat32>> out = new LinkedHashMap<>();
        switch (deepCache) {
            case NONE -> {
                out.put("eps", nn.toFloat32(nn.nhwcToNchw(forward(xin, t, c, rows))));
                out.put("emb", nn.toFloat32(emb));
            }
            case CAPTURE -> {
                captureBlock = deepCacheBlock();
                out.put("eps", nn.toFloat32(nn.nhwcToNchw(forward(xin, t, c))));
                out.put("deep", nn.toFloat32(deepFeature));
            }
            case SHALLOW -> out.put("eps", nn.toFloat32(nn.nhwcToNchw(forwardShallow(xin, t, c,
                    nn.toCompute(in.get("deep"))))));
        }
        return out;
    }

    /** Which UNet graph DeepCache runs (see {@link #deepFeatureChannels}). */
    public enum DeepCacheGraph {
        /** The plain UNet. */
        NONE,
        /** The whole UNet; also outputs {@code deep} [B, H, W, C] (NHWC, float32), the feature the shallow path reuses. */
        CAPTURE,
        /** Only the shallow path, fed {@code deep} from an earlier full step. */
        SHALLOW
    }

    /**
     * The output block whose input DeepCache caches: the input of the last up level's second-to-last block, so the
     * shallow path recomputes the last two output blocks (which meet the skips of {@code input_blocks.1} and of
     * {@code conv_in}) and needs only {@code conv_in} and {@code input_blocks.1} on the way down: DeepCache's branch
     * 0 (cache_layer_id 0, cache_block_id 0), the shallowest skip branch, as the paper runs SD 1.5.
     */
    int deepCacheBlock() {
        return cfg.levels() * (cfg.layersPerBlock() + 1) - 2;
    }

    /** Channels of the cached feature: those of the block before {@link #deepCacheBlock} (an up level's output or an upsampler's). */
    static int deepFeatureChannels(UNetConfig cfg) {
        boolean sameLevel = cfg.layersPerBlock() >= 2 || cfg.levels() == 1;
        return cfg.blockOutChannels().get(sameLevel ? 0 : 1);
    }

    /**
     * DeepCache's shallow path: {@code conv_in}, {@code input_blocks.1} (its res block and transformer), then the
     * last two output blocks on {@code deep} (the cached input of {@link #deepCacheBlock}) with those two skips,
     * and the output head. With {@code deep} from the same x, t and ctx it computes what {@link #forward} does.
     */
    Operand<TFloat32> forwardShallow(Operand<TFloat32> x, Operand<TFloat32> t, Operand<TFloat32> ctx,
                                     Operand<TFloat32> deep) {
        String p = PREFIX;
        Operand<TFloat32> tembAct = nn.silu(timeEmbedding(t));
        Operand<TFloat32> skip0 = nn.conv(x, p + "input_blocks.0.0");
        Operand<TFloat32> skip1 = resBlock(skip0, tembAct, p + "input_blocks.1.0");
        if (cfg.crossAttnDown().get(0)) {
            skip1 = spatialTransformer(skip1, ctx, p + "input_blocks.1.1", cfg.attentionHeads().get(0));
        }
        Operand<TFloat32> h = deep;
        int first = deepCacheBlock();
        int up = cfg.levels() - 1;
        List<Operand<TFloat32>> skips = List.of(skip1, skip0);
        for (int i = 0; i < 2; i++) {
            String bp = p + "output_blocks." + (first + i) + ".";
            h = nn.concatChannels(h, skips.get(i));
            h = resBlock(h, tembAct, bp + "0");
            if (cfg.crossAttnUp().get(up)) {
                h = spatialTransformer(h, ctx, bp + "1", cfg.attentionHeads().get(0));
            }
        }
        return outputHead(h);
    }

    /** The time embedding every res block receives (before its SiLU): time_embed MLP, plus SDXL's added embedding. */
    private Operand<TFloat32> timeEmbedding(Operand<TFloat32> t) {
        Operand<TFloat32> temb = nn.toCompute(timestepEmbedding(t, cfg.blockOutChannels().get(0))); // sin/cos in float32
        temb = nn.linear(temb, PREFIX + "time_embed.0", true);
        temb = nn.linear(nn.silu(temb), PREFIX + "time_embed.2", true);
        if (cfg.hasAddedConditioning()) {
            temb = nn.add(temb, addedEmbedding());
        }
        return temb;
    }

    /** The output head: GroupNorm, SiLU, the last convolution. */
    private Operand<TFloat32> outputHead(Operand<TFloat32> h) {
        return outputHead(List.of(h)).get(0);
    }

    private List<Operand<TFloat32>> outputHead(List<Operand<TFloat32>> h) {
        h = nn.groupNormParts(h, PREFIX + "out.0", cfg.normGroups(), cfg.normEps()).stream().map(nn::silu).toList();
        return nn.convParts(h, PREFIX + "out.2");
    }

    /** Sinusoidal timestep embedding (flip_sin_to_cos = true, freq_shift = 0 as SD): [B] → [B, dim]. */
    Operand<TFloat32> timestepEmbedding(Operand<TFloat32> t, int dim) {
        if (dim % 2 != 0) {
            throw new IllegalArgumentException("sinusoidal embedding width must be even, got " + dim);
        }
        int half = dim / 2;
        float[] freqs = new float[half];
        float logMax = (float) -Math.log(10000.0);
        for (int i = 0; i < half; i++) {
            float exponent = logMax * (float) i / (float) half; // freq_shift 0
            freqs[i] = (float) Math.exp(exponent);
        }
        var tf = nn.tf();
        Operand<TFloat32> args = tf.math.mul(tf.expandDims(t, tf.constant(1)), tf.constant(new float[][]{freqs}));
        List<Operand<TFloat32>> parts = new ArrayList<>();
        parts.add(tf.math.cos(args));
        parts.add(tf.math.sin(args));
        return tf.concat(parts, tf.constant(1));
    }

    Operand<TFloat32> forward(Operand<TFloat32> x, Operand<TFloat32> t, Operand<TFloat32> ctx) {
        return forward(x, t, ctx, 1);
    }

    /**
     * The whole UNet with its activations held as {@code rows} parts along the latent's rows (top to bottom; 1 =
     * whole, the graph as before): each part's ops form a chain of their own, joined only where a layer needs the
     * whole (a 3×3 convolution reads a row of each neighbour, a group norm adds every part's sums, a self-attention
     * reads every part's keys and values), so a session with one thread per part runs them side by side
     * ({@link #rowParts}). Cross-attention, the feed-forward and layer norms are per token, so per part.
     */
    Operand<TFloat32> forward(Operand<TFloat32> x, Operand<TFloat32> t, Operand<TFloat32> ctx, int rows) {
        String p = PREFIX;
        Operand<TFloat32> temb = timeEmbedding(t);
        emb = temb;
        Operand<TFloat32> tembAct = nn.silu(temb); // every res block applies SiLU before its projection

        int levels = cfg.levels();
        int lpb = cfg.layersPerBlock();
        Deque<List<Operand<TFloat32>>> skips = new ArrayDeque<>();
        List<Operand<TFloat32>> h = nn.convParts(nn.splitRows(x, rows), p + "input_blocks.0.0");
        skips.push(h);
        int k = 1;
        for (int level = 0; level < levels; level++) {
            for (int j = 0; j < lpb; j++) {
                String bp = p + "input_blocks." + k + ".";
                h = resBlock(h, tembAct, bp + "0");
                if (cfg.crossAttnDown().get(level)) {
                    h = spatialTransformer(h, ctx, bp + "1", cfg.attentionHeads().get(level));
                }
                skips.push(h);
                k++;
            }
            if (level < levels - 1) {
                h = nn.convParts(h, p + "input_blocks." + k + ".0.op", 2);
                skips.push(h);
                k++;
            }
        }

        String mp = p + "middle_block.";
        h = resBlock(h, tembAct, mp + "0");
        if (cfg.midAttention()) {
            h = spatialTransformer(h, ctx, mp + "1", cfg.attentionHeads().get(levels - 1));
            h = resBlock(h, tembAct, mp + "2");
        } else {
            h = resBlock(h, tembAct, mp + "1");
        }

        k = 0;
        for (int u = 0; u < levels; u++) {
            int level = levels - 1 - u;
            for (int j = 0; j <= lpb; j++) {
                String bp = p + "output_blocks." + k + ".";
                if (k == captureBlock) {
                    deepFeature = nn.joinRows(h);
                }
                List<Operand<TFloat32>> skip = skips.pop();
                List<Operand<TFloat32>> cat = new ArrayList<>(h.size());
                for (int i = 0; i < h.size(); i++) {
                    cat.add(nn.concatChannels(h.get(i), skip.get(i)));
                }
                h = resBlock(cat, tembAct, bp + "0");
                int idx = 1;
                if (cfg.crossAttnUp().get(u)) {
                    h = spatialTransformer(h, ctx, bp + "1", cfg.attentionHeads().get(level));
                    idx = 2;
                }
                if (j == lpb && u < levels - 1) {
                    // to the size of the skip it meets next: 2× when the size was even on the way down, else
                    // one less (a stride-2 conv rounds up), as diffusers does for sizes not divisible by 2^levels
                    // (row parts need sizes divisible by 2^(levels − 1) per part: each part doubles)
                    List<Operand<TFloat32>> to = skips.peek();
                    List<Operand<TFloat32>> up = new ArrayList<>(h.size());
                    for (int i = 0; i < h.size(); i++) {
                        long[] d = Nn.dims(to.get(i));
                        up.add(nn.upsampleNearest(h.get(i), (int) d[1], (int) d[2]));
                    }
                    h = nn.convParts(up, bp + idx + ".conv");
                }
                k++;
            }
        }
        return nn.joinRows(outputHead(h));
    }

    /**
     * SDXL's added embedding: each of the 6 time ids as a sinusoid of {@code addTimeEmbedDim} (cos half first),
     * concatenated after the pooled text embedding, through {@code label_emb} (Linear, SiLU, Linear).
     */
    private Operand<TFloat32> addedEmbedding() {
        var tf = nn.tf();
        int d = cfg.addTimeEmbedDim();
        Operand<TFloat32> sin = timestepEmbedding(tf.reshape(timeIds, tf.constant(new long[]{-1})), d); // [B·6, d]
        Operand<TFloat32> flat = nn.reshape(sin, -1, (long) UNetConfig.TIME_IDS * d);
        Operand<TFloat32> in = nn.toCompute(tf.concat(List.of(textEmbeds, flat), tf.constant(1)));
        Operand<TFloat32> h = nn.linear(in, PREFIX + "label_emb.0.0", true);
        return nn.linear(nn.silu(h), PREFIX + "label_emb.0.2", true);
    }

    /** ResBlock: GN, SiLU, conv; + projected time embedding; GN, SiLU, conv; + (1×1-projected) input. */
    Operand<TFloat32> resBlock(Operand<TFloat32> x, Operand<TFloat32> tembAct, String bp) {
        return resBlock(List.of(x), tembAct, bp).get(0);
    }

    private List<Operand<TFloat32>> resBlock(List<Operand<TFloat32>> x, Operand<TFloat32> tembAct, String bp) {
        List<Operand<TFloat32>> h = nn.groupNormParts(x, bp + ".in_layers.0", cfg.normGroups(), cfg.normEps())
                .stream().map(nn::silu).toList();
        h = nn.convParts(h, bp + ".in_layers.2");
        long c = nn.channels(h.get(0));
        Operand<TFloat32> e = nn.reshape(nn.linear(tembAct, bp + ".emb_layers.1", true), -1, 1, 1, c);
        h = h.stream().map(hi -> nn.add(hi, e)).toList();
        h = nn.groupNormParts(h, bp + ".out_layers.0", cfg.normGroups(), cfg.normEps()).stream().map(nn::silu).toList();
        h = nn.convParts(h, bp + ".out_layers.3");
        List<Operand<TFloat32>> skip = nn.has(bp + ".skip_connection.weight") ? nn.convParts(x, bp + ".skip_connection")
                : x;
        List<Operand<TFloat32>> out = new ArrayList<>(x.size());
        for (int i = 0; i < x.size(); i++) {
            out.add(nn.add(skip.get(i), h.get(i)));
        }
        return out;
    }

    /** SpatialTransformer: GN, proj_in, transformer blocks (self-attn, cross-attn, GEGLU FF), proj_out, residual. */
    Operand<TFloat32> spatialTransformer(Operand<TFloat32> x, Operand<TFloat32> ctx, String sp, int heads) {
        return spatialTransformer(List.of(x), ctx, sp, heads).get(0);
    }

    private List<Operand<TFloat32>> spatialTransformer(List<Operand<TFloat32>> x, Operand<TFloat32> ctx, String sp,
                                                       int heads) {
        List<Operand<TFloat32>> h = nn.groupNormParts(x, sp + ".norm", cfg.normGroups(), TRANSFORMER_NORM_EPS);
        // proj_in as 1×1 conv (SD 1.x) or linear (SD 2.x): both are a per-pixel linear over channels in NHWC
        h = nn.convParts(h, sp + ".proj_in");
        long inner = nn.channels(h.get(0));
        List<long[]> d = x.stream().map(Nn::dims).toList();
        List<Operand<TFloat32>> tok = new ArrayList<>(h.size());
        for (int i = 0; i < h.size(); i++) {
            tok.add(nn.reshape(h.get(i), -1, d.get(i)[1] * d.get(i)[2], inner));
        }
        for (int b = 0; nn.has(sp + ".transformer_blocks." + b + ".norm1.weight"); b++) {
            String tp = sp + ".transformer_blocks." + b + ".";
            List<Operand<TFloat32>> n1 = tok.stream().map(t -> nn.layerNorm(t, tp + "norm1", LAYER_NORM_EPS)).toList();
            List<Operand<TFloat32>> a1 = tok.size() == 1
                    ? List.of(selfAttention(tok.get(0), n1.get(0), tp + "attn1", heads, d.get(0)[1], d.get(0)[2]))
                    : selfAttentionParts(n1, tp + "attn1", heads);
            List<Operand<TFloat32>> next = new ArrayList<>(tok.size());
            for (int i = 0; i < tok.size(); i++) {
                Operand<TFloat32> hi = nn.add(tok.get(i), a1.get(i));
                Operand<TFloat32> n2 = nn.layerNorm(hi, tp + "norm2", LAYER_NORM_EPS);
                hi = nn.add(hi, attention(n2, ctx, tp + "attn2", heads, ctxMask));
                Operand<TFloat32> n3 = nn.layerNorm(hi, tp + "norm3", LAYER_NORM_EPS);
                next.add(nn.add(hi, feedForward(n3, tp + "ff")));
            }
            tok = next;
        }
        List<Operand<TFloat32>> img = new ArrayList<>(tok.size());
        for (int i = 0; i < tok.size(); i++) {
            img.add(nn.reshape(tok.get(i), -1, d.get(i)[1], d.get(i)[2], inner));
        }
        img = nn.convParts(img, sp + ".proj_out");
        List<Operand<TFloat32>> out = new ArrayList<>(x.size());
        for (int i = 0; i < x.size(); i++) {
            out.add(nn.add(img.get(i), x.get(i)));
        }
        return out;
    }

    /**
     * Self-attention over row parts: each part's queries attend to every part's keys and values (concatenated in
     * row order, so the whole's token order). No token merging here ({@link #rowParts} keeps merging graphs whole).
     */
    private List<Operand<TFloat32>> selfAttentionParts(List<Operand<TFloat32>> n, String ap, int heads) {
        if (mergeTokens > 0) {
            throw new IllegalStateException("token merging runs on the whole latent, not on row parts");
        }
        var tf = nn.tf();
        List<Operand<TFloat32>> q = new ArrayList<>(), k = new ArrayList<>(), v = new ArrayList<>();
        for (Operand<TFloat32> ni : n) {
            q.add(projection(ni, ap + ".to_q", false));
            k.add(projection(ni, ap + ".to_k", false));
            v.add(projection(ni, ap + ".to_v", false));
        }
        Operand<TFloat32> keys = tf.concat(k, tf.constant(1)), values = tf.concat(v, tf.constant(1));
        List<Operand<TFloat32>> out = new ArrayList<>(n.size());
        for (Operand<TFloat32> qi : q) {
            out.add(projection(nn.attention(qi, keys, values, heads, null), ap + ".to_out.0", true));
        }
        return out;
    }

    /** Merges {@code ratio} of the tokens in the self-attention at {@code height × width} (0: none). */
    void mergeTokens(int height, int width, double ratio) {
        mergeHeight = height;
        mergeWidth = width;
        mergeTokens = TokenMerge.merged(height, width, ratio);
    }

    /**
     * A transformer block's self-attention on {@code n1} (its normed input {@code h}): with token merging at this
     * resolution, on the merged tokens (matched on {@code h}, as tomesd), unmerged afterwards.
     */
    Operand<TFloat32> selfAttention(Operand<TFloat32> h, Operand<TFloat32> n1, String ap, int heads, long hgt,
                                    long wid) {
        if (mergeTokens <= 0 || hgt != mergeHeight || wid != mergeWidth) {
            return attention(n1, n1, ap, heads);
        }
        TokenMerge tm = TokenMerge.plan(nn.tf(), h, (int) hgt, (int) wid, mergeTokens);
        Operand<TFloat32> m = tm.merge(n1);
        return tm.unmerge(attention(m, m, ap, heads));
    }

    Operand<TFloat32> attention(Operand<TFloat32> x, Operand<TFloat32> ctx, String ap, int heads) {
        return attention(x, ctx, ap, heads, null);
    }

    Operand<TFloat32> attention(Operand<TFloat32> x, Operand<TFloat32> ctx, String ap, int heads, Operand<TFloat32> keyMask) {
        Operand<TFloat32> q = projection(x, ap + ".to_q", false);
        Operand<TFloat32> k = projection(ctx, ap + ".to_k", false);
        Operand<TFloat32> v = projection(ctx, ap + ".to_v", false);
        return projection(nn.attention(q, k, v, heads, keyMask), ap + ".to_out.0", true);
    }

    /** An attention projection (LoRA terms come from the {@link Nn}'s {@link LinearHook}). */
    private Operand<TFloat32> projection(Operand<TFloat32> x, String prefix, boolean bias) {
        return nn.linear(x, prefix, bias);
    }

    /** GEGLU: proj to 2·inner, value · gelu(gate), then back to width. */
    Operand<TFloat32> feedForward(Operand<TFloat32> x, String fp) {
        Operand<TFloat32> proj = nn.linear(x, fp + ".net.0.proj", true);
        List<Operand<TFloat32>> parts = nn.splitLast(proj, 2);
        Operand<TFloat32> g = nn.mul(parts.get(0), nn.gelu(parts.get(1)));
        return nn.linear(g, fp + ".net.2", true);
    }
}
