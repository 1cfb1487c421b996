package dev.sdserve.model;

import com.fasterxml.jackson.databind.JsonNode;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * A civitai-style single-file checkpoint (safetensors; SD 1.x / SD 2.x in the LDM key layout, SDXL base in the SGM
 * layout; fp32/fp16/bf16 storage), validated on open: family and architecture read from the names and shapes
 * ({@link ModelDetection}, {@link ModelConfigs}; plus the config JSON and the {@code .yaml} beside the file, if any),
 * and every tensor the networks need present with the shape that architecture implies. Other tensors (EMA copies,
 * position ids, schedule buffers, anything else) are ignored. Thread-safe for reads.
 */
public final class Checkpoint implements AutoCloseable {
    /** The networks of a checkpoint (TEXT_ENCODER: every text tower). */
    public enum Network { TEXT_ENCODER, UNET, VAE }

    private final SafeTensors file;
    private final ModelConfig config;
    private final Optional<Path> configFile;
    private final Map<Network, List<String>> keys;
    private final DType storage;
    private final Map<String, String> aliases;
    private final String predictionSource;

    private Checkpoint(SafeTensors file, ModelConfig config, Optional<Path> configFile,
                       Map<Network, List<String>> keys, DType storage, Map<String, String> aliases,
                       String predictionSource) {
        this.aliases = aliases;
        this.predictionSource = predictionSource;
        this.file = file;
        this.config = config;
        this.configFile = configFile;
        this.keys = keys;
        this.storage = storage;
    }

    /** Opens {@code path}, reading a config JSON beside it if one is there ({@link ModelConfigs#configFileFor}). */
    public static Checkpoint open(Path path) throws IOException {
        Optional<Path> cfgFile = ModelConfigs.configFileFor(path);
        JsonNode cfg = cfgFile.isPresent() ? ModelConfigs.readJson(cfgFile.get()) : null;
        return open(path, cfg, cfgFile, PredictionType.setting(path));
    }

    /** Opens {@code path} with the given config JSON (may be null: SD 1.x conventions). */
    public static Checkpoint open(Path path, JsonNode configJson) throws IOException {
        return open(path, configJson, Optional.empty());
    }

    private static Checkpoint open(Path path, JsonNode configJson, Optional<Path> cfgFile) throws IOException {
        return open(path, configJson, cfgFile, null);
    }

    /**
     * Opens {@code path} (config JSON beside it read as by {@link #open(Path)}) with a per-model prediction type
     * ({@code epsilon} / {@code v_prediction}; null: from the files, see {@link PredictionType}).
     */
    public static Checkpoint openAs(Path path, String predictionType) throws IOException {
        Optional<Path> cfgFile = ModelConfigs.configFileFor(path);
        JsonNode cfg = cfgFile.isPresent() ? ModelConfigs.readJson(cfgFile.get()) : null;
        return open(path, cfg, cfgFile, predictionType);
    }

    private static Checkpoint open(Path path, JsonNode configJson, Optional<Path> cfgFile, String prediction)
            throws IOException {
        SafeTensors st = SafeTensors.open(path);
        try {
            Map<String, String> aliases = new LinkedHashMap<>();
            Map<String, long[]> shapes = canonicalShapes(st, aliases);
            String name = path.getFileName().toString();
            ModelDetection.Result d = ModelDetection.detect(shapes.keySet());
            if (!d.ok()) {
                throw new CheckpointException("checkpoint " + name + " is not a supported checkpoint: " + d.refusal());
            }
            String family = ModelConfig.displayName(d.family());
            ModelConfig cfg;
            String predictionSource;
            try {
                cfg = ModelConfigs.fromShapes(d.family(), shapes, configJson);
                predictionSource = PredictionType.fromJson(configJson).isPresent() ? "config JSON"
                        : shapes.containsKey(PredictionType.V_PRED_KEY) ? "v_pred key" : family + " default";
                Optional<Path> yaml = PredictionType.yamlFor(path);
                if (prediction != null) {
                    cfg = ModelConfigs.withPredictionType(cfg, prediction, configJson);
                    predictionSource = "model setting";
                } else if (yaml.isPresent() && PredictionType.fromJson(configJson).isEmpty()) {
                    String fromYaml;
                    try {
                        fromYaml = PredictionType.fromYaml(yaml.get());
                    } catch (IOException e) {
                        throw new CheckpointException("checkpoint " + name + ": " + e.getMessage(), e);
                    }
                    cfg = ModelConfigs.withPredictionType(cfg, fromYaml, configJson);
                    predictionSource = yaml.get().getFileName().toString();
                }
            } catch (IllegalArgumentException e) {
                throw new CheckpointException("checkpoint " + name + ": cannot read the " + family + " architecture: "
                        + e.getMessage(), e);
            }
            Map<Network, List<String>> keys = new LinkedHashMap<>();
            List<String> text = new ArrayList<>();
            for (TextEncoderConfig t : cfg.textEncoders()) {
                text.addAll(names(CheckpointLayout.tower(t, DType.F32, cfg.sdxl()).stream()
                        .filter(e -> !CheckpointLayout.isExtra(e.name())).toList()));
            }
            keys.put(Network.TEXT_ENCODER, List.copyOf(text));
            keys.put(Network.UNET, names(CheckpointLayout.unet(cfg.unet(), DType.F32)));
            keys.put(Network.VAE, names(CheckpointLayout.vae(cfg.vae(), DType.F32)));
            List<String> missing = new ArrayList<>();
            List<String> wrong = new ArrayList<>();
            Map<DType, Integer> dtypes = new LinkedHashMap<>();
            for (CheckpointLayout.Entry e : CheckpointLayout.weights(cfg, DType.F32)) {
                SafeTensors.TensorInfo t = st.tensors().get(aliases.getOrDefault(e.name(), e.name()));
                if (t == null) {
                    missing.add(e.name());
                } else if (!Arrays.equals(t.shape(), e.shape()) && !sameAs1x1(t.shape(), e.shape())) {
                    wrong.add(e.name() + " is " + Arrays.toString(t.shape()) + ", expected " + Arrays.toString(e.shape()));
                } else if (!t.dtype().floating()) {
                    wrong.add(e.name() + " is " + t.dtype() + ", not a float type");
                } else {
                    dtypes.merge(t.dtype(), 1, Integer::sum);
                }
            }
            if (!missing.isEmpty()) {
                throw new CheckpointException("checkpoint " + name + " lacks " + missing.size() + " tensor"
                        + (missing.size() == 1 ? "" : "s") + " of its " + family + " architecture: " + limit(missing));
            }
            if (!wrong.isEmpty()) {
                throw new CheckpointException("checkpoint " + name + " has " + wrong.size() + " tensor"
                        + (wrong.size() == 1 ? "" : "s") + " of the wrong shape or type: " + limit(wrong));
            }
            DType storage = dtypes.entrySet().stream().max(Map.Entry.comparingByValue()).map(Map.Entry::getKey)
                    .orElse(DType.F32);
            return new Checkpoint(st, cfg, cfgFile, Collections.unmodifiableMap(keys), storage,
                    Collections.unmodifiableMap(aliases), predictionSource);
        } catch (IOException | RuntimeException e) {
            st.close();
            throw e;
        }
    }

    /** Older SD 1.x files name the text encoder without {@code text_model.} (transformers before 4.?). */
    private static final String OLD_TEXT = "cond_stage_model.transformer.";

    /**
     * Shapes by canonical LDM name; {@code aliases} receives canonical → file name where they differ (old
     * text-encoder names without {@code text_model.}, as AUTOMATIC1111 also accepts).
     */
    private static Map<String, long[]> canonicalShapes(SafeTensors st, Map<String, String> aliases) {
        Map<String, long[]> out = new LinkedHashMap<>();
        for (var e : st.tensors().entrySet()) {
            String k = e.getKey();
            String c = k;
            if (k.startsWith(OLD_TEXT) && !k.startsWith(ModelConfigs.TEXT)
                    && (k.startsWith(OLD_TEXT + "embeddings.") || k.startsWith(OLD_TEXT + "encoder.")
                    || k.startsWith(OLD_TEXT + "final_layer_norm."))) {
                c = ModelConfigs.TEXT + k.substring(OLD_TEXT.length());
                if (st.has(c)) {
                    c = k; // both present: the canonical one wins, the old one is ignored
                } else {
                    aliases.put(c, k);
                }
            }
            out.putIfAbsent(c, e.getValue().shape());
        }
        return out;
    }

    /**
     * A 1×1 conv weight [o, i, 1, 1] stored as [o, i] (VAE attention weights of checkpoints converted back from
     * diffusers), or the reverse: the same values in the same order.
     */
    static boolean sameAs1x1(long[] actual, long[] expected) {
        long[] a = actual.length == 4 && actual[2] == 1 && actual[3] == 1 ? new long[]{actual[0], actual[1]} : actual;
        long[] e = expected.length == 4 && expected[2] == 1 && expected[3] == 1 ? new long[]{expected[0], expected[1]} : expected;
        return a.length == 2 && Arrays.equals(a, e);
    }

    private static List<String> names(List<CheckpointLayout.Entry> entries) {
        return entries.stream().map(CheckpointLayout.Entry::name).toList();
    }

    private static String limit(List<String> items) {
        int max = 20;
        String s = String.join(", ", items.subList(0, Math.min(max, items.size())));
        return items.size() > max ? s + ", … (" + (items.size() - max) + " more)" : s;
    }

    public ModelConfig config() {
        return config;
    }

    /**
     * Where the prediction type came from: "model setting", "config JSON", the yaml's file name, "v_pred key" or
     * "&lt;family&gt; default" (see {@link PredictionType}).
     */
    public String predictionSource() {
        return predictionSource;
    }

    public Path path() {
        return file.path();
    }

    /** The config JSON read from beside the file, if one was. */
    public Optional<Path> configFile() {
        return configFile;
    }

    /** The float type most weights are stored in (F32, F16 or BF16). */
    public DType storageType() {
        return storage;
    }

    /** Names (LDM keys) of the weights a network needs, in layout order. */
    public List<String> keys(Network network) {
        return keys.get(network);
    }

    /** Every weight key the three networks need. */
    public List<String> requiredKeys() {
        List<String> all = new ArrayList<>();
        keys.values().forEach(all::addAll);
        return all;
    }

    public boolean has(String ldmKey) {
        return file.has(fileKey(ldmKey));
    }

    /** The tensor's shape as stored (a 1×1 conv may be stored as [o, i]: see {@link #sameAs1x1}). */
    public long[] shape(String ldmKey) {
        return file.shape(fileKey(ldmKey));
    }

    public DType dtype(String ldmKey) {
        return file.info(fileKey(ldmKey)).dtype();
    }

    /** A tensor's values as float32 (converted from the storage type), row-major in the file's shape. */
    public float[] floats(String ldmKey) throws IOException {
        return file.finiteFloats(fileKey(ldmKey));
    }

    /** A tensor's values as float32 into {@code dst} at {@code offset}. */
    public void readFloats(String ldmKey, float[] dst, int offset) throws IOException {
        String key = fileKey(ldmKey);
        file.readFloats(key, dst, offset);
        SafeTensors.requireFinite(file.path(), key, dst, offset, Math.toIntExact(file.info(key).elements()), 0);
    }

    /**
     * The name under which the file stores the tensor of canonical LDM name {@code ldmKey} (they differ only for
     * old text-encoder names). Code that reads {@link #file()} directly must go through this.
     */
    public String fileKey(String ldmKey) {
        return aliases.getOrDefault(ldmKey, ldmKey);
    }

    /** The underlying file (its tensor names may differ from the canonical ones: see {@link #fileKey}). */
    public SafeTensors file() {
        return file;
    }

    @Override
    public void close() {
        file.close();
    }

    @Override
    public String toString() {
        return "Checkpoint[" + file.path().getFileName() + ", " + storage + ", unet " + config.unet().blockOutChannels() + "]";
    }
}
