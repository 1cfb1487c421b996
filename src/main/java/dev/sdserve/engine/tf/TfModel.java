package dev.sdserve.engine.tf;

import dev.sdserve.engine.AddedConditioning;
import dev.sdserve.model.Checkpoint;
import dev.sdserve.model.UNetConfig;
import dev.sdserve.model.ModelConfig;
import dev.sdserve.model.SafeTensors;
import org.tensorflow.Result;
import org.tensorflow.ndarray.Shape;
import org.tensorflow.ndarray.buffer.DataBuffers;
import org.tensorflow.types.TFloat32;
import org.tensorflow.types.TInt32;

import java.io.IOException;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * One loaded model: its architecture, its weights (held once as TF tensors) and its graphs, built lazily once per
 * (network, shape) and reused: text encoder per CLIP skip, UNet per latent height × width, VAE decoder/encoder per
 * size. The batch dimension of every graph is dynamic. Calls are serialised on the model.
 */
public final class TfModel implements AutoCloseable {
    private final String name;
    private final ModelConfig config;
    private final Weights weights;
    private final Map<String, TfGraph> graphs = new HashMap<>();
    private final long loadNanos;
    private final ComputeDType compute;

    public TfModel(String name, ModelConfig config, Weights weights, long loadNanos) {
        this(name, config, weights, loadNanos, ComputeDType.FP32);
    }

    public TfModel(String name, ModelConfig config, Weights weights, long loadNanos, ComputeDType compute) {
        this.name = name;
        this.config = config;
        this.weights = weights;
        this.loadNanos = loadNanos;
        this.compute = compute;
    }

    /**
     * Loads a checkpoint, its architecture read from its shapes (and a config JSON beside it, if any), computing in
     * the configured dtype ({@link ComputeDType#configured()}).
     */
    public static TfModel load(String name, Path checkpoint) throws IOException {
        return load(name, checkpoint, ComputeDType.configured());
    }

    public static TfModel load(String name, Path checkpoint, ComputeDType compute) throws IOException {
        long t0 = System.nanoTime();
        try (Checkpoint ck = Checkpoint.open(checkpoint)) {
            Weights w = Weights.load(ck.file(), policy(compute));
            return new TfModel(name, ck.config(), w, System.nanoTime() - t0, compute);
        }
    }

    public static TfModel load(String name, Path checkpoint, ModelConfig config) throws IOException {
        return load(name, checkpoint, config, ComputeDType.configured());
    }

    public static TfModel load(String name, Path checkpoint, ModelConfig config, ComputeDType compute)
            throws IOException {
        long t0 = System.nanoTime();
        try (SafeTensors st = SafeTensors.open(checkpoint)) {
            Weights w = Weights.load(st, policy(compute));
            return new TfModel(name, config, w, System.nanoTime() - t0, compute);
        }
    }

    /** fp16 compute keeps every F16 tensor in half; fp32 compute the configured policy (default: the same). */
    private static Weights.HalfPolicy policy(ComputeDType compute) {
        return compute == ComputeDType.FP16 ? Weights.HalfPolicy.ALL : Weights.HalfPolicy.configured();
    }

    public ComputeDType compute() {
        return compute;
    }

    public ModelConfig config() {
        return config;
    }

    public Weights weights() {
        return weights;
    }

    public long loadNanos() {
        return loadNanos;
    }

    public synchronized int graphCount() {
        return graphs.size();
    }

    /** Graph-key part for a graph built in lanes ({@link Lanes}); the plain graph's key is unchanged. */
    private static String lanesSuffix(int lanes) {
        return lanes > 1 ? "/lanes" + lanes : "";
    }

    private TfGraph graph(String key, java.util.function.Consumer<TfGraph.Builder> build) {
        return graph(key, compute, build);
    }

    private TfGraph graph(String key, ComputeDType dtype, java.util.function.Consumer<TfGraph.Builder> build) {
        TfGraph g = graphs.get(key);
        if (g == null) {
            g = TfGraph.build(name + "/" + key, weights, dtype, build);
            graphs.put(key, g);
        }
        return g;
    }

    // ---------------------------------------------------------------- text encoder

    /** A text tower's outputs per row: hidden states [tokens × width] and (when asked) pooled embeddings, else null. */
    public record Encoded(float[][] hidden, float[][] pooled) {
    }

    /** Token ids [B][tokens] → hidden states [B][tokens × width] (CLIP skip applied, final layer norm included). */
    public synchronized float[][] encodeTokens(int[][] ids, int clipSkip) {
        return encodeTokens(ids, clipSkip, Map.of(), null);
    }

    /**
     * As {@link #encodeTokens(int[][], int)} with LoRA: {@code overrides} replace weights (merged path), and
     * {@code lowRank} (or null) adds per-sample low-rank terms (unmerged path, a graph variant per covered key set).
     */
    public synchronized float[][] encodeTokens(int[][] ids, int clipSkip, Map<String, TFloat32> overrides,
                                               LoraLibrary.LowRankFeeds lowRank) {
        return encodeTower(0, ids, ClipTextNet.Request.clipSkip(clipSkip), overrides, lowRank).hidden();
    }

    /**
     * Text tower {@code tower} (0: the first; SDXL's OpenCLIP-bigG is 1) on a batch of token ids: the requested
     * hidden state of every row and, with {@link ClipTextNet.Request#pooled}, its pooled projected embedding.
     * {@code overrides} / {@code lowRank} as in {@link #encodeTokens(int[][], int, Map, LoraLibrary.LowRankFeeds)}.
     */
    public synchronized Encoded encodeTower(int tower, int[][] ids, ClipTextNet.Request req,
                                            Map<String, TFloat32> overrides, LoraLibrary.LowRankFeeds lowRank) {
        if (tower < 0 || tower >= config.textEncoders().size()) {
            throw new IllegalArgumentException("model " + name + " has " + config.textEncoders().size()
                    + " text tower(s), not " + (tower + 1));
        }
        int b = ids.length;
        int tokens = ids[0].length;
        int[] flat = new int[b * tokens];
        for (int i = 0; i < b; i++) {
            if (ids[i].length != tokens) {
                throw new IllegalArgumentException("token rows of different lengths: " + ids[i].length + " vs " + tokens);
            }
            System.arraycopy(ids[i], 0, flat, i * tokens, tokens);
        }
        var te = config.textEncoders().get(tower);
        int lanes = lowRank != null ? 1 // low-rank LoRA terms are fed per sample: plain graph
                : Lanes.forBatch(b, Lanes.textWork(tokens, te.hiddenSize(), te.layers()), Lanes.TEXT_MIN_WORK);
        String key = (tower == 0 ? "te/" : "te" + tower + "/") + tokens + "/" + (req.equals(ClipTextNet.Request.clipSkip(req.fromEnd()))
                ? "skip" + req.fromEnd() : req.key()) + lowRankSuffix(lowRank) + lanesSuffix(lanes);
        TfGraph g = graph(key, bl -> {
            hook(bl, lowRank);
            ClipTextNet.build(bl, te, tokens, req, lanes);
        });
        Map<String, org.tensorflow.Tensor> in = new HashMap<>();
        try (TInt32 idt = TInt32.tensorOf(Shape.of(b, tokens), d -> d.copyFrom(DataBuffers.of(flat, true, false)));
             TInt32 eos = req.pooled() ? TInt32.vectorOf(ClipTextNet.eosPositions(ids)) : null) {
            in.put("ids", idt);
            if (eos != null) {
                in.put("eos", eos);
            }
            List<String> fetch = req.pooled() ? List.of("hidden", "pooled") : List.of("hidden");
            try (Result r = g.run(feeds(g, in, lowRank), fetch, overrides)) {
                return new Encoded(split((TFloat32) r.get(0), b), req.pooled() ? split((TFloat32) r.get(1), b) : null);
            }
        }
    }

    // ---------------------------------------------------------------- UNet

    /**
     * One UNet evaluation of a batch: x [B][C·H·W] NCHW, one timestep per sample, ctx [B][tokens·dim]. Returns the
     * model output per sample (NCHW).
     */
    public synchronized float[][] unet(List<float[]> x, float[] t, List<float[]> ctx, int height, int width) {
        return unet(x, t, ctx, height, width, Map.of(), null);
    }

    /** As {@link #unet(List, float[], List, int, int)} with LoRA (see {@link #encodeTokens(int[][], int, Map, LoraLibrary.LowRankFeeds)}). */
    public synchronized float[][] unet(List<float[]> x, float[] t, List<float[]> ctx, int height, int width,
                                       Map<String, TFloat32> overrides, LoraLibrary.LowRankFeeds lowRank) {
        return runUnet(x, t, ctx, null, null, height, width, overrides, lowRank, "eps");
    }

    /**
     * As {@link #unet(List, float[], List, int, int, Map, LoraLibrary.LowRankFeeds)} with {@code ctxBias}: per sample
     * one additive cross-attention bias per context token (0 for its own tokens, −1e30 for padding), or null.
     */
    public synchronized float[][] unet(List<float[]> x, float[] t, List<float[]> ctx, float[][] ctxBias, int height,
                                       int width, Map<String, TFloat32> overrides, LoraLibrary.LowRankFeeds lowRank) {
        return runUnet(x, t, ctx, ctxBias, null, height, width, overrides, lowRank, "eps");
    }

    /**
     * As {@link #unet(List, float[], List, int, int, Map, LoraLibrary.LowRankFeeds)} with each sample's added
     * conditioning ({@code added}: required for a UNet with {@code label_emb} (SDXL), ignored (may be null) for others).
     */
    public synchronized float[][] unet(List<float[]> x, float[] t, List<float[]> ctx, List<AddedConditioning> added,
                                       int height, int width, Map<String, TFloat32> overrides,
                                       LoraLibrary.LowRankFeeds lowRank) {
        return runUnet(x, t, ctx, null, added, height, width, overrides, lowRank, "eps");
    }

    /**
     * The full UNet call: contexts padded to one length with their cross-attention bias ({@code ctxBias}, per sample
     * one additive bias per context token, 0 for its own tokens and −1e30 for padding; null when all have one length)
     * and each sample's added conditioning ({@code added}, SDXL; null for other families).
     */
    public synchronized float[][] unet(List<float[]> x, float[] t, List<float[]> ctx, float[][] ctxBias,
                                       List<AddedConditioning> added, int height, int width,
                                       Map<String, TFloat32> overrides, LoraLibrary.LowRankFeeds lowRank) {
        return runUnet(x, t, ctx, ctxBias, added, height, width, overrides, lowRank, "eps");
    }

    /**
     * As {@link #unet(List, float[], List, float[][], List, int, int, Map, LoraLibrary.LowRankFeeds)} with token
     * merging at {@code tokenMerging} ({@link TokenMerge}; 0 = off, the same graph and result as without).
     */
    public synchronized float[][] unet(List<float[]> x, float[] t, List<float[]> ctx, float[][] ctxBias,
                                       List<AddedConditioning> added, int height, int width,
                                       Map<String, TFloat32> overrides, LoraLibrary.LowRankFeeds lowRank,
                                       double tokenMerging) {
        return runUnet(x, t, ctx, ctxBias, added, height, width, overrides, lowRank, UNetNet.DeepCacheGraph.NONE, null,
                List.of("eps"), tokenMerging)[0];
    }

    /** The embedding every res block receives (timestep embedding + SDXL's added embedding), [B][time embedding]. */
    public synchronized float[][] unetEmbedding(List<float[]> x, float[] t, List<float[]> ctx, List<AddedConditioning> added,
                                                int height, int width) {
        return runUnet(x, t, ctx, null, added, height, width, Map.of(), null, "emb");
    }

    private float[][] runUnet(List<float[]> x, float[] t, List<float[]> ctx, float[][] ctxBias,
                              List<AddedConditioning> added, int height, int width, Map<String, TFloat32> overrides,
                              LoraLibrary.LowRankFeeds lowRank, String output) {
        return runUnet(x, t, ctx, ctxBias, added, height, width, overrides, lowRank, UNetNet.DeepCacheGraph.NONE,
                null, List.of(output), 0)[0];
    }

    /**
     * DeepCache's UNet calls (see {@link UNetNet.DeepCacheGraph}), otherwise as
     * {@link #unet(List, float[], List, float[][], List, int, int, Map, LoraLibrary.LowRankFeeds)}: with
     * {@code deep} null the whole UNet, returning {eps, deep features}; with {@code deep} (one cached feature per
     * sample, NHWC) only the shallow path, returning {eps}.
     */
    public synchronized float[][][] unetDeepCache(List<float[]> x, float[] t, List<float[]> ctx, float[][] ctxBias,
                                                  List<AddedConditioning> added, int height, int width,
                                                  Map<String, TFloat32> overrides, LoraLibrary.LowRankFeeds lowRank,
                                                  List<float[]> deep) {
        return unetDeepCache(x, t, ctx, ctxBias, added, height, width, overrides, lowRank, deep, 0);
    }

    /** {@link #unetDeepCache} with token merging at {@code tokenMerging} (0 = off) in either path. */
    public synchronized float[][][] unetDeepCache(List<float[]> x, float[] t, List<float[]> ctx, float[][] ctxBias,
                                                  List<AddedConditioning> added, int height, int width,
                                                  Map<String, TFloat32> overrides, LoraLibrary.LowRankFeeds lowRank,
                                                  List<float[]> deep, double tokenMerging) {
        return deep == null
                ? runUnet(x, t, ctx, ctxBias, added, height, width, overrides, lowRank, UNetNet.DeepCacheGraph.CAPTURE,
                null, List.of("eps", "deep"), tokenMerging)
                : runUnet(x, t, ctx, ctxBias, added, height, width, overrides, lowRank, UNetNet.DeepCacheGraph.SHALLOW,
                deep, List.of("eps"), tokenMerging);
    }

    /** Floats of one sample's DeepCache feature at a latent size. */
    public int deepFeatureSize(int height, int width) {
        return UNetNet.deepFeatureChannels(config.unet()) * height * width;
    }

    private float[][][] runUnet(List<float[]> x, float[] t, List<float[]> ctx, float[][] ctxBias,
                                List<AddedConditioning> added, int height, int width, Map<String, TFloat32> overrides,
                                LoraLibrary.LowRankFeeds lowRank, UNetNet.DeepCacheGraph variant, List<float[]> deep,
                                List<String> outputs, double tokenMerging) {
        int b = x.size();
        if (t.length != b || ctx.size() != b) {
            throw new IllegalArgumentException("batch of " + b + " latents, " + t.length + " timesteps, " + ctx.size() + " contexts");
        }
        var u = config.unet();
        int c = u.inChannels();
        int dim = u.crossAttentionDim();
        int tokens = ctx.get(0).length / dim;
        if (tokens * dim != ctx.get(0).length) {
            throw new IllegalArgumentException("context of " + ctx.get(0).length + " floats is not tokens × " + dim);
        }
        boolean masked = ctxBias != null;
        String dc = variant == UNetNet.DeepCacheGraph.NONE ? "" : "/deepcache-" + variant.name().toLowerCase(java.util.Locale.ROOT);
        // no transformer at full resolution (SDXL): nothing to merge, the graph without
        int merged = u.crossAttnDown().get(0) ? TokenMerge.merged(height, width, tokenMerging) : 0;
        int lanes = lowRank != null ? 1 // low-rank LoRA terms are fed per sample: plain graph
                : Lanes.forBatch(b, Lanes.unetWork(height, width, u.blockOutChannels().get(0)), Lanes.UNET_MIN_WORK);
        int rows = UNetNet.rowParts(u, height, width, lanes,
                lowRank == null && variant == UNetNet.DeepCacheGraph.NONE && merged == 0, compute != ComputeDType.FP32);
        TfGraph g = graph("unet/" + height + "x" + width + "/" + tokens + (masked ? "/masked" : "") + lowRankSuffix(lowRank) + dc
                        + (merged > 0 ? "/tome-" + merged : "") + lanesSuffix(lanes) + (rows > 1 ? "/rows" + rows : ""),
                bl -> {
                    hook(bl, lowRank);
                    UNetNet.build(bl, u, height, width, tokens, dim, masked, variant, merged > 0 ? tokenMerging : 0,
                            lanes, rows);
                });
        List<float[]> pooled = new java.util.ArrayList<>();
        List<float[]> ids = new java.util.ArrayList<>();
        if (u.hasAddedConditioning()) {
            if (added == null || added.size() != b || added.contains(null)) {
                throw new IllegalArgumentException("model " + name + " (" + config.familyName() + ") needs every sample's "
                        + "pooled text embedding and size conditioning");
            }
            for (AddedConditioning a : added) {
                pooled.add(a.pooled());
                ids.add(a.size().timeIds());
            }
        }
        Map<String, org.tensorflow.Tensor> in = new HashMap<>();
        try (TFloat32 xt = batch(x, c * height * width, b, c, height, width);
             TFloat32 tt = TFloat32.vectorOf(t);
             TFloat32 ct = batch(ctx, tokens * dim, b, tokens, dim);
             TFloat32 bt = masked ? batch(java.util.Arrays.asList(ctxBias), tokens, b, tokens) : null;
             TFloat32 pt = u.hasAddedConditioning() ? batch(pooled, u.pooledDim(), b, u.pooledDim()) : null;
             TFloat32 it = u.hasAddedConditioning() ? batch(ids, UNetConfig.TIME_IDS, b, UNetConfig.TIME_IDS) : null;
             TFloat32 dt = deep == null ? null : batch(deep, deepFeatureSize(height, width), b, height, width,
                     UNetNet.deepFeatureChannels(u))) {
            if (dt != null) {
                in.put("deep", dt);
            }
            in.put("x", xt);
            in.put("t", tt);
            in.put("ctx", ct);
            if (masked) {
                in.put("ctx_bias", bt);
            }
            if (pt != null) {
                in.put("text_embeds", pt);
                in.put("time_ids", it);
            }
            try (Result r = g.run(feeds(g, in, lowRank), outputs, overrides)) {
                float[][][] out = new float[outputs.size()][][];
                for (int i = 0; i < out.length; i++) {
                    out[i] = split((TFloat32) r.get(i), b);
                }
                return out;
            }
        }
    }

    private static String lowRankSuffix(LoraLibrary.LowRankFeeds lr) {
        if (lr == null || lr.keys().isEmpty()) {
            return "";
        }
        return "/lowrank-" + Integer.toHexString(String.join(",", lr.keys()).hashCode()) + "-" + lr.keys().size();
    }

    private static void hook(TfGraph.Builder bl, LoraLibrary.LowRankFeeds lr) {
        if (lr != null && !lr.keys().isEmpty()) {
            bl.nn.linearHook(new LowRank(bl, new java.util.TreeSet<>(lr.keys())));
        }
    }

    /**
     * The inputs plus the low-rank feeds {@code g} takes (a text graph that stops before the last layers, for a CLIP
     * skip or SDXL's penultimate state, has no inputs for those layers' LoRA modules).
     */
    private static Map<String, org.tensorflow.Tensor> feeds(TfGraph g, Map<String, ? extends org.tensorflow.Tensor> base,
                                                            LoraLibrary.LowRankFeeds lr) {
        Map<String, org.tensorflow.Tensor> m = new HashMap<>(base);
        if (lr != null) {
            lr.feeds().forEach((k, v) -> {
                if (g.hasInput(k)) {
                    m.put(k, v);
                }
            });
        }
        return m;
    }

    /** Graphs built so far, by key (tests, stats). */
    public synchronized java.util.Set<String> graphKeys() {
        return new java.util.TreeSet<>(graphs.keySet());
    }

    // ---------------------------------------------------------------- VAE

    /** Latents (as the sampler holds them, NCHW) → decoder output [B][3·H·W] NCHW in about [-1, 1]. */
    public synchronized float[][] decodeRaw(List<float[]> z, int latentH, int latentW) {
        return decode(z, latentH, latentW, "raw");
    }

    /** Latents → images [B][H·W·3] HWC in [0, 1]. */
    public synchronized float[][] decodeImage(List<float[]> z, int latentH, int latentW) {
        return decode(z, latentH, latentW, "image");
    }

    private float[][] decode(List<float[]> z, int lh, int lw, String out) {
        int lc = config.vae().latentChannels();
        int rows = VaeNet.rowParts(config.vae(), lh, lw, compute != ComputeDType.FP32);
        TfGraph g = graph("vae.dec/" + lh + "x" + lw + (rows > 1 ? "/rows" + rows : ""),
                bl -> VaeNet.buildDecoder(bl, config.vae(), lh, lw, rows));
        try (TFloat32 zt = batch(z, lc * lh * lw, z.size(), lc, lh, lw);
             Result r = g.run(Map.of("z", zt), List.of(out))) {
            return split((TFloat32) r.get(0), z.size());
        }
    }

    /** Latents → the decoder trunk's features at latent resolution [B][F·h·w] NCHW ({@link VaeNet#buildDecoderTrunk}). */
    public synchronized float[][] decoderFeatures(List<float[]> z, int lh, int lw) {
        int lc = config.vae().latentChannels();
        try (TFloat32 zt = batch(z, lc * lh * lw, z.size(), lc, lh, lw);
             Result r = trunk(lh, lw).run(Map.of("z", zt), List.of("features"))) {
            return split((TFloat32) r.get(0), z.size());
        }
    }

    /** Latents → RGB per latent cell [B][h·w·3] HWC in [0, 1]: the trunk's features through a fitted readout. */
    public synchronized float[][] decoderPreview(List<float[]> z, int lh, int lw, float[][] weights, float[] bias) {
        int lc = config.vae().latentChannels();
        try (TFloat32 zt = batch(z, lc * lh * lw, z.size(), lc, lh, lw);
             TFloat32 w = batch(java.util.Arrays.asList(weights), 3, weights.length, 3);
             TFloat32 bt = TFloat32.vectorOf(bias);
             Result r = trunk(lh, lw).run(Map.of("z", zt, "readout_w", w, "readout_b", bt), List.of("rgb"))) {
            return split((TFloat32) r.get(0), z.size());
        }
    }

    private TfGraph trunk(int lh, int lw) {
        return graph("vae.trunk/" + lh + "x" + lw, bl -> VaeNet.buildDecoderTrunk(bl, config.vae(), lh, lw));
    }

    /** Images [B][3·H·W] NCHW in [-1, 1] → scaled latent means [B][latent·h·w]. */
    public synchronized float[][] encodeImages(List<float[]> images, int height, int width) {
        int ic = config.vae().inChannels();
        TfGraph g = graph("vae.enc/" + height + "x" + width, bl -> VaeNet.buildEncoder(bl, config.vae(), height, width));
        try (TFloat32 it = batch(images, ic * height * width, images.size(), ic, height, width);
             Result r = g.run(Map.of("image", it), List.of("mean"))) {
            return split((TFloat32) r.get(0), images.size());
        }
    }

    /**
     * Images [B][3·H·W] NCHW in [-1, 1] → the VAE posterior of each, unscaled: {mean[B][latent·h·w],
     * std[B][latent·h·w]} (std = exp(clamp(logvar, −30, 20) / 2)).
     */
    public synchronized float[][][] encodePosterior(List<float[]> images, int height, int width) {
        int ic = config.vae().inChannels();
        TfGraph g = graph("vae.enc/" + height + "x" + width, bl -> VaeNet.buildEncoder(bl, config.vae(), height, width));
        try (TFloat32 it = batch(images, ic * height * width, images.size(), ic, height, width);
             Result r = g.run(Map.of("image", it), List.of("posterior_mean", "posterior_std"))) {
            return new float[][][]{split((TFloat32) r.get(0), images.size()), split((TFloat32) r.get(1), images.size())};
        }
    }

    // ---------------------------------------------------------------- tensors

    static TFloat32 batch(List<float[]> items, int size, int b, long... dims) {
        float[] flat = new float[b * size];
        for (int i = 0; i < b; i++) {
            float[] it = items.get(i);
            if (it.length != size) {
                throw new IllegalArgumentException("sample " + i + " has " + it.length + " floats, expected " + size);
            }
            System.arraycopy(it, 0, flat, i * size, size);
        }
        long[] shape = new long[dims.length + 1];
        shape[0] = b;
        System.arraycopy(dims, 0, shape, 1, dims.length);
        return TFloat32.tensorOf(Shape.of(shape), d -> d.copyFrom(DataBuffers.of(flat, true, false)));
    }

    static float[][] split(TFloat32 t, int b) {
        long n = t.shape().size();
        float[] all = new float[Math.toIntExact(n)];
        t.copyTo(DataBuffers.of(all, false, false));
        int per = all.length / b;
        float[][] out = new float[b][per];
        for (int i = 0; i < b; i++) {
            System.arraycopy(all, i * per, out[i], 0, per);
        }
        return out;
    }

    @Override
    public synchronized void close() {
        for (TfGraph g : graphs.values()) {
            g.close();
        }
        graphs.clear();
        weights.close();
    }

    @Override
    public String toString() {
        return "TfModel[" + name + ", " + weights + ", " + graphs.size() + " graphs]";
    }
}
