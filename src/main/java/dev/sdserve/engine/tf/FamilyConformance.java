package dev.sdserve.engine.tf;

import com.fasterxml.jackson.databind.JsonNode;
import dev.sdserve.engine.AddedConditioning;
import dev.sdserve.engine.Conditioning;
import dev.sdserve.engine.DenoiseBatch;
import dev.sdserve.engine.DenoiseItem;
import dev.sdserve.engine.EncodeItem;
import dev.sdserve.engine.LatentShape;
import dev.sdserve.engine.LoraWeight;
import dev.sdserve.engine.SizeConditioning;
import dev.sdserve.model.ClipTokenizer;
import dev.sdserve.model.GoldenSet;
import dev.sdserve.model.ModelConfig;
import dev.sdserve.model.TextEncoderConfig;
import dev.sdserve.sampler.EpsFunction;
import dev.sdserve.sampler.ReplayNoise;
import dev.sdserve.sampler.Sampler;
import dev.sdserve.sampler.SchedulerConfig;
import dev.sdserve.sampler.Samplers;
import dev.sdserve.sampler.Trajectory;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * The conformance cases of the SDXL and SD 2.x golden sets ({@code golden/README-sdxl-sd2.md}): tokenizer ids per
 * tower, each tower's hidden states (and SDXL's pooled output), the family's conditioning (SDXL's zero negative),
 * the UNet (batch with a timestep and, for SDXL, micro-conditioning per sample; the embedding every res block gets;
 * non-square), VAE decode/encode, every pipeline of the set, for every model file (fp32 at 1e-4 per call and 1e-3 per
 * pipeline, fp16 at 1e-2), and the LoRA cases on the merged and the low-rank paths. Tensor names, prompts, sizes,
 * steps, guidance, micro-conditioning and LoRA settings are read from golden.json.
 */
final class FamilyConformance {
    private final Conformance c;
    private final GoldenSet g;
    private final ModelConfig config;
    private final boolean xl;

    FamilyConformance(Conformance c, GoldenSet g) {
        this.c = c;
        this.g = g;
        this.config = g.config();
        this.xl = config.sdxl();
    }

    /** Sets of a family other than SD 1.x (their golden.json has per-tower tokenizer cases and other tensors). */
    static boolean handles(GoldenSet g) {
        return !ModelConfig.SD1.equals(g.config().family());
    }

    void run() throws IOException {
        tokenizerCases();
        Map<String, Path> files = Conformance.modelFiles(g);
        if (files.isEmpty()) {
            c.fail("model", "no model file in " + g.dir());
            return;
        }
        boolean lora = !g.json().path("lora").path("file").asText("").isEmpty();
        try (TfEngine engine = Conformance.engine(g, files)) {
            for (String label : files.keySet()) {
                boolean fp32 = label.equals("fp32");
                double call = fp32 ? Conformance.CALL_TOLERANCE : Conformance.HALF_TOLERANCE;
                double pipe = fp32 ? Conformance.PIPELINE_TOLERANCE : Conformance.HALF_TOLERANCE;
                textCases(engine, label, call, "", List.of());
                unetCases(engine, label, call, "", List.of());
                vaeCases(engine, label, call);
                for (String name : names(g.json().path("pipelines"))) {
                    pipelineCase(engine, label, pipe, name, g.json().path("pipelines").path(name), "", List.of());
                }
                if (fp32 && lora) {
                    for (TfEngine.LoraPath path : List.of(TfEngine.LoraPath.MERGED, TfEngine.LoraPath.LOW_RANK)) {
                        loraCases(engine, label, path);
                    }
                }
            }
        }
    }

    // ---------------------------------------------------------------- tokenizer

    /** Each tower's ids of every case: either transformers' column or CLIP's reference BPE's (they differ on '!'). */
    private void tokenizerCases() {
        JsonNode cases = g.json().path("tokenizer").path("cases");
        for (int t = 0; t < config.textEncoders().size(); t++) {
            TextEncoderConfig te = config.textEncoders().get(t);
            String col = t == 0 ? "ids" : "ids_" + (t + 1);
            for (int i = 0; i < cases.size(); i++) {
                JsonNode cs = cases.get(i);
                String name = "tokenizer." + i + "." + col;
                try {
                    int[] got = ClipTokenizer.get().tokenize(cs.path("prompt").asText(), te);
                    int[] a = Conformance.ints(cs.path(col));
                    int[] b = Conformance.ints(cs.path("reference_" + col));
                    int da = diff(got, a), db = diff(got, b);
                    int d = Math.min(da, db);
                    c.record(name, d == 0 ? 0 : (double) d / a.length, 0, d == 0,
                            d == 0 ? (da == 0 ? "ids equal" : "ids equal CLIP's reference BPE") : d + " ids differ");
                } catch (RuntimeException ex) {
                    c.fail(name, ex.toString());
                }
            }
        }
    }

    private static int diff(int[] got, int[] want) {
        int d = Math.abs(got.length - want.length);
        for (int k = 0; k < Math.min(got.length, want.length); k++) {
            if (got[k] != want[k]) {
                d++;
            }
        }
        return d;
    }

    // ---------------------------------------------------------------- text

    /**
     * Tower cases on the set's token ids, then the family's conditioning of the prompts: {@code p} "" or
     * "lora.&lt;path&gt;." (then the expected tensors are the {@code lora.*} ones where the set has them).
     */
    private void textCases(TfEngine engine, String label, double tol, String p, List<LoraWeight> lw) {
        String pre = label + "." + p;
        String ref = p.isEmpty() ? "" : "lora.";
        if (xl) {
            for (int t = 0; t < 2; t++) {
                int tower = t;
                String te = "te" + (t + 1);
                boolean pooled = t == 1;
                tensorCase(pre + te + ".penultimate", tol, ref + te + ".penultimate", () ->
                        tower(engine, label, tower, te + ".input_ids", new ClipTextNet.Request(2, false, pooled), lw).hidden());
                if (pooled) {
                    tensorCase(pre + te + ".text_embeds", tol, ref + te + ".text_embeds", () ->
                            tower(engine, label, tower, te + ".input_ids", new ClipTextNet.Request(2, false, true), lw).pooled());
                }
                if (p.isEmpty()) {
                    tensorCase(pre + te + ".last_hidden_state", tol, te + ".last_hidden_state", () ->
                            tower(engine, label, tower, te + ".input_ids", ClipTextNet.Request.clipSkip(1), lw).hidden());
                }
            }
            if (p.isEmpty()) {
                // the conditioning of tokenizer cases 0 and 1 as prompts (the te.* tensors are their encodings)
                JsonNode cases = g.json().path("tokenizer").path("cases");
                List<EncodeItem> items = List.of(new EncodeItem(cases.get(0).path("prompt").asText()),
                        new EncodeItem(cases.get(1).path("prompt").asText()));
                tensorCase(pre + "te.prompt_embeds", tol, "te.prompt_embeds", () -> contexts(engine.encodeConditioning(label, items)));
                tensorCase(pre + "te.pooled_prompt_embeds", tol, "te.pooled_prompt_embeds", () -> pooled(engine.encodeConditioning(label, items)));
            }
        } else {
            tensorCase(pre + "te.last_hidden_state", tol, ref + "te.last_hidden_state", () ->
                    tower(engine, label, 0, "te.input_ids", new ClipTextNet.Request(2, true, false), lw).hidden());
            if (p.isEmpty()) {
                tensorCase(pre + "te_full.last_hidden_state", tol, "te_full.last_hidden_state", () ->
                        tower(engine, label, 0, "te.input_ids", ClipTextNet.Request.clipSkip(1), lw).hidden());
            }
        }
        // the pipeline's prompt and (absent) negative prompt through the engine's encode
        String prompt = g.params().path("pipeline").path("prompt").asText();
        String negative = g.params().path("pipeline").path("negative_prompt").asText("");
        List<EncodeItem> pipe = List.of(new EncodeItem(prompt, 1, lw),
                EncodeItem.negative(negative, 1, lw));
        String negName = g.has("pipe.negative_prompt_embeds") ? "negative_prompt_embeds" : "negative_embeds";
        tensorCase(pre + "pipe.prompt_embeds", tol, ref + "pipe.prompt_embeds", () ->
                engine.encodeConditioning(label, pipe.subList(0, 1)).get(0).context());
        if (xl) {
            tensorCase(pre + "pipe.pooled_prompt_embeds", tol, ref + "pipe.pooled_prompt_embeds", () ->
                    engine.encodeConditioning(label, pipe.subList(0, 1)).get(0).pooled());
        }
        String refNeg = g.has(ref + "pipe." + negName) ? ref + "pipe." + negName : "pipe." + negName;
        tensorCase(pre + "pipe." + negName, tol, refNeg, () -> engine.encodeConditioning(label, pipe.subList(1, 2)).get(0).context());
        if (xl) {
            tensorCase(pre + "pipe.negative_pooled_prompt_embeds", tol, "pipe.negative_pooled_prompt_embeds", () ->
                    engine.encodeConditioning(label, pipe.subList(1, 2)).get(0).pooled());
        }
    }

    private TfModel.Encoded tower(TfEngine engine, String label, int tower, String idsName, ClipTextNet.Request r,
                                  List<LoraWeight> lw) throws IOException {
        int[][] ids = Conformance.idRows(g, idsName);
        List<List<LoraWeight>> per = new ArrayList<>();
        for (int i = 0; i < ids.length; i++) {
            per.add(lw);
        }
        return engine.encodeTower(label, tower, ids, r, per);
    }

    private static float[][] contexts(List<Conditioning> cs) {
        return cs.stream().map(Conditioning::context).toArray(float[][]::new);
    }

    private static float[][] pooled(List<Conditioning> cs) {
        return cs.stream().map(Conditioning::pooled).toArray(float[][]::new);
    }

    // ---------------------------------------------------------------- UNet, VAE

    private void unetCases(TfEngine engine, String label, double tol, String p, List<LoraWeight> lw) {
        String out = g.has("unet.eps") ? "eps" : "v";
        String pre = label + "." + p;
        String ref = p.isEmpty() ? "" : "lora.";
        tensorCase(pre + "unet.batch", tol, ref + "unet." + out, () -> {
            long[] s = g.shape("unet.x");
            int[] t = g.ints("unet.t");
            List<DenoiseItem> items = new ArrayList<>();
            for (int i = 0; i < s[0]; i++) {
                items.add(new DenoiseItem(g.row("unet.x", i), t[i], g.row("unet.ctx", i), null, 1.0, lw, added(i), null));
            }
            return engine.denoise(new DenoiseBatch(label, new LatentShape((int) s[1], (int) s[2], (int) s[3]), items));
        });
        if (!p.isEmpty()) {
            return;
        }
        if (xl && g.has("unet.emb")) {
            tensorCase(pre + "unet.emb", tol, "unet.emb", () -> {
                long[] s = g.shape("unet.x");
                int[] t = g.ints("unet.t");
                List<float[]> x = new ArrayList<>(), ctx = new ArrayList<>();
                List<AddedConditioning> add = new ArrayList<>();
                float[] ts = new float[(int) s[0]];
                for (int i = 0; i < s[0]; i++) {
                    x.add(g.row("unet.x", i));
                    ctx.add(g.row("unet.ctx", i));
                    add.add(added(i));
                    ts[i] = t[i];
                }
                return engine.model(label).unetEmbedding(x, ts, ctx, add, (int) s[2], (int) s[3]);
            });
        }
        for (String name : g.tensorNames()) {
            if (!name.startsWith("unet.x_")) {
                continue;
            }
            String suffix = name.substring("unet.x_".length());
            tensorCase(pre + "unet." + suffix, tol, "unet." + out + "_" + suffix, () -> {
                long[] s = g.shape(name);
                double t = g.params().path("unet_" + suffix + "_timestep").asDouble(Double.NaN);
                if (Double.isNaN(t)) {
                    throw new IOException("golden.json params has no unet_" + suffix + "_timestep");
                }
                List<DenoiseItem> items = new ArrayList<>();
                for (int i = 0; i < s[0]; i++) { // sample i's context and conditioning
                    items.add(new DenoiseItem(g.row(name, i), t, g.row("unet.ctx", i), null, 1.0, lw, added(i), null));
                }
                return engine.denoise(new DenoiseBatch(label, new LatentShape((int) s[1], (int) s[2], (int) s[3]), items));
            });
        }
    }

    /** Sample i's added conditioning of the UNet cases (SDXL: unet.text_embeds, unet.time_ids), null otherwise. */
    private AddedConditioning added(int i) throws IOException {
        if (!xl) {
            return null;
        }
        float[] ids = g.row("unet.time_ids", i);
        return new AddedConditioning(g.row("unet.text_embeds", i), size(ids));
    }

    private static SizeConditioning size(float[] ids) {
        return new SizeConditioning(Math.round(ids[0]), Math.round(ids[1]), Math.round(ids[2]), Math.round(ids[3]),
                Math.round(ids[4]), Math.round(ids[5]));
    }

    private void vaeCases(TfEngine engine, String label, double tol) {
        tensorCase(label + ".vae.decode", tol, "vae.decoded", () -> {
            long[] s = g.shape("vae.z");
            return engine.model(label).decodeRaw(Conformance.rows(g, "vae.z"), (int) s[2], (int) s[3]);
        });
        tensorCase(label + ".vae.encode", tol, "vae.encoded_mean_scaled", () -> {
            long[] s = g.shape("vae.image");
            return engine.model(label).encodeImages(Conformance.rows(g, "vae.image"), (int) s[2], (int) s[3]);
        });
    }

    // ---------------------------------------------------------------- pipelines

    /**
     * One pipeline: the golden prompt embeddings (or, with LoRAs, the engine's own LoRA encoding of the prompt and
     * negative prompt), the sampler the pipeline's scheduler class and config describe, the recorded noise, the
     * micro-conditioning of its call (golden.json {@code call_kwargs}, default the image size); latents after every
     * step, the image, and SDXL's time ids against {@code pipe.<name>.add_time_ids} where the set has them.
     */
    private void pipelineCase(TfEngine engine, String label, double tol, String name, JsonNode p, String pre,
                              List<LoraWeight> lw) {
        String cn = label + "." + pre + "pipe." + name;
        String ref = (pre.isEmpty() ? "" : "lora.") + "pipe." + name;
        JsonNode pp = g.params().path("pipeline");
        JsonNode kw = p.path("call_kwargs");
        int h = pp.path("height").asInt(-1), w = pp.path("width").asInt(-1);
        SizeConditioning pos = sizeOf(kw, "", h, w, null);
        SizeConditioning neg = sizeOf(kw, "negative_", h, w, pos);
        if (xl && g.has("pipe." + name + ".add_time_ids")) {
            tensorCase(cn + ".add_time_ids", 0, "pipe." + name + ".add_time_ids",
                    () -> new float[][]{neg.timeIds(), pos.timeIds()});
        }
        float[][] finalLatent = new float[1][];
        tensorCase(cn + ".latents", tol, ref + ".latents", () -> {
            int steps = pp.path("num_inference_steps").asInt(-1);
            double guidance = pp.path("guidance_scale").asDouble(Double.NaN);
            if (steps < 1 || Double.isNaN(guidance) || h < 1 || w < 1) {
                throw new IOException("golden.json: params.pipeline num_inference_steps / guidance_scale / height / width missing");
            }
            Conditioning cond, uncond;
            if (lw.isEmpty()) {
                cond = new Conditioning(g.tensor("pipe.prompt_embeds"), xl ? g.tensor("pipe.pooled_prompt_embeds") : null);
                uncond = xl ? new Conditioning(g.tensor("pipe.negative_prompt_embeds"), g.tensor("pipe.negative_pooled_prompt_embeds"))
                        : new Conditioning(g.tensor("pipe.negative_embeds"), null);
            } else {
                List<Conditioning> e = engine.encodeConditioning(label, List.of(
                        new EncodeItem(pp.path("prompt").asText(), 1, lw),
                        EncodeItem.negative(pp.path("negative_prompt").asText(""), 1, lw)));
                cond = e.get(0);
                uncond = e.get(1);
            }
            long[] s = g.shape("pipe.init_noise");
            LatentShape shape = new LatentShape((int) s[1], (int) s[2], (int) s[3]);
            Sampler sampler = Samplers.forDiffusers(p.path("class").asText(), SchedulerConfig.fromJson(p.path("config")));
            int evaluations = p.path("steps").asInt(sampler.evaluations(steps));
            if (sampler.evaluations(steps) != evaluations) {
                throw new IllegalStateException(sampler.id() + " makes " + sampler.evaluations(steps)
                        + " model calls for " + steps + " steps, the golden pipeline " + evaluations);
            }
            String noiseName = "pipe." + name + ".noise";
            List<float[]> noise = g.has(noiseName) ? Conformance.rows(g, noiseName) : List.of();
            AddedConditioning ac = xl ? AddedConditioning.of(cond, pos) : null;
            AddedConditioning au = xl ? AddedConditioning.of(uncond, neg) : null;
            float[] cc = cond.context(), uc = uncond.context();
            EpsFunction eps = (x, t) -> engine.denoise(new DenoiseBatch(label, shape,
                    List.of(new DenoiseItem(x.clone(), t, cc, uc, guidance, lw, ac, au))))[0];
            List<float[]> got = Trajectory.run(sampler, steps, g.tensor("pipe.init_noise"), new ReplayNoise(noise), eps);
            finalLatent[0] = got.get(got.size() - 1);
            return got.toArray(float[][]::new);
        });
        if (!g.has(ref + ".image")) {
            return;
        }
        tensorCase(cn + ".image", tol, ref + ".image", () -> {
            if (finalLatent[0] == null) {
                throw new IllegalStateException("trajectory failed");
            }
            long[] s = g.shape("pipe.init_noise");
            LatentShape shape = new LatentShape((int) s[1], (int) s[2], (int) s[3]);
            return engine.decode(label, shape, List.of(finalLatent[0]));
        });
    }

    /**
     * diffusers' size conditioning of a call: {@code <neg>original_size}, {@code <neg>crops_coords_top_left},
     * {@code <neg>target_size} from its kwargs, else (height, width), (0, 0), (height, width); the negative side
     * defaults to the positive one's ({@code dflt}) when the call gives no negative_* sizes.
     */
    private static SizeConditioning sizeOf(JsonNode kw, String neg, int h, int w, SizeConditioning dflt) {
        JsonNode o = kw.path(neg + "original_size"), c = kw.path(neg + "crops_coords_top_left"), t = kw.path(neg + "target_size");
        if (dflt != null && o.isMissingNode() && c.isMissingNode() && t.isMissingNode()) {
            return dflt;
        }
        return new SizeConditioning(o.isArray() ? o.get(0).asInt() : h, o.isArray() ? o.get(1).asInt() : w,
                c.isArray() ? c.get(0).asInt() : 0, c.isArray() ? c.get(1).asInt() : 0,
                t.isArray() ? t.get(0).asInt() : h, t.isArray() ? t.get(1).asInt() : w);
    }

    // ---------------------------------------------------------------- LoRA

    /** The LoRA cases at golden.json's scale on one execution path: towers, conditioning, UNet, the LoRA pipeline. */
    private void loraCases(TfEngine engine, String label, TfEngine.LoraPath path) {
        double scale = g.json().path("lora").path("scale").asDouble(Double.NaN);
        List<LoraWeight> lw = List.of(new LoraWeight(Conformance.GOLDEN_LORA, scale));
        String p = "lora." + path.name().toLowerCase(Locale.ROOT).replace('_', '-') + ".";
        engine.loraPath(path);
        try {
            textCases(engine, label, Conformance.CALL_TOLERANCE, p, lw);
            unetCases(engine, label, Conformance.CALL_TOLERANCE, p, lw);
            JsonNode pipeline = g.json().path("lora").path("pipeline");
            for (String name : names(g.json().path("pipelines"))) {
                if (g.has("lora.pipe." + name + ".latents") || g.has("lora.pipe." + name + ".image")) {
                    JsonNode cfg = pipeline.isObject() ? pipeline : g.json().path("pipelines").path(name);
                    pipelineCase(engine, label, Conformance.PIPELINE_TOLERANCE, name, cfg, p, lw);
                }
            }
        } finally {
            engine.loraPath(TfEngine.LoraPath.AUTO);
        }
    }

    // ---------------------------------------------------------------- plumbing

    @FunctionalInterface
    private interface Output {
        Object get() throws Exception;
    }

    /**
     * A case comparing an output (float[] or float[][]) with a golden tensor; skipped when the set lacks the tensor.
     * A reference of zeros (SDXL's empty negative) must be matched exactly; tolerance 0 means exact.
     */
    private void tensorCase(String name, double tol, String refName, Output out) {
        if (!g.has(refName)) {
            return;
        }
        c.safely(name, tol, () -> {
            Object o = out.get();
            float[][] got = o instanceof float[][] a ? a : new float[][]{(float[]) o};
            float[] ref = g.tensor(refName);
            double norm = 0;
            for (float v : ref) {
                norm += (double) v * v;
            }
            if (norm == 0 || tol == 0) {
                double max = 0;
                int k = 0;
                for (float[] row : got) {
                    for (float v : row) {
                        if (k >= ref.length) {
                            throw new IllegalStateException("output larger than the reference (" + ref.length + " values)");
                        }
                        max = Math.max(max, Math.abs(v - ref[k++]));
                    }
                }
                if (k != ref.length) {
                    throw new IllegalStateException("output has " + k + " values, reference " + ref.length);
                }
                return max; // absolute: 0 when equal
            }
            return Conformance.err(got, ref);
        });
    }

    private static List<String> names(JsonNode obj) {
        List<String> out = new ArrayList<>();
        obj.fieldNames().forEachRemaining(out::add);
        return out;
    }
}
