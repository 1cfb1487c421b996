package dev.sdserve.model;

import com.fasterxml.jackson.databind.JsonNode;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;

/**
 * A civitai-style single-file SD 1.x checkpoint (safetensors, original LDM key names, fp32/fp16/bf16 storage),
 * validated on open: architecture read from the shapes (plus the config JSON beside the file, if any), and every
 * tensor the three networks need present with the shape that architecture implies. Other tensors (EMA copies,
 * position ids, schedule buffers, anything else) are ignored. Thread-safe for reads.
 */
public final class Checkpoint implements AutoCloseable {
    /** The three networks of a checkpoint. */
    public enum Network { TEXT_ENCODER, UNET, VAE }

    private final SafeTensors file;
    private final ModelConfig config;
    private final Optional<Path> configFile;
    private final Map<Network, List<String>> keys;
    private final DType storage;
    private final Map<String, String> aliases;

    private Checkpoint(SafeTensors file, ModelConfig config, Optional<Path> configFile,
                       Map<Network, List<String>> keys, DType storage, Map<String, String> aliases) {
        this.aliases = aliases;
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
        return open(path, cfg, cfgFile);
    }

    /** Opens {@code path} with the given config JSON (may be null: SD 1.x conventions). */
    public static Checkpoint open(Path path, JsonNode configJson) throws IOException {
        return open(path, configJson, Optional.empty());
    }

    private static Checkpoint open(Path path, JsonNode configJson, Optional<Path> cfgFile) throws IOException {
        SafeTensors st = SafeTensors.open(path);
        try {
            Map<String, String> aliases = new LinkedHashMap<>();
            Map<String, long[]> shapes = canonicalShapes(st, aliases);
            String name = path.getFileName().toString();
            String kind = notSd1(shapes.keySet());
            if (kind != null) {
                throw new CheckpointException("checkpoint " + name + " is not an SD 1.x checkpoint: " + kind);
            }
            ModelConfig cfg;
            try {
                cfg = ModelConfigs.fromShapes(shapes, configJson);
            } catch (IllegalArgumentException e) {
                throw new CheckpointException("checkpoint " + name + ": cannot read the SD 1.x architecture: " + e.getMessage(), e);
            }
            Map<Network, List<String>> keys = new LinkedHashMap<>();
            keys.put(Network.TEXT_ENCODER, names(CheckpointLayout.textEncoder(cfg.textEncoder(), DType.F32)));
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
                        + (missing.size() == 1 ? "" : "s") + " of its SD 1.x architecture: " + limit(missing));
            }
            if (!wrong.isEmpty()) {
                throw new CheckpointException("checkpoint " + name + " has " + wrong.size() + " tensor"
                        + (wrong.size() == 1 ? "" : "s") + " of the wrong shape or type: " + limit(wrong));
            }
            DType storage = dtypes.entrySet().stream().max(Map.Entry.comparingByValue()).map(Map.Entry::getKey)
                    .orElse(DType.F32);
            return new Checkpoint(st, cfg, cfgFile, Collections.unmodifiableMap(keys), storage,
                    Collections.unmodifiableMap(aliases));
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

    /**
     * What a tensor name set looks like when it is not an SD 1.x LDM checkpoint, or null when it may be one.
     */
    static String notSd1(Set<String> names) {
        boolean unet = false;
        boolean kohya = false;
        boolean peft = false;
        boolean sdxl = false;
        boolean sd2 = false;
        boolean diffusers = false;
        boolean ti = false;
        boolean control = false;
        for (String n : names) {
            if (n.startsWith(ModelConfigs.UNET)) {
                unet = true;
                if (n.startsWith(ModelConfigs.UNET + "label_emb.")) {
                    sdxl = true;
                }
            }
            if (n.startsWith("lora_unet_") || n.startsWith("lora_te") || n.contains(".lora_down.")
                    || n.contains(".hada_w1_") || n.contains(".lokr_w1")) {
                kohya = true;
            }
            if (n.contains(".lora_A.") || n.contains(".lora.down.") || n.contains("lora_linear_layer")) {
                peft = true;
            }
            if (n.startsWith("conditioner.embedders.")) {
                sdxl = true;
            }
            if (n.startsWith("cond_stage_model.model.")) {
                sd2 = true;
            }
            if (n.startsWith("down_blocks.") || n.startsWith("mid_block.") || n.startsWith("unet.down_blocks.")
                    || n.startsWith("encoder.down_blocks.")) {
                diffusers = true;
            }
            if (n.equals("emb_params") || n.startsWith("string_to_param") || n.equals("clip_l") || n.equals("clip_g")) {
                ti = true;
            }
            if (n.startsWith("control_model.") || n.startsWith("input_hint_block.") || n.startsWith("zero_convs.")) {
                control = true;
            }
        }
        if (kohya) {
            return "it looks like a LoRA/LyCORIS file (kohya lora_unet_*/lora_te_* keys): load it as a LoRA, not a model";
        }
        if (peft) {
            return "it looks like a diffusers/PEFT LoRA file (lora_A/lora_B keys): load it as a LoRA, not a model";
        }
        if (sdxl) {
            return "it looks like an SDXL checkpoint (conditioner.embedders.* / label_emb keys); SDXL is not supported yet";
        }
        if (sd2) {
            return "it looks like an SD 2.x checkpoint (OpenCLIP text encoder cond_stage_model.model.*); SD 2.x is not supported yet";
        }
        if (ti) {
            return "it looks like a textual-inversion embedding, not a model";
        }
        if (control) {
            return "it looks like a ControlNet, not a model";
        }
        if (diffusers) {
            return "it is in the diffusers key layout (down_blocks.*); expected the single-file LDM layout (model.diffusion_model.*)";
        }
        if (!unet) {
            String example = names.isEmpty() ? "none" : names.iterator().next();
            return "it has " + names.size() + " tensors and none under " + ModelConfigs.UNET + " (e.g. " + example + ")";
        }
        Set<String> prefixes = new HashSet<>();
        for (String n : names) {
            if (n.startsWith(ModelConfigs.TEXT)) {
                prefixes.add("text");
            } else if (n.startsWith(ModelConfigs.VAE)) {
                prefixes.add("vae");
            }
        }
        if (!prefixes.contains("text")) {
            return "it has a UNet but no CLIP text encoder (" + ModelConfigs.TEXT + "*)";
        }
        if (!prefixes.contains("vae")) {
            return "it has a UNet but no VAE (" + ModelConfigs.VAE + "*); bake a VAE into it first";
        }
        return null;
    }

    public ModelConfig config() {
        return config;
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
