package dev.sdserve.model;

import com.fasterxml.jackson.databind.JsonNode;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Iterator;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.stream.Stream;

/**
 * A golden reference set in the format of {@code shared/golden/README.md}: {@code golden.json} (configs, params,
 * pipelines, tokenizer cases, LoRA settings, tensor shapes), {@code golden.safetensors} (inputs and expected
 * outputs), and the model files beside them (found by content: the LDM checkpoint stored as F32, the same as F16,
 * and the LoRA file named in {@code lora.file}). Works for any set of that format.
 */
public final class GoldenSet implements AutoCloseable {
    /** One tokenizer case: prompt and the expected 77 ids. */
    public record TokenizerCase(String prompt, int[] ids) {
    }

    /** LoRA settings of the set: W += scale · (alpha / rank) · up · down. */
    public record LoraSettings(Path file, double scale, int modules, int rank, double alpha, boolean conv3x3) {
        public double multiplier() {
            return scale * alpha / rank;
        }
    }

    private final Path dir;
    private final JsonNode json;
    private final SafeTensors tensors;
    private final Path model;
    private final Path modelFp16;
    private final ModelConfig config;

    private GoldenSet(Path dir, JsonNode json, SafeTensors tensors, Path model, Path modelFp16, ModelConfig config) {
        this.dir = dir;
        this.json = json;
        this.tensors = tensors;
        this.model = model;
        this.modelFp16 = modelFp16;
        this.config = config;
    }

    public static GoldenSet open(Path dir) throws IOException {
        Path jsonFile = dir.resolve("golden.json");
        Path tensorFile = dir.resolve("golden.safetensors");
        if (!Files.isRegularFile(jsonFile) || !Files.isRegularFile(tensorFile)) {
            throw new IOException(dir + ": not a golden set (needs golden.json and golden.safetensors)");
        }
        JsonNode json = ModelConfigs.readJson(jsonFile);
        for (String part : List.of("configs", "params", "tensors")) {
            if (!json.path(part).isObject()) {
                throw new IOException(jsonFile + ": no '" + part + "' object");
            }
        }
        String loraName = json.path("lora").path("file").asText("");
        Path f32 = null;
        Path f16 = null;
        List<Path> candidates;
        try (Stream<Path> s = Files.list(dir)) {
            candidates = s.filter(p -> p.getFileName().toString().endsWith(".safetensors"))
                    .filter(p -> !p.getFileName().toString().equals("golden.safetensors"))
                    .filter(p -> !p.getFileName().toString().equals(loraName))
                    .sorted().toList();
        }
        for (Path p : candidates) {
            try (SafeTensors st = SafeTensors.open(p)) {
                String unetKey = ModelConfigs.UNET + "input_blocks.0.0.weight";
                if (!st.has(unetKey)) {
                    continue;
                }
                DType dt = st.info(unetKey).dtype();
                if (dt == DType.F32 && f32 == null) {
                    f32 = p;
                } else if (dt == DType.F16 && f16 == null) {
                    f16 = p;
                }
            }
        }
        if (f32 == null) {
            throw new IOException(dir + ": no float32 LDM checkpoint (*.safetensors with " + ModelConfigs.UNET + "*) in the set");
        }
        ModelConfig cfg;
        try (SafeTensors st = SafeTensors.open(f32)) {
            cfg = ModelConfigs.fromShapes(ModelConfigs.shapes(st), json);
        } catch (IllegalArgumentException e) {
            throw new IOException(f32 + ": " + e.getMessage(), e);
        }
        SafeTensors t = SafeTensors.open(tensorFile);
        try {
            Iterator<String> names = json.get("tensors").fieldNames();
            while (names.hasNext()) {
                String n = names.next();
                long[] expected = longs(json.get("tensors").get(n));
                if (!t.has(n)) {
                    throw new IOException(tensorFile + ": lacks '" + n + "' listed in golden.json");
                }
                if (!Arrays.equals(expected, t.shape(n))) {
                    throw new IOException(tensorFile + ": '" + n + "' is " + Arrays.toString(t.shape(n))
                            + " but golden.json says " + Arrays.toString(expected));
                }
            }
        } catch (IOException | RuntimeException e) {
            t.close();
            throw e;
        }
        return new GoldenSet(dir, json, t, f32, f16, cfg);
    }

    private static long[] longs(JsonNode a) {
        long[] out = new long[a.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = a.get(i).asLong();
        }
        return out;
    }

    public Path dir() {
        return dir;
    }

    /** The whole golden.json. */
    public JsonNode json() {
        return json;
    }

    public JsonNode params() {
        return json.get("params");
    }

    public long seed() {
        return params().path("seed").asLong();
    }

    /** The diffusers configs ({@code unet}, {@code vae}, {@code text_encoder}) as written. */
    public JsonNode configsJson() {
        return json.get("configs");
    }

    /** The model architecture, read from the checkpoint's shapes and the set's configs. */
    public ModelConfig config() {
        return config;
    }

    /** The float32 checkpoint. */
    public Path modelFile() {
        return model;
    }

    /** The float16 checkpoint, if the set has one. */
    public Optional<Path> fp16ModelFile() {
        return Optional.ofNullable(modelFp16);
    }

    /** Opens the float32 checkpoint with the set's configs. */
    public Checkpoint openModel() throws IOException {
        return Checkpoint.open(model, json);
    }

    /** Opens the float16 checkpoint with the set's configs. */
    public Checkpoint openFp16Model() throws IOException {
        if (modelFp16 == null) {
            throw new IOException(dir + ": the set has no float16 checkpoint");
        }
        return Checkpoint.open(modelFp16, json);
    }

    /** Sampler configs by name: each with {@code config}, {@code timesteps}, {@code init_noise_sigma}, ... */
    public JsonNode pipelines() {
        return json.path("pipelines");
    }

    public List<String> samplers() {
        List<String> out = new ArrayList<>();
        pipelines().fieldNames().forEachRemaining(out::add);
        return out;
    }

    public JsonNode pipeline(String sampler) {
        JsonNode p = pipelines().get(sampler);
        if (p == null) {
            throw new IllegalArgumentException(dir.getFileName() + ": no pipeline '" + sampler + "' (has " + samplers() + ")");
        }
        return p;
    }

    public List<TokenizerCase> tokenizerCases() {
        List<TokenizerCase> out = new ArrayList<>();
        for (JsonNode c : json.path("tokenizer")) {
            JsonNode ids = c.get("ids");
            int[] a = new int[ids.size()];
            for (int i = 0; i < a.length; i++) {
                a[i] = ids.get(i).asInt();
            }
            out.add(new TokenizerCase(c.get("prompt").asText(), a));
        }
        return out;
    }

    public Optional<LoraSettings> lora() {
        JsonNode l = json.path("lora");
        if (!l.isObject() || !l.has("file")) {
            return Optional.empty();
        }
        return Optional.of(new LoraSettings(dir.resolve(l.get("file").asText()), l.path("scale").asDouble(1.0),
                l.path("modules").asInt(-1), l.path("rank").asInt(), l.path("alpha").asDouble(l.path("rank").asDouble()),
                l.path("conv3x3").asBoolean(false)));
    }

    public Set<String> tensorNames() {
        return tensors.names();
    }

    public boolean has(String name) {
        return tensors.has(name);
    }

    public long[] shape(String name) {
        return tensors.shape(name);
    }

    /** A float tensor (F32 in the set). */
    public float[] tensor(String name) throws IOException {
        return tensors.floats(name);
    }

    /** Row {@code i} of a float tensor's leading dimension (one sample of a batch). */
    public float[] row(String name, int i) throws IOException {
        float[] all = tensor(name);
        long[] s = shape(name);
        if (i < 0 || i >= s[0]) {
            throw new IllegalArgumentException(name + ": row " + i + " outside 0.." + (s[0] - 1));
        }
        int per = Math.toIntExact(all.length / s[0]);
        float[] r = new float[per];
        System.arraycopy(all, i * per, r, 0, per);
        return r;
    }

    /** An integer tensor (token ids, timesteps: I32/I64 in the set). */
    public int[] ints(String name) throws IOException {
        return tensors.ints(name);
    }

    @Override
    public void close() {
        tensors.close();
    }
}
