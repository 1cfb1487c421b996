package dev.sdserve.engine.tf;

import dev.sdserve.engine.AddedConditioning;
import dev.sdserve.engine.Conditioning;
import dev.sdserve.engine.DeepCache;
import dev.sdserve.engine.DenoiseBatch;
import dev.sdserve.engine.DenoiseItem;
import dev.sdserve.engine.EncodeItem;
import dev.sdserve.engine.Engine;
import dev.sdserve.engine.EngineStats;
import dev.sdserve.engine.LatentShape;
import dev.sdserve.engine.LoraWeight;
import dev.sdserve.engine.ModelInfo;
import dev.sdserve.job.ServeException;
import dev.sdserve.model.Checkpoint;
import dev.sdserve.model.ClipTokenizer;
import dev.sdserve.model.ModelConfig;
import dev.sdserve.model.ModelConfigs;
import dev.sdserve.prompt.Emphasis;
import dev.sdserve.prompt.PromptEncoder;
import org.tensorflow.types.TFloat32;
import dev.sdserve.model.TextEncoderConfig;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Function;

/**
 * The TensorFlow (graph mode, fp32, CPU) engine. Models are known by name → checkpoint path and loaded lazily on
 * first use; their architecture comes from {@code configOf} (e.g. detected from the checkpoint's shapes).
 * Classifier-free guidance doubles guided samples inside one UNet batch and combines
 * {@code eps_u + g·(eps_c − eps_u)} per item.
 *
 * <p>LoRA (per item, text encoder and UNet): a batch whose rows all share one LoRA set runs on merged weights
 * (an overlay W + Σ w·alpha/rank·up·down of the touched tensors, cached per (model, network, set), LRU of
 * {@code sdserve.lora.merged-cache} = 4); a batch mixing LoRA sets runs in ONE graph call on the unmerged low-rank
 * path ({@link LowRank}: x·Aᵀ·gate·Bᵀ per sample), unless a LoRA has 3×3 conv modules (then one merged call per set).
 * Rule chosen over a cost model because on the tiny model both paths cost about the same per call (see the report);
 * {@code sdserve.lora.path} = merged | low-rank forces one path. Resident models are LRU-evicted above
 * {@code memoryBudgetBytes}.
 */
public final class TfEngine implements Engine {
    /** How LoRAs run: AUTO (merged when the batch shares one LoRA set, else unmerged low-rank), or forced. */
    public enum LoraPath { AUTO, MERGED, LOW_RANK }

    private final Function<String, Path> resolver;
    private final Function<Path, ModelConfig> configOf;
    private final ClipTokenizer tokenizer;
    /** Prompt chunking and emphasis per (BOS, EOS, pad, positions) of a text tower; A1111's "Original" emphasis. */
    private final Map<List<Integer>, PromptEncoder> promptEncoders = new java.util.concurrent.ConcurrentHashMap<>();
    /** Resident models, least recently used first. */
    private final LinkedHashMap<String, TfModel> loaded = new LinkedHashMap<>(8, 0.75f, true);
    /** Architectures by model name, read lock-free (admission asks on transport threads while calls run). */
    private final Map<String, ModelConfig> configs = new java.util.concurrent.ConcurrentHashMap<>();
    private final EngineStats stats = new EngineStats();
    private final LoraLibrary loras;
    /** Merged LoRA overlays by model|network|set, least recently used first. */
    private final LinkedHashMap<String, Map<String, TFloat32>> merged = new LinkedHashMap<>(8, 0.75f, true);
    private volatile LoraPath loraPath = LoraPath.valueOf(System.getProperty("sdserve.lora.path", "AUTO")
            .toUpperCase(java.util.Locale.ROOT).replace('-', '_'));
    private volatile MixedContexts.Mode mixedContexts = MixedContexts.configured();
    private volatile long memoryBudgetBytes = Long.getLong("sdserve.memory-budget-mb", 0L) << 20;
    private long evictions;
    /** Pinned models: never evicted. */
    private final java.util.Set<String> pinned = java.util.concurrent.ConcurrentHashMap.newKeySet();
    /** One gate per model: concurrent loads of a model load it once. */
    private final Map<String, Object> loadGates = new java.util.concurrent.ConcurrentHashMap<>();
    /** Calls in progress per model instance, and instances evicted while in use (closed when released). */
    private final Map<TfModel, Integer> leases = new java.util.IdentityHashMap<>();
    private final java.util.Set<TfModel> retired = java.util.Collections.newSetFromMap(new java.util.IdentityHashMap<>());
    /** Resident models → their weights (bytes and kernel transforms read from them), readable without the engine
     * lock (which a UNet call holds). */
    private volatile Map<String, Weights> residentWeights = Map.of();
    private long lowRankCalls;
    private long mergedCalls;

    /** Models by name → single-file checkpoint; architectures read from the checkpoints (and config JSON beside). */
    public TfEngine(Map<String, Path> checkpoints) {
        this(checkpoints, null);
    }

    /**
     * @param checkpoints model name → single-file checkpoint
     * @param configOf    architecture of a checkpoint, or null to read it from the checkpoint's shapes
     */
    public TfEngine(Map<String, Path> checkpoints, Function<Path, ModelConfig> configOf) {
        this(checkpoints, configOf, null);
    }

    /**
     * @param checkpoints model name → single-file checkpoint
     * @param configOf    architecture of a checkpoint, or null to read it from the checkpoint's shapes
     * @param tokenizer   the BPE tokenizer of prompts, or null for the shipped CLIP vocabulary; prompts are read in
     *                    AUTOMATIC1111's syntax and chunks ({@link PromptEncoder}) with each model's BOS/EOS/pad ids
     */
    public TfEngine(Map<String, Path> checkpoints, Function<Path, ModelConfig> configOf, ClipTokenizer tokenizer) {
        this(mapResolver(new LinkedHashMap<>(checkpoints)), configOf, tokenizer, null);
    }

    /**
     * @param models    model name → checkpoint (throws ServeException NOT_FOUND / INVALID_ARGUMENT), e.g. a
     *                  {@link dev.sdserve.model.ModelRegistry}
     * @param loraSource where LoRAs come from, or null for an engine that refuses LoRAs
     */
    public TfEngine(Function<String, Path> models, Function<Path, ModelConfig> configOf, ClipTokenizer tokenizer,
                    LoraLibrary.Source loraSource) {
        this.resolver = models;
        this.configOf = configOf;
        this.tokenizer = tokenizer;
        this.loras = loraSource == null ? null : new LoraLibrary(loraSource);
    }

    private static Function<String, Path> mapResolver(Map<String, Path> m) {
        return name -> {
            Path p = m.get(name);
            if (p == null) {
                throw ServeException.notFound("unknown model '" + name + "' (known: " + m.keySet() + ")");
            }
            return p;
        };
    }

    public void loraPath(LoraPath p) {
        this.loraPath = p;
    }

    /** Resident-weight budget (0 = unlimited): loading a model evicts least recently used others above it. */
    public void memoryBudgetBytes(long bytes) {
        this.memoryBudgetBytes = bytes;
    }

    public synchronized List<String> resident() {
        return new ArrayList<>(loaded.keySet());
    }

    public synchronized long evictions() {
        return evictions;
    }

    /** Graph runs with LoRA on the unmerged low-rank path / on the merged path. */
    public synchronized long[] loraCalls() {
        return new long[]{lowRankCalls, mergedCalls};
    }

    public LoraLibrary loras() {
        return loras;
    }

    /** Bytes of weights (and their precomputed Winograd kernel transforms) held by resident models. */
    public synchronized long residentBytes() {
        return loaded.values().stream().mapToLong(m -> held(m.weights())).sum();
    }

    private static long held(Weights w) {
        return w.bytes() + w.transformBytes();
    }


    /**
     * The loaded model, loading it on first use (legacy lazy path for direct callers; the scheduler loads through
     * {@link #ensureLoaded} on its loader thread first); NOT_FOUND for an unknown name.
     */
    public TfModel model(String name) {
        for (int attempt = 0; ; attempt++) {
            synchronized (this) {
                TfModel m = loaded.get(name);
                if (m != null) {
                    return m;
                }
            }
            if (attempt > 3) {
                throw new ServeException(ServeException.Code.UNAVAILABLE, "model '" + name
                        + "' was evicted as soon as it was loaded: the memory budget is too small for the models in use");
            }
            ensureLoaded(name);
        }
    }

    /**
     * Loads a model if it is not resident. The weights load outside the engine's lock (other models' calls go
     * on meanwhile); concurrent loads of one model load it once. Afterwards least recently used unpinned models
     * are evicted above the memory budget (a model in use is closed when its call ends).
     */
    @Override
    public void ensureLoaded(String name) {
        Object gate = loadGates.computeIfAbsent(name, k -> new Object());
        synchronized (gate) {
            synchronized (this) {
                if (loaded.get(name) != null) { // get: refreshes its LRU place
                    return;
                }
            }
            Path p = resolver.apply(name);
            ModelConfig c = configOf == null ? null : config(name);
            TfModel m;
            try {
                m = c == null ? TfModel.load(name, p) : TfModel.load(name, p, c);
            } catch (IOException | RuntimeException e) {
                if (e instanceof ServeException se) {
                    throw se;
                }
                throw new ServeException(ServeException.Code.FAILED_PRECONDITION, "model '" + name + "' (" + p.getFileName()
                        + ") cannot be loaded: " + e.getMessage());
            }
            synchronized (this) {
                loaded.put(name, m);
                evictOver(name);
                publishResidency();
            }
        }
    }

    @Override
    public boolean isResident(String name) {
        return residentWeights.containsKey(name);
    }

    @Override
    public long residentBytes(String name) {
        Weights w = residentWeights.get(name);
        return w == null ? 0L : held(w);
    }

    @Override
    public void pin(String name, boolean pin) {
        resolver.apply(name); // NOT_FOUND for an unknown name
        if (pin) {
            pinned.add(name);
        } else {
            pinned.remove(name);
        }
    }

    @Override
    public boolean isPinned(String name) {
        return pinned.contains(name);
    }

    /** Load time predicted from the file size (about 400 MB/s of file on the 2-core machines) plus graph set-up. */
    @Override
    public double predictLoadMillis(String name) {
        try {
            return 200 + java.nio.file.Files.size(resolver.apply(name)) / 400e3;
        } catch (IOException | RuntimeException e) {
            return 200;
        }
    }

    /** Unloads a model (and its merged LoRA overlays; unpins it); false if it was not resident. */
    @Override
    public synchronized boolean unload(String name) {
        pinned.remove(name);
        TfModel m = loaded.remove(name);
        if (m == null) {
            return false;
        }
        dropOverlays(name);
        retire(m);
        publishResidency();
        return true;
    }

    /** The model for one call: it is not closed (by eviction or unload) before {@link #release}. */
    private TfModel lease(String name) {
        while (true) {
            TfModel m = model(name);
            synchronized (this) {
                if (loaded.get(name) == m) {
                    leases.merge(m, 1, Integer::sum);
                    return m;
                }
            }
        }
    }

    private synchronized void release(TfModel m) {
        if (leases.merge(m, -1, Integer::sum) <= 0) {
            leases.remove(m);
            if (retired.remove(m)) {
                m.close();
            }
        }
    }

    /** Closes a model taken out of {@link #loaded} now, or when its last call ends. Caller holds the lock. */
    private void retire(TfModel m) {
        if (leases.getOrDefault(m, 0) > 0) {
            retired.add(m);
        } else {
            m.close();
        }
    }

    private void publishResidency() {
        Map<String, Weights> m = new LinkedHashMap<>();
        for (var e : loaded.entrySet()) {
            m.put(e.getKey(), e.getValue().weights());
        }
        residentWeights = java.util.Collections.unmodifiableMap(m);
    }

    private void evictOver(String keep) {
        long budget = memoryBudgetBytes;
        if (budget <= 0) {
            return;
        }
        var it = loaded.entrySet().iterator();
        while (residentBytes() > budget && it.hasNext()) {
            var e = it.next();
            if (e.getKey().equals(keep) || pinned.contains(e.getKey())) {
                continue;
            }
            it.remove();
            dropOverlays(e.getKey());
            retire(e.getValue());
            evictions++;
        }
    }

    private void dropOverlays(String model) {
        var it = merged.entrySet().iterator();
        while (it.hasNext()) {
            var e = it.next();
            if (e.getKey().startsWith(model + "|")) {
                e.getValue().values().forEach(TFloat32::close);
                it.remove();
            }
        }
    }

    // ---------------------------------------------------------------- LoRA

    /** Runs rows of a batch with given weight overrides or low-rank feeds; returns one output per row. */
    @FunctionalInterface
    interface LoraRun<R> {
        List<R> run(int[] rows, Map<String, TFloat32> overrides, LoraLibrary.LowRankFeeds lowRank);
    }

    /** Graph runs with LoRA, one call where possible; see {@link LoraPath}. Returns outputs in row order. */
    synchronized <R> List<R> withLoras(String model, TfModel m, List<List<LoraWeight>> perRow, String prefix,
                                       LoraRun<R> run) {
        int n = perRow.size();
        int[] all = new int[n];
        for (int i = 0; i < n; i++) {
            all[i] = i;
        }
        List<String> keys = new ArrayList<>();
        for (List<LoraWeight> l : perRow) {
            keys.add(LoraLibrary.setKey(l));
        }
        if (keys.stream().allMatch(String::isEmpty)) {
            return run.run(all, Map.of(), null);
        }
        if (loras == null) {
            throw new ServeException(ServeException.Code.FAILED_PRECONDITION, "this engine has no LoRA directory configured");
        }
        List<List<LoraLibrary.Prepared>> prepared = new ArrayList<>();
        List<List<Double>> weights = new ArrayList<>();
        for (List<LoraWeight> l : perRow) {
            List<LoraLibrary.Prepared> ps = new ArrayList<>();
            List<Double> ws = new ArrayList<>();
            for (LoraWeight lw : l) {
                if (!Double.isFinite(lw.weight())) {
                    throw ServeException.invalid("lora", "LoRA '" + lw.name() + "' has a weight that is not a finite number");
                }
                ps.add(loras.get(lw.name(), m.config()));
                ws.add(lw.weight());
            }
            prepared.add(ps);
            weights.add(ws);
        }
        Map<String, List<Integer>> groups = new LinkedHashMap<>();
        for (int i = 0; i < n; i++) {
            groups.computeIfAbsent(keys.get(i), k -> new ArrayList<>()).add(i);
        }
        boolean conv3 = prepared.stream().flatMap(List::stream).anyMatch(LoraLibrary.Prepared::hasConv3x3);
        boolean lowRank = loraPath == LoraPath.LOW_RANK || (loraPath == LoraPath.AUTO && groups.size() > 1);
        if (lowRank && !conv3) {
            lowRankCalls++;
            try (LoraLibrary.LowRankFeeds f = LoraLibrary.lowRankFeeds(prepared, weights, prefix)) {
                return run.run(all, Map.of(), f);
            }
        }
        // merged: one call per LoRA set
        List<R> out = new ArrayList<>(java.util.Collections.nCopies(n, null));
        for (var g : groups.entrySet()) {
            int[] rows = Rows.of(g.getValue());
            Map<String, TFloat32> overlay = Map.of();
            if (!g.getKey().isEmpty()) {
                String ck = model + "|" + prefix + "|" + g.getKey();
                overlay = merged.get(ck);
                if (overlay == null) {
                    int r0 = rows[0];
                    overlay = LoraLibrary.merge(m.weights(), prepared.get(r0), weights.get(r0), prefix);
                    merged.put(ck, overlay);
                    while (merged.size() > Integer.getInteger("sdserve.lora.merged-cache", 4)) {
                        var it = merged.entrySet().iterator();
                        var e = it.next();
                        it.remove();
                        e.getValue().values().forEach(TFloat32::close);
                    }
                }
            }
            mergedCalls++;
            List<R> r = run.run(rows, overlay, null);
            for (int j = 0; j < rows.length; j++) {
                out.set(rows[j], r.get(j));
            }
        }
        return out;
    }


    /**
     * A model's architecture without loading its weights (the checkpoint header only). Takes no lock: a LoRA call
     * holds the engine's monitor for its whole run, and admission must not wait for it on an event loop.
     */
    public ModelConfig config(String name) {
        ModelConfig c = configs.get(name);
        if (c != null) {
            return c;
        }
        Path p = resolver.apply(name);
        if (configOf != null) {
            try {
                c = configOf.apply(p);
            } catch (RuntimeException e) {
                throw new ServeException(ServeException.Code.FAILED_PRECONDITION, "model '" + name + "' ("
                        + p.getFileName() + ") cannot be read: " + e.getMessage());
            }
        } else {
            try (Checkpoint ck = Checkpoint.open(p)) {
                c = ck.config();
            } catch (IOException | IllegalArgumentException e) {
                throw new ServeException(ServeException.Code.FAILED_PRECONDITION, "model '" + name + "' (" + p
                        + ") cannot be read: " + e.getMessage());
            }
        }
        ModelConfig first = configs.putIfAbsent(name, c);
        return first != null ? first : c;
    }

    @Override
    public ModelInfo describe(String model) {
        ModelConfig c = config(model);
        int scale = c.vae().downscale();
        return new ModelInfo(model, c.vae().latentChannels(), scale, c.textEncoder().maxPositions(),
                c.unet().crossAttentionDim(), c.vae().scalingFactor(), c.family(), c.unet().sampleSize() * scale,
                c.unet().inChannels(), c.unet().predictionType());
    }

    /**
     * Each prompt in A1111's syntax: weights, BREAK and 75-token chunks ({@link PromptEncoder}); every chunk row of
     * the batch goes through the text encoder in one call (with its item's CLIP skip and LoRAs), so a prompt of k
     * chunks comes back as a context of 77·k tokens.
     */
    @Override
    public float[][] encode(String model, List<EncodeItem> items) {
        return encodeConditioning(model, items).stream().map(Conditioning::context).toArray(float[][]::new);
    }

    /**
     * SD 1.x prompts in A1111's syntax (see {@link #encode}); one context per item.
     */
    private float[][] encodeSd1(String model, List<EncodeItem> items) {
        // one plan group per distinct (group, CLIP skip, LoRAs): the texts of a schedule are encoded once
        Map<List<Object>, Integer> index = new LinkedHashMap<>();
        List<List<String>> groups = new ArrayList<>();
        List<EncodeItem> settings = new ArrayList<>();
        int[] groupOf = new int[items.size()];
        for (int i = 0; i < items.size(); i++) {
            EncodeItem it = items.get(i);
            List<String> texts = it.group().stream().map(dev.sdserve.prompt.ExtraNetworks::strip).toList();
            groupOf[i] = index.computeIfAbsent(List.of(texts, it.clipSkip(), LoraLibrary.setKey(it.loras())), k -> {
                groups.add(texts);
                settings.add(it);
                return groups.size() - 1;
            });
        }
        List<List<float[]>> out = encodeGroups(model, groups, settings);
        float[][] r = new float[items.size()][];
        for (int i = 0; i < r.length; i++) {
            EncodeItem it = items.get(i);
            r[i] = out.get(groupOf[i]).get(it.group().indexOf(it.prompt() == null ? "" : it.prompt()));
        }
        return r;
    }

    /**
     * Groups of texts, each encoded together (A1111's schedule batch, see {@link PromptEncoder}) with the CLIP skip
     * and LoRAs of {@code settings.get(g)} (its prompt is not used).
     */
    List<List<float[]>> encodeGroups(String model, List<List<String>> groups, List<EncodeItem> settings) {
        return encodeGroups(model, promptEncoder(model(model).config().textEncoder()), groups, settings);
    }

    /** As {@link #encodeGroups(String, List, List)} with given chunking and emphasis settings. */
    List<List<float[]>> encodeGroups(String model, PromptEncoder encoder, List<List<String>> groups, List<EncodeItem> settings) {
        PromptEncoder.Plan plan;
        try {
            plan = encoder.plan(groups);
        } catch (IllegalArgumentException e) {
            throw ServeException.invalid("prompt", e.getMessage());
        }
        int[] group = plan.rowGroup();
        int[] skips = new int[group.length];
        List<List<LoraWeight>> rowLoras = new ArrayList<>();
        for (int i = 0; i < group.length; i++) {
            skips[i] = settings.get(group[i]).clipSkip();
            rowLoras.add(settings.get(group[i]).loras());
        }
        return plan.finish(encodeTokens(model, plan.rows(), skips, rowLoras));
    }

    PromptEncoder promptEncoder(TextEncoderConfig te) {
        return promptEncoders.computeIfAbsent(List.of(te.bosToken(), te.eosToken(), te.padToken(), te.maxPositions()),
                k -> PromptEncoder.forClip(tokenizer == null ? ClipTokenizer.get() : tokenizer, te.bosToken(),
                        te.eosToken(), te.padToken(), te.maxPositions(), Emphasis.ORIGINAL));
    }

    /** The family's conditioning ({@link TextConditioner}) of every item: context and, for SDXL, pooled embedding. */
    @Override
    public List<Conditioning> encodeConditioning(String model, List<EncodeItem> items) {
        if (ModelConfig.SD1.equals(config(model).family())) {
            // SD 1.x: A1111's prompt syntax (weights, BREAK, 75-token chunks, schedules' groups)
            return java.util.Arrays.stream(encodeSd1(model, items)).map(Conditioning::of).toList();
        }
        // SD 2.x and SDXL: each prompt's family conditioning (extra-network tags dropped)
        items = items.stream().map(it -> new EncodeItem(dev.sdserve.prompt.ExtraNetworks.strip(it.prompt()),
                it.clipSkip(), it.loras(), it.negative())).toList();
        TfModel m = lease(model); // before the engine lock: a load waits for the lock, never the other way round
        try {
            synchronized (this) {
                List<Conditioning> out = TextConditioner.of(m.config()).encode(towers(model, m), items);
                stats.recordEncode(items.size());
                return out;
            }
        } finally {
            release(m);
        }
    }

    /** Text-encodes token ids directly with the first tower (tests, conformance); one CLIP skip per row. */
    float[][] encodeTokens(String model, int[][] ids, int[] clipSkips) {
        return encodeTokens(model, ids, clipSkips, java.util.Collections.nCopies(ids.length, List.of()));
    }

    /** As {@link #encodeTokens(String, int[][], int[])} with each row's LoRAs (their text-encoder part). */
    float[][] encodeTokens(String model, int[][] ids, int[] clipSkips, List<List<LoraWeight>> rowLoras) {
        float[][] out = new float[ids.length][];
        for (int i = 0; i < ids.length; i++) {
            if (clipSkips[i] < 1) {
                throw ServeException.invalid("clip_skip", "must be at least 1, got " + clipSkips[i]);
            }
        }
        Map<Integer, List<Integer>> bySkip = new LinkedHashMap<>();
        for (int i = 0; i < ids.length; i++) {
            bySkip.computeIfAbsent(clipSkips[i], k -> new ArrayList<>()).add(i);
        }
        for (var e : bySkip.entrySet()) {
            int[] rows = Rows.of(e.getValue());
            float[][] r = encodeTower(model, 0, Rows.pick(ids, rows), ClipTextNet.Request.clipSkip(e.getKey()),
                    Rows.pick(rowLoras, rows)).hidden();
            for (int j = 0; j < rows.length; j++) {
                out[rows[j]] = r[j];
            }
        }
        return out;
    }

    /**
     * One text tower of a model on a batch of token ids (each row with its LoRAs): the requested hidden state and,
     * if asked, the pooled embedding. For prompt processing that needs the towers themselves (chunked prompts).
     */
    public TfModel.Encoded encodeTower(String model, int tower, int[][] ids, ClipTextNet.Request request,
                                       List<List<LoraWeight>> rowLoras) {
        TfModel m = lease(model);
        try {
            synchronized (this) {
                TfModel.Encoded r = towers(model, m).run(tower, ids, request, rowLoras);
                stats.recordEncode(ids.length);
                return r;
            }
        } finally {
            release(m);
        }
    }

    /** The model's towers as {@link TextConditioner} uses them: tokenizer per tower, LoRAs per row (by tower prefix). */
    private TextConditioner.Towers towers(String model, TfModel m) {
        ClipTokenizer clip = tokenizer == null ? ClipTokenizer.get() : tokenizer;
        return new TextConditioner.Towers() {
            @Override
            public TextEncoderConfig tower(int t) {
                return m.config().textEncoders().get(t);
            }

            @Override
            public int[] tokenize(int t, String prompt) {
                TextEncoderConfig te = tower(t);
                return clip.tokenize(prompt, te);
            }

            @Override
            public TfModel.Encoded run(int t, int[][] ids, ClipTextNet.Request req, List<List<LoraWeight>> rowLoras) {
                TextEncoderConfig te = tower(t);
                if (req.fromEnd() < 1 || req.fromEnd() > te.layers()) {
                    throw ServeException.invalid("clip_skip", "must be 1.." + te.layers() + ", got " + req.fromEnd());
                }
                // one {hidden, pooled} pair per row (pooled null unless asked for)
                List<float[][]> rows = withLoras(model, m, rowLoras, te.prefix(), (sel, ov, lr) -> {
                    TfModel.Encoded e = m.encodeTower(t, Rows.pick(ids, sel), req, ov, lr);
                    List<float[][]> out = new ArrayList<>(sel.length);
                    for (int j = 0; j < sel.length; j++) {
                        out.add(new float[][]{e.hidden()[j], e.pooled() == null ? null : e.pooled()[j]});
                    }
                    return out;
                });
                return new TfModel.Encoded(rows.stream().map(r -> r[0]).toArray(float[][]::new),
                        req.pooled() ? rows.stream().map(r -> r[1]).toArray(float[][]::new) : null);
            }
        };
    }

    @Override
    public float[][] denoise(DenoiseBatch batch) {
        TfModel m = lease(batch.model());
        try {
            return denoise(batch, m, null);
        } finally {
            release(m);
        }
    }

    @Override
    public float[][] denoise(DenoiseBatch batch, List<DeepCache.Step> steps) {
        if (!DeepCache.any(steps)) {
            return denoise(batch);
        }
        if (steps.size() != batch.items().size()) {
            throw new IllegalArgumentException(steps.size() + " DeepCache steps for " + batch.items().size() + " items");
        }
        TfModel m = lease(batch.model());
        try {
            return denoise(batch, m, steps);
        } finally {
            release(m);
        }
    }

    private float[][] denoise(DenoiseBatch batch, TfModel m, List<DeepCache.Step> steps) {
        Map<Double, List<Integer>> byRatio = byTokenMerging(batch.items());
        if (byRatio.size() > 1) { // one UNet graph per token merging ratio: one call per ratio
            float[][] out = new float[batch.items().size()][];
            for (List<Integer> group : byRatio.values()) {
                int[] rows = Rows.of(group);
                float[][] r = denoise(new DenoiseBatch(batch.model(), batch.shape(), Rows.pick(batch.items(), rows)), m,
                        Rows.pick(steps, rows));
                for (int j = 0; j < rows.length; j++) {
                    out[rows[j]] = r[j];
                }
            }
            return out;
        }
        LatentShape s = batch.shape();
        int latentChannels = m.config().vae().latentChannels();
        int unetChannels = m.config().unet().inChannels();
        if (s.channels() != latentChannels) {
            throw ServeException.invalid("latent", "model '" + batch.model() + "' takes " + latentChannels
                    + " latent channels, got " + s.channels());
        }
        List<DenoiseItem> items = batch.items();
        List<float[]> inputs = new ArrayList<>(items.size());
        int extra = (unetChannels - latentChannels) * s.height() * s.width();
        for (DenoiseItem it : items) {
            inputs.add(unetInput(batch.model(), it, extra));
        }
        List<float[]> xs = new ArrayList<>();
        List<float[]> ctx = new ArrayList<>();
        List<AddedConditioning> added = new ArrayList<>();
        boolean xl = m.config().unet().hasAddedConditioning();
        float[] ts = new float[batch.unetSamples()];
        int[] uncondIndex = new int[items.size()];
        int n = 0;
        List<List<LoraWeight>> rowLoras = new ArrayList<>();
        for (int i = 0; i < items.size(); i++) {
            DenoiseItem it = items.get(i);
            if (xl && (it.added() == null || (it.guided() && it.guidance() != 1.0 && it.addedUncond() == null))) {
                throw ServeException.invalid("conditioning", "model '" + batch.model() + "' (" + m.config().familyName()
                        + ") needs the pooled text embedding and size conditioning of every sample");
            }
            rowLoras.add(it.loras());
            xs.add(inputs.get(i));
            ctx.add(it.cond());
            added.add(it.added());
            ts[n++] = (float) it.timestep();
        }
        for (int i = 0; i < items.size(); i++) {
            DenoiseItem it = items.get(i);
            uncondIndex[i] = -1;
            if (it.guided() && it.guidance() != 1.0) {
                uncondIndex[i] = n;
                rowLoras.add(it.loras());
                xs.add(inputs.get(i));
                ctx.add(it.uncond());
                added.add(it.addedUncond());
                ts[n++] = (float) it.timestep();
            }
        }
        double merge = items.isEmpty() ? 0 : items.get(0).tokenMerging();
        float[][] eps = steps == null
                ? unetRows(batch.model(), m, xs, ts, ctx, xl ? added : null, rowLoras, s, merge)
                : deepCacheRows(batch.model(), m, xs, ts, ctx, xl ? added : null, rowLoras, s, steps, uncondIndex, merge);
        float[][] out = new float[items.size()][];
        for (int i = 0; i < items.size(); i++) {
            if (uncondIndex[i] < 0) {
                out[i] = eps[i];
            } else {
                out[i] = guide(eps[uncondIndex[i]], eps[i], items.get(i).guidance());
            }
        }
        stats.recordDenoise(batch);
        return out;
    }

    /** Item indices by token merging ratio, in order of first appearance. */
    private static Map<Double, List<Integer>> byTokenMerging(List<DenoiseItem> items) {
        Map<Double, List<Integer>> m = new java.util.LinkedHashMap<>();
        for (int i = 0; i < items.size(); i++) {
            m.computeIfAbsent(items.get(i).tokenMerging(), k -> new ArrayList<>()).add(i);
        }
        return m;
    }

    /**
     * The UNet on rows (conditional and unconditional samples alike) whose contexts may differ in length
     * ({@link MixedContexts}): padded and masked in one call, or one call per length, with token merging at
     * {@code merge} (0 = off).
     */
    private float[][] unetRows(String model, TfModel m, List<float[]> xs, float[] ts, List<float[]> ctx,
                               List<AddedConditioning> added, List<List<LoraWeight>> rowLoras, LatentShape s,
                               double merge) {
        return unetRows(model, m, xs, ts, ctx, added, rowLoras, s, UNetNet.DeepCacheGraph.NONE, null, merge).stream()
                .map(UnetRow::eps).toArray(float[][]::new);
    }

    /** One row's UNet output: its prediction and, from a CAPTURE call, its deep feature (otherwise null). */
    private record UnetRow(float[] eps, float[] deep) {
    }

    /**
     * DeepCache rows: item {@code i}'s prompt row is row {@code i}, its negative's {@code uncondIndex[i]} (or −1).
     * Items whose step is shallow (and whose slot holds a feature for each of their rows) run the shallow path in
     * one call; the others run the whole UNet in another, which also gives the features that refill the slots of
     * the items with a full DeepCache step. Plain items (null step) ride in the full call; the deep output is
     * an extra fetch of the same graph, their predictions are what a plain call gives.
     */
    private float[][] deepCacheRows(String model, TfModel m, List<float[]> xs, float[] ts, List<float[]> ctx,
                                    List<AddedConditioning> added, List<List<LoraWeight>> rowLoras, LatentShape s,
                                    List<DeepCache.Step> steps, int[] uncondIndex, double merge) {
        int rows = xs.size();
        float[][] rowFeature = new float[rows][];
        DeepCache.Slot[] refill = new DeepCache.Slot[steps.size()];
        for (int i = 0; i < steps.size(); i++) {
            DeepCache.Step st = steps.get(i);
            int need = uncondIndex[i] < 0 ? 1 : 2;
            if (st != null && st.shallow() && st.slot().covers(need)) {
                float[][] f = st.slot().rows();
                rowFeature[i] = f[0];
                if (uncondIndex[i] >= 0) {
                    rowFeature[uncondIndex[i]] = f[1];
                }
            } else if (st != null) {
                refill[i] = st.slot();
            }
        }
        List<Integer> shallow = new ArrayList<>();
        List<Integer> full = new ArrayList<>();
        for (int r = 0; r < rows; r++) {
            (rowFeature[r] != null ? shallow : full).add(r);
        }
        float[][] eps = new float[rows][];
        float[][] deep = new float[rows][];
        boolean capture = java.util.Arrays.stream(refill).anyMatch(java.util.Objects::nonNull);
        for (int pass = 0; pass < 2; pass++) {
            int[] sel = Rows.of(pass == 0 ? full : shallow);
            if (sel.length == 0) {
                continue;
            }
            UNetNet.DeepCacheGraph variant = pass == 1 ? UNetNet.DeepCacheGraph.SHALLOW
                    : capture ? UNetNet.DeepCacheGraph.CAPTURE : UNetNet.DeepCacheGraph.NONE;
            List<UnetRow> got = unetRows(model, m, Rows.pick(xs, sel), Rows.pick(ts, sel), Rows.pick(ctx, sel),
                    Rows.pick(added, sel), Rows.pick(rowLoras, sel), s, variant,
                    pass == 1 ? Rows.pick(java.util.Arrays.asList(rowFeature), sel) : null, merge);
            for (int j = 0; j < sel.length; j++) {
                eps[sel[j]] = got.get(j).eps();
                deep[sel[j]] = got.get(j).deep();
            }
        }
        for (int i = 0; i < refill.length; i++) {
            if (refill[i] != null) {
                refill[i].set(uncondIndex[i] < 0 ? new float[][]{deep[i]} : new float[][]{deep[i], deep[uncondIndex[i]]});
            }
        }
        return eps;
    }

    /**
     * {@link #unetRows(String, TfModel, List, float[], List, List, List, LatentShape, double)} in a DeepCache variant:
     * CAPTURE also returns each row's deep feature; SHALLOW takes {@code deep}, one per row.
     */
    private List<UnetRow> unetRows(String model, TfModel m, List<float[]> xs, float[] ts, List<float[]> ctx,
                                   List<AddedConditioning> added, List<List<LoraWeight>> rowLoras, LatentShape s,
                                   UNetNet.DeepCacheGraph variant, List<float[]> deep, double merge) {
        boolean mixed = MixedContexts.mixed(ctx);
        if (mixed && mixedContexts == MixedContexts.Mode.GROUP) {
            List<UnetRow> out = new ArrayList<>(java.util.Collections.nCopies(xs.size(), null));
            for (List<Integer> group : MixedContexts.byLength(ctx).values()) {
                int[] rows = Rows.of(group);
                List<UnetRow> r = unetRows(model, m, Rows.pick(xs, rows), Rows.pick(ts, rows), Rows.pick(ctx, rows),
                        Rows.pick(added, rows), Rows.pick(rowLoras, rows), s, variant, Rows.pick(deep, rows), merge);
                for (int j = 0; j < rows.length; j++) {
                    out.set(rows[j], r.get(j));
                }
            }
            return out;
        }
        MixedContexts.Padded padded = mixed ? MixedContexts.pad(ctx, m.config().unet().crossAttentionDim()) : null;
        List<float[]> cs = mixed ? padded.ctx() : ctx;
        float[][] bias = mixed ? padded.bias() : null;
        return withLoras(model, m, rowLoras, ModelConfigs.UNET, (sel, ov, lr) -> sel.length == xs.size()
                ? unetCall(m, xs, ts, cs, bias, added, s, ov, lr, variant, deep, merge)
                : unetCall(m, Rows.pick(xs, sel), Rows.pick(ts, sel), Rows.pick(cs, sel), Rows.pick(bias, sel),
                        Rows.pick(added, sel), s, ov, lr, variant, Rows.pick(deep, sel), merge));
    }

    /**
     * One UNet call in a DeepCache variant (NONE: the plain call) with token merging at {@code merge} (0 = off);
     * only CAPTURE rows carry a deep feature.
     */
    private static List<UnetRow> unetCall(TfModel m, List<float[]> xs, float[] ts, List<float[]> ctx, float[][] bias,
                                          List<AddedConditioning> added, LatentShape s, Map<String, TFloat32> ov,
                                          LoraLibrary.LowRankFeeds lr, UNetNet.DeepCacheGraph variant,
                                          List<float[]> deep, double merge) {
        float[][][] r = variant == UNetNet.DeepCacheGraph.NONE
                ? new float[][][]{m.unet(xs, ts, ctx, bias, added, s.height(), s.width(), ov, lr, merge)}
                : m.unetDeepCache(xs, ts, ctx, bias, added, s.height(), s.width(), ov, lr,
                        variant == UNetNet.DeepCacheGraph.SHALLOW ? deep : null, merge);
        List<UnetRow> rows = new ArrayList<>(xs.size());
        for (int j = 0; j < xs.size(); j++) {
            rows.add(new UnetRow(r[0][j], variant == UNetNet.DeepCacheGraph.CAPTURE ? r[1][j] : null));
        }
        return rows;
    }

    /** How batches with contexts of different lengths run (see {@link MixedContexts}). */
    public void mixedContexts(String mode) {
        this.mixedContexts = MixedContexts.Mode.valueOf(mode.toUpperCase(java.util.Locale.ROOT));
    }

    /**
     * The UNet input of an item: its latent input, then its extra channels (an inpainting UNet's mask and
     * masked-image latent) when the UNet takes more channels than the latent has.
     */
    private static float[] unetInput(String model, DenoiseItem it, int extra) {
        float[] e = it.extraChannels();
        if (extra == 0) {
            if (e != null && e.length > 0) {
                throw ServeException.invalid("mask", "model '" + model + "' is not an inpainting model: its UNet takes"
                        + " no mask or masked-image channels");
            }
            return it.latentInput();
        }
        if (e == null || e.length != extra) {
            throw ServeException.invalid("mask", "model '" + model + "' is an inpainting model: its UNet needs "
                    + extra + " extra input values per sample (mask and masked-image latent), got "
                    + (e == null ? "none" : String.valueOf(e.length)));
        }
        float[] x = it.latentInput();
        float[] all = new float[x.length + e.length];
        System.arraycopy(x, 0, all, 0, x.length);
        System.arraycopy(e, 0, all, x.length, e.length);
        return all;
    }

    /** eps_u + g·(eps_c − eps_u), in float32 as diffusers computes it. */
    static float[] guide(float[] uncond, float[] cond, double guidance) {
        float g = (float) guidance;
        float[] r = new float[cond.length];
        for (int k = 0; k < r.length; k++) {
            r[k] = uncond[k] + g * (cond[k] - uncond[k]);
        }
        return r;
    }

    @Override
    public float[][] decode(String model, LatentShape shape, List<float[]> latents) {
        TfModel m = lease(model);
        try {
            float[][] r = m.decodeImage(latents, shape.height(), shape.width());
            stats.recordDecode(latents.size());
            return r;
        } finally {
            release(m);
        }
    }

    @Override
    public float[][] decoderFeatures(String model, LatentShape shape, List<float[]> latents) {
        TfModel m = lease(model);
        try {
            return m.decoderFeatures(latents, shape.height(), shape.width());
        } finally {
            release(m);
        }
    }

    @Override
    public float[][] decoderPreview(String model, LatentShape shape, List<float[]> latents,
                                    dev.sdserve.engine.projection.LatentProjection readout) {
        TfModel m = lease(model);
        try {
            return m.decoderPreview(latents, shape.height(), shape.width(), readout.weights(), readout.bias());
        } finally {
            release(m);
        }
    }

    @Override
    public float[][] encodeImage(String model, LatentShape shape, List<float[]> images) {
        TfModel m = lease(model);
        try {
            return encodeImage(m, shape, images);
        } finally {
            release(m);
        }
    }

    @Override
    public float[][] encodeImage(String model, LatentShape shape, List<float[]> images, List<float[]> noise) {
        if (noise.size() != images.size()) {
            throw new IllegalArgumentException(images.size() + " images, " + noise.size() + " noise draws");
        }
        TfModel m = lease(model);
        try {
            List<float[]> nchw = toNchw(m, shape, images);
            int scale = m.config().vae().downscale();
            float[][][] post = m.encodePosterior(nchw, shape.height() * scale, shape.width() * scale);
            float f = (float) m.config().vae().scalingFactor();
            float[][] out = new float[images.size()][];
            for (int i = 0; i < out.length; i++) {
                float[] mean = post[0][i], std = post[1][i], eps = noise.get(i);
                if (eps != null && eps.length != mean.length) {
                    throw new IllegalArgumentException("noise of " + eps.length + " floats for a latent of " + mean.length);
                }
                float[] z = new float[mean.length];
                for (int k = 0; k < z.length; k++) {
                    z[k] = (eps == null ? mean[k] : mean[k] + std[k] * eps[k]) * f;
                }
                out[i] = z;
            }
            stats.recordImageEncode(images.size());
            return out;
        } finally {
            release(m);
        }
    }

    private float[][] encodeImage(TfModel m, LatentShape shape, List<float[]> images) {
        int scale = m.config().vae().downscale();
        return m.encodeImages(toNchw(m, shape, images), shape.height() * scale, shape.width() * scale);
    }

    /** HWC images in [0, 1] at the shape's pixel size → NCHW in [-1, 1]. */
    private static List<float[]> toNchw(TfModel m, LatentShape shape, List<float[]> images) {
        int scale = m.config().vae().downscale();
        int h = shape.height() * scale, w = shape.width() * scale;
        int c = m.config().vae().inChannels();
        List<float[]> nchw = new ArrayList<>();
        for (float[] img : images) {
            if (img.length != h * w * c) {
                throw ServeException.invalid("image", "expected " + h + "x" + w + "x" + c + " floats, got " + img.length);
            }
            float[] x = new float[img.length];
            for (int y = 0; y < h; y++) {
                for (int xx = 0; xx < w; xx++) {
                    for (int ch = 0; ch < c; ch++) {
                        x[(ch * h + y) * w + xx] = img[(y * w + xx) * c + ch] * 2f - 1f;
                    }
                }
            }
            nchw.add(x);
        }
        return nchw;
    }


    @Override
    public EngineStats stats() {
        return stats;
    }

    @Override
    public synchronized void close() {
        for (Map<String, TFloat32> o : merged.values()) {
            o.values().forEach(TFloat32::close);
        }
        merged.clear();
        for (TfModel m : loaded.values()) {
            m.close();
        }
        loaded.clear();
        retired.forEach(TfModel::close);
        retired.clear();
        publishResidency();
    }
}
