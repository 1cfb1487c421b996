package dev.sdserve.engine.tf;

import com.fasterxml.jackson.databind.JsonNode;
import dev.sdserve.engine.DenoiseBatch;
import dev.sdserve.engine.DenoiseItem;
import dev.sdserve.engine.EncodeItem;
import dev.sdserve.engine.LatentShape;
import dev.sdserve.model.ClipTokenizer;
import dev.sdserve.model.GoldenSet;
import dev.sdserve.model.ModelConfigs;
import dev.sdserve.model.SafeTensors;
import dev.sdserve.prompt.Emphasis;
import dev.sdserve.prompt.PromptAttention;
import dev.sdserve.prompt.PromptChunker;
import dev.sdserve.prompt.PromptEncoder;
import dev.sdserve.sampler.EpsFunction;
import dev.sdserve.sampler.ReplayNoise;
import dev.sdserve.sampler.Sampler;
import dev.sdserve.sampler.SchedulerConfig;
import dev.sdserve.sampler.Samplers;
import dev.sdserve.sampler.Trajectory;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * The {@code prompt.*} cases of a set's {@code ext/golden-ext.*} (AUTOMATIC1111's prompt syntax): per case the parsed
 * runs, the token ids (per run and per chunk), the per-token weights, and the embeddings after emphasis; then
 * {@code prompt.pipe}, a guided run with a multi-chunk context. Every setting (chunk length, comma back-off, special
 * ids, CLIP skip, emphasis mode) and every case is read from the JSON. Skipped when the set has no such cases.
 */
final class PromptConformance {
    /** How a case is checked and recorded ({@code Conformance::safely}). */
    @FunctionalInterface
    interface Check {
        void check(String name, double tolerance, Conformance.ErrorCase c);
    }

    private final GoldenSet g;
    private final TfEngine engine;
    private final String model;
    private final Check check;

    private PromptConformance(GoldenSet g, TfEngine engine, String model, Check check) {
        this.g = g;
        this.engine = engine;
        this.model = model;
        this.check = check;
    }

    /** Runs the prompt cases of {@code g}'s ext folder on the float32 model {@code model}, if there are any. */
    static void run(GoldenSet g, TfEngine engine, String model, Check check) throws IOException {
        Path json = g.dir().resolve("ext").resolve("golden-ext.json");
        Path tensors = g.dir().resolve("ext").resolve("golden-ext.safetensors");
        if (!Files.isRegularFile(json) || !Files.isRegularFile(tensors)) {
            return;
        }
        JsonNode root = ModelConfigs.readJson(json);
        JsonNode prompt = root.path("prompt");
        if (!prompt.path("cases").isArray()) {
            return;
        }
        try (SafeTensors t = SafeTensors.open(tensors)) {
            new PromptConformance(g, engine, model, check).cases(root, prompt, t);
        }
    }

    private void cases(JsonNode root, JsonNode prompt, SafeTensors t) {
        JsonNode s = prompt.path("settings");
        PromptChunker.Tokens tokens = new PromptChunker.Tokens(req(s, "bos").asInt(), req(s, "eos").asInt(),
                req(s, "pad").asInt(), req(s, "comma_token").asInt());
        PromptChunker chunker = new PromptChunker(ClipTokenizer.get()::encode, tokens, req(s, "chunk_length").asInt(),
                req(s, "comma_padding_backtrack").asInt(), Emphasis.of(req(s, "emphasis").asText()));
        PromptEncoder encoder = new PromptEncoder(chunker);
        EncodeItem settings = new EncodeItem("", req(s, "CLIP_stop_at_last_layers").asInt(), List.of());
        float[] empty = encode(encoder, "", settings);
        JsonNode cases = prompt.get("cases");
        List<float[]> embeds = new ArrayList<>();
        for (JsonNode c : cases) {
            String name = "prompt." + c.path("index").asInt() + "." + c.path("name").asText();
            String text = c.path("text").asText();
            String pre = "prompt." + c.path("index").asInt() + ".";
            int padTo = c.path("padded_to_chunks").asInt(0);
            check.check(name + ".parsed", 0, () -> parsedMismatch(chunker.fragments(text), c.path("parsed")));
            check.check(name + ".ids", 0, () -> {
                List<PromptChunker.Chunk> chunks = padded(chunker, text, padTo);
                int[] want = t.ints(pre + "ids");
                int diff = Math.abs(c.path("chunks").asInt() - chunks.size());
                diff += fragmentMismatch(chunker.fragments(text), c.path("fragment_token_ids"));
                diff += chunker.chunk(text).tokenCount() == c.path("token_count").asInt() ? 0 : 1;
                int k = 0;
                for (PromptChunker.Chunk ch : chunks) {
                    for (int id : ch.ids()) {
                        diff += k < want.length && want[k] == id ? 0 : 1;
                        k++;
                    }
                }
                return (double) (diff + Math.abs(want.length - k)) / want.length;
            });
            check.check(name + ".weights", 0, () -> {
                List<float[]> w = new ArrayList<>();
                padded(chunker, text, padTo).forEach(ch -> w.add(ch.weights()));
                return Conformance.err(w.toArray(float[][]::new), t.floats(pre + "weights"));
            });
            float[][] got = new float[1][];
            check.check(name + ".embeds", Conformance.CALL_TOLERANCE, () -> {
                float[] e = encode(encoder, text, settings);
                if (padTo > 0) {
                    e = PromptEncoder.padPair(new float[empty.length * padTo], e, empty)[1];
                }
                got[0] = e;
                return Conformance.err(e, t.floats(pre + "embeds"));
            });
            embeds.add(got[0]);
        }
        pipe(root, prompt.path("pipe"), embeds, empty, t);
    }

    /** The guided run of {@code prompt.pipe}: its prompt and negative cases' contexts, padded to one length. */
    private void pipe(JsonNode root, JsonNode p, List<float[]> embeds, float[] empty, SafeTensors t) {
        if (p.isMissingNode()) {
            return;
        }
        float[][] last = new float[1][];
        check.check("prompt.pipe.latents", Conformance.PIPELINE_TOLERANCE, () -> {
            String sampler = req(p, "sampler").asText();
            float[] cond = embeds.get(req(p, "prompt_case").asInt());
            float[] uncond = embeds.get(req(p, "negative_case").asInt());
            if (cond == null || uncond == null) {
                throw new IllegalStateException("the prompt or negative case failed");
            }
            float[][] pair = PromptEncoder.padPair(cond, uncond, empty);
            int steps = req(p, "num_inference_steps").asInt();
            double guidance = req(p, "guidance_scale").asDouble();
            JsonNode cfg = root.path("samplers").path(sampler).path("config");
            if (cfg.isMissingNode()) {
                cfg = g.pipeline(sampler).path("config");
            }
            Sampler smp = Samplers.create(sampler, SchedulerConfig.fromJson(cfg));
            float[] init = g.tensor("pipe.init_noise");
            long[] sh = g.shape("pipe.init_noise");
            LatentShape shape = new LatentShape((int) sh[1], (int) sh[2], (int) sh[3]);
            EpsFunction eps = (x, ts) -> engine.denoise(new DenoiseBatch(model, shape,
                    List.of(new DenoiseItem(x.clone(), ts, pair[0], pair[1], guidance, null))))[0];
            List<float[]> lat = Trajectory.run(smp, steps, init, new ReplayNoise(List.of()), eps);
            last[0] = lat.get(lat.size() - 1);
            return Conformance.err(lat.toArray(float[][]::new), t.floats("prompt.pipe.latents"));
        });
        check.check("prompt.pipe.image", Conformance.PIPELINE_TOLERANCE, () -> {
            if (last[0] == null) {
                throw new IllegalStateException("trajectory failed");
            }
            long[] sh = g.shape("pipe.init_noise");
            LatentShape shape = new LatentShape((int) sh[1], (int) sh[2], (int) sh[3]);
            return Conformance.err(engine.decode(model, shape, List.of(last[0])), t.floats("prompt.pipe.image"));
        });
    }

    private float[] encode(PromptEncoder encoder, String text, EncodeItem settings) {
        return engine.encodeGroups(model, encoder, List.of(List.of(text)), List.of(settings)).get(0).get(0);
    }

    private static List<PromptChunker.Chunk> padded(PromptChunker chunker, String text, int padTo) {
        List<PromptChunker.Chunk> chunks = new ArrayList<>(chunker.chunk(text).chunks());
        while (chunks.size() < padTo) {
            chunks.add(chunker.empty());
        }
        return chunks;
    }

    /** Fraction of runs whose text or weight differ from the reference (exact comparison). */
    private static double parsedMismatch(List<PromptAttention.Fragment> got, JsonNode want) {
        int diff = Math.abs(got.size() - want.size());
        for (int i = 0; i < Math.min(got.size(), want.size()); i++) {
            JsonNode w = want.get(i);
            boolean same = got.get(i).text().equals(w.get(0).asText()) && got.get(i).weight() == w.get(1).asDouble();
            diff += same ? 0 : 1;
        }
        return (double) diff / Math.max(1, want.size());
    }

    /** Runs whose BPE ids differ from the reference's per-run ids (a BREAK run is tokenized as its text). */
    private static int fragmentMismatch(List<PromptAttention.Fragment> runs, JsonNode want) {
        if (!want.isArray()) {
            return 0;
        }
        int diff = Math.abs(runs.size() - want.size());
        for (int i = 0; i < Math.min(runs.size(), want.size()); i++) {
            int[] ids = ClipTokenizer.get().encode(runs.get(i).text());
            JsonNode w = want.get(i);
            boolean same = ids.length == w.size();
            for (int k = 0; same && k < ids.length; k++) {
                same = ids[k] == w.get(k).asInt();
            }
            diff += same ? 0 : 1;
        }
        return diff;
    }

    private static JsonNode req(JsonNode n, String field) {
        JsonNode v = n.get(field);
        if (v == null || v.isNull()) {
            throw new IllegalArgumentException("golden-ext.json: prompt field '" + field + "' missing");
        }
        return v;
    }
}
