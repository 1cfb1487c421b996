package dev.sdserve.engine.tf;

import dev.sdserve.model.GoldenSet;

import com.fasterxml.jackson.databind.JsonNode;
import dev.sdserve.engine.DenoiseBatch;
import dev.sdserve.engine.DenoiseItem;
import dev.sdserve.engine.LatentShape;
import dev.sdserve.model.ClipTokenizer;
import dev.sdserve.model.DType;
import dev.sdserve.model.ModelConfig;
import dev.sdserve.model.SafeTensors;
import dev.sdserve.model.TextEncoderConfig;
import dev.sdserve.sampler.EpsFunction;
import dev.sdserve.sampler.ReplayNoise;
import dev.sdserve.sampler.Sampler;
import dev.sdserve.sampler.SchedulerConfig;
import dev.sdserve.sampler.Samplers;
import dev.sdserve.sampler.Trajectory;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.function.BiFunction;
import java.util.stream.Stream;

/**
 * Runs every case of a golden set (format of {@code shared/golden/README.md}) through the TF engine and prints one
 * line per case with its relative error ‖out − ref‖ / ‖ref‖ and PASS/FAIL, then
 * {@code conformance: P passed, F failed}. Every size, step count and setting is read from {@code golden.json}.
 *
 * <p>Each model file of the set (every {@code *.safetensors} except {@code golden.safetensors} and the LoRA) runs
 * the model cases; float32 files at the README's float32 tolerances (1e-4 per call, 1e-3 whole pipelines), files
 * stored in float16/bfloat16 at 1e-2.
 */
public final class Conformance {
    public static final double CALL_TOLERANCE = 1e-4;
    public static final double PIPELINE_TOLERANCE = 1e-3;
    public static final double HALF_TOLERANCE = 1e-2;

    /** One case's outcome. */
    public record CaseResult(String name, double error, double tolerance, boolean pass, String detail) {
    }

    /** All cases. */
    public record Summary(List<CaseResult> cases) {
        public long passed() {
            return cases.stream().filter(CaseResult::pass).count();
        }

        public long failed() {
            return cases.size() - passed();
        }
    }

    private final Path dir;
    private final PrintStream out;
    private final BiFunction<String, TextEncoderConfig, int[]> tokenizer;
    private final List<CaseResult> results = new ArrayList<>();

    /** With the shipped CLIP tokenizer. */
    public Conformance(Path dir, PrintStream out) {
        this(dir, out, (prompt, te) -> ClipTokenizer.get().tokenize(prompt, te));
    }

    /** @param tokenizer prompt → ids for the text encoder */
    Conformance(Path dir, PrintStream out, BiFunction<String, TextEncoderConfig, int[]> tokenizer) {
        this.dir = dir;
        this.out = out;
        this.tokenizer = tokenizer;
    }

    public Summary run() throws IOException {
        try (GoldenSet g = GoldenSet.open(dir)) {
            if (FamilyConformance.handles(g)) {
                new FamilyConformance(this, g).run();
                return finish();
            }
            ModelConfig config = g.config();
            tokenizerCases(g, config.textEncoder());
            Map<String, Path> files = modelFiles(g);
            if (files.isEmpty()) {
                fail("model", "no model file in " + dir);
            }
            String loraFile = g.json().path("lora").path("file").asText("");
            try (TfEngine engine = engine(g, files)) {
                for (var e : files.entrySet()) {
                    String label = e.getKey();
                    boolean fp32 = label.equals("fp32");
                    double call = fp32 ? CALL_TOLERANCE : HALF_TOLERANCE;
                    double pipe = fp32 ? PIPELINE_TOLERANCE : HALF_TOLERANCE;
                    modelCases(g, engine, label, call, pipe);
                    if (fp32) {
                        PromptConformance.run(g, engine, label, this::safely);
                    }
                    PreviewConformance.cases(dir, engine, label, this::safely);
                    if (fp32 && !loraFile.isEmpty()) {
                        loraCases(g, engine, label, TfEngine.LoraPath.MERGED);
                        loraCases(g, engine, label, TfEngine.LoraPath.LOW_RANK);
                    }
                }
            }
            ImageConformance.run(this, g);
        }
        return finish();
    }

    /**
     * An engine over a set's model files (by label, see {@link #modelFiles}) with the set's architecture, and its
     * LoRA file as {@link #GOLDEN_LORA}.
     */
    static TfEngine engine(GoldenSet g, Map<String, Path> files) {
        ModelConfig config = g.config();
        String loraFile = g.json().path("lora").path("file").asText("");
        LoraLibrary.Source loras = new LoraLibrary.Source() {
            @Override
            public Path resolve(String name) {
                if (!name.equals(GOLDEN_LORA) || loraFile.isEmpty()) {
                    throw dev.sdserve.job.ServeException.notFound("unknown LoRA '" + name + "'");
                }
                return g.dir().resolve(loraFile);
            }

            @Override
            public String hash(Path file) {
                return dev.sdserve.model.ModelRegistry.sha256(file);
            }
        };
        return new TfEngine(name -> {
            Path f = files.get(name);
            if (f == null) {
                throw dev.sdserve.job.ServeException.notFound("unknown model '" + name + "'");
            }
            return f;
        }, p -> config, null, loras);
    }

    private Summary finish() {
        Summary s = new Summary(List.copyOf(results));
        out.println("conformance: " + s.passed() + " passed, " + s.failed() + " failed");
        return s;
    }

    // ---------------------------------------------------------------- cases

    private void tokenizerCases(GoldenSet g, TextEncoderConfig te) {
        JsonNode cases = g.json().path("tokenizer");
        for (int i = 0; i < cases.size(); i++) {
            JsonNode c = cases.get(i);
            String name = "tokenizer." + i;
            int[] want = ints(c.path("ids"));
            try {
                int[] got = tokenizer.apply(c.path("prompt").asText(), te);
                int diff = Math.abs(got.length - want.length);
                for (int k = 0; k < Math.min(got.length, want.length); k++) {
                    if (got[k] != want[k]) {
                        diff++;
                    }
                }
                record(name, diff == 0 ? 0 : (double) diff / want.length, 0, diff == 0,
                        diff == 0 ? "ids equal" : diff + " of " + want.length + " ids differ");
            } catch (RuntimeException ex) {
                fail(name, ex.toString());
            }
        }
    }

    private void modelCases(GoldenSet g, TfEngine engine, String label, double callTol, double pipeTol) {
        String p = label + ".";
        // text encoder
        safely(p + "te.last_hidden_state", callTol, () -> {
            int[][] ids = idRows(g, "te.input_ids");
            return err(engine.encodeTokens(label, ids, fill(ids.length, 1)), g.tensor("te.last_hidden_state"));
        });
        int skip = g.params().path("clip_skip_case").asInt(2);
        safely(p + "te.clip_skip_" + skip, callTol, () -> {
            int[][] ids = idRows(g, "te.input_ids");
            return err(engine.encodeTokens(label, ids, fill(ids.length, skip)), g.tensor("te.penultimate_normed"));
        });
        // UNet, batch with one timestep per sample
        safely(p + "unet.batch", callTol, () -> {
            long[] s = g.shape("unet.x");
            int[] t = g.ints("unet.t");
            List<DenoiseItem> items = new ArrayList<>();
            for (int i = 0; i < s[0]; i++) {
                items.add(new DenoiseItem(g.row("unet.x", i), t[i], g.row("unet.ctx", i), null, 1.0, null));
            }
            LatentShape shape = new LatentShape((int) s[1], (int) s[2], (int) s[3]);
            return err(engine.denoise(new DenoiseBatch(label, shape, items)), g.tensor("unet.eps"));
        });
        for (String name : g.tensorNames()) {
            if (name.startsWith("unet.x_")) {
                String suffix = name.substring("unet.x_".length());
                safely(p + "unet." + suffix, callTol, () -> {
                    long[] s = g.shape(name);
                    double t = g.params().path("unet_" + suffix + "_timestep").asDouble(Double.NaN);
                    if (Double.isNaN(t)) {
                        throw new IOException("golden.json params has no unet_" + suffix + "_timestep");
                    }
                    List<DenoiseItem> items = new ArrayList<>();
                    for (int i = 0; i < s[0]; i++) {
                        items.add(new DenoiseItem(g.row(name, i), t, g.row("unet.ctx", i), null, 1.0, null));
                    }
                    LatentShape shape = new LatentShape((int) s[1], (int) s[2], (int) s[3]);
                    return err(engine.denoise(new DenoiseBatch(label, shape, items)), g.tensor("unet.eps_" + suffix));
                });
            }
        }
        // VAE
        safely(p + "vae.decode", callTol, () -> {
            long[] s = g.shape("vae.z");
            return err(engine.model(label).decodeRaw(rows(g, "vae.z"), (int) s[2], (int) s[3]), g.tensor("vae.decoded"));
        });
        safely(p + "vae.encode", callTol, () -> {
            long[] s = g.shape("vae.image");
            return err(engine.model(label).encodeImages(rows(g, "vae.image"), (int) s[2], (int) s[3]),
                    g.tensor("vae.encoded_mean_scaled"));
        });
        pipelineCases(g, engine, label, pipeTol);
    }

    static final String GOLDEN_LORA = "golden-lora";

    /**
     * The golden LoRA cases (text encoder, UNet batch, Euler pipeline image; LoRA at golden.json's scale) on one
     * LoRA execution path, each its own line {@code <label>.lora.<path>.<case>}.
     */
    private void loraCases(GoldenSet g, TfEngine engine, String label, TfEngine.LoraPath path) {
        double scale = g.json().path("lora").path("scale").asDouble(Double.NaN);
        List<dev.sdserve.engine.LoraWeight> lw = List.of(new dev.sdserve.engine.LoraWeight(GOLDEN_LORA, scale));
        String p = label + ".lora." + path.name().toLowerCase(Locale.ROOT).replace('_', '-') + ".";
        engine.loraPath(path);
        try {
            safely(p + "te.last_hidden_state", CALL_TOLERANCE, () -> {
                int[][] ids = idRows(g, "te.input_ids");
                List<List<dev.sdserve.engine.LoraWeight>> per = new ArrayList<>();
                for (int i = 0; i < ids.length; i++) {
                    per.add(lw);
                }
                return err(engine.encodeTokens(label, ids, fill(ids.length, 1), per), g.tensor("lora.te.last_hidden_state"));
            });
            safely(p + "unet.eps", CALL_TOLERANCE, () -> {
                long[] s = g.shape("unet.x");
                int[] t = g.ints("unet.t");
                List<DenoiseItem> items = new ArrayList<>();
                for (int i = 0; i < s[0]; i++) {
                    items.add(new DenoiseItem(g.row("unet.x", i), t[i], g.row("unet.ctx", i), null, 1.0, lw));
                }
                LatentShape shape = new LatentShape((int) s[1], (int) s[2], (int) s[3]);
                return err(engine.denoise(new DenoiseBatch(label, shape, items)), g.tensor("lora.unet.eps"));
            });
            safely(p + "pipe.euler.image", PIPELINE_TOLERANCE, () -> {
                JsonNode pp = g.params().path("pipeline");
                int steps = pp.path("num_inference_steps").asInt(-1);
                double guidance = pp.path("guidance_scale").asDouble(Double.NaN);
                if (steps < 1 || Double.isNaN(guidance)) {
                    throw new IOException("golden.json: params.pipeline.num_inference_steps / guidance_scale missing");
                }
                // the pipeline's prompt and negative prompt are te.input_ids rows 0 and 1 (pipe.prompt_embeds /
                // pipe.negative_embeds are their plain encodings); with the LoRA they go through the LoRA text encoder
                int[][] ids = idRows(g, "te.input_ids");
                float[][] te = engine.encodeTokens(label, new int[][]{ids[0], ids[1]}, fill(2, 1), List.of(lw, lw));
                float[] cond = te[0];
                float[] uncond = te[1];
                long[] s = g.shape("pipe.init_noise");
                LatentShape shape = new LatentShape((int) s[1], (int) s[2], (int) s[3]);
                Sampler sampler = Samplers.create("euler", SchedulerConfig.fromJson(g.json().path("pipelines").path("euler").path("config")));
                EpsFunction eps = (x, t) -> engine.denoise(new DenoiseBatch(label, shape,
                        List.of(new DenoiseItem(x.clone(), t, cond, uncond, guidance, lw))))[0];
                List<float[]> got = Trajectory.run(sampler, steps, g.tensor("pipe.init_noise"), new ReplayNoise(List.of()), eps);
                return err(engine.decode(label, shape, List.of(got.get(got.size() - 1))), g.tensor("lora.pipe.euler.image"));
            });
        } finally {
            engine.loraPath(TfEngine.LoraPath.AUTO);
        }
    }

    private void pipelineCases(GoldenSet g, TfEngine engine, String label, double tol) {
        JsonNode pipes = g.json().path("pipelines");
        JsonNode pp = g.params().path("pipeline");
        List<String> names = new ArrayList<>();
        pipes.fieldNames().forEachRemaining(names::add);
        for (String name : names) {
            JsonNode p = pipes.get(name);
            String cn = label + ".pipe." + name;
            float[][] finalLatent = new float[1][];
            safely(cn + ".latents", tol, () -> {
                int steps = pp.path("num_inference_steps").asInt(-1);
                if (steps < 1) {
                    throw new IOException("golden.json: params.pipeline.num_inference_steps missing");
                }
                double guidance = pp.path("guidance_scale").asDouble(Double.NaN);
                if (Double.isNaN(guidance)) {
                    throw new IOException("golden.json: params.pipeline.guidance_scale missing");
                }
                float[] cond = g.tensor("pipe.prompt_embeds");
                float[] uncond = g.tensor("pipe.negative_embeds");
                long[] s = g.shape("pipe.init_noise");
                LatentShape shape = new LatentShape((int) s[1], (int) s[2], (int) s[3]);
                Sampler sampler = Samplers.create(name, SchedulerConfig.fromJson(p.path("config")));
                int evaluations = p.path("steps").asInt(sampler.evaluations(steps)); // model calls recorded
                if (sampler.evaluations(steps) != evaluations) {
                    throw new IllegalStateException(sampler.id() + " makes " + sampler.evaluations(steps)
                            + " model calls for " + steps + " steps, the golden pipeline " + evaluations);
                }
                String noiseName = "pipe." + name + ".noise";
                List<float[]> noise = g.has(noiseName) ? rows(g, noiseName) : List.of();
                EpsFunction eps = (x, t) -> engine.denoise(new DenoiseBatch(label, shape,
                        List.of(new DenoiseItem(x.clone(), t, cond, uncond, guidance, null))))[0];
                List<float[]> got = Trajectory.run(sampler, steps, g.tensor("pipe.init_noise"), new ReplayNoise(noise), eps);
                finalLatent[0] = got.get(got.size() - 1);
                return err(got.toArray(float[][]::new), g.tensor("pipe." + name + ".latents"));
            });
            safely(cn + ".image", tol, () -> {
                if (finalLatent[0] == null) {
                    throw new IllegalStateException("trajectory failed");
                }
                long[] s = g.shape("pipe.init_noise");
                LatentShape shape = new LatentShape((int) s[1], (int) s[2], (int) s[3]);
                return err(engine.decode(label, shape, List.of(finalLatent[0])), g.tensor("pipe." + name + ".image"));
            });
        }
    }

    // ---------------------------------------------------------------- plumbing

    @FunctionalInterface
    interface ErrorCase {
        double error() throws Exception;
    }

    void safely(String name, double tol, ErrorCase c) {
        try {
            double e = c.error();
            record(name, e, tol, e <= tol && !Double.isNaN(e), "");
        } catch (Exception | Error ex) {
            fail(name, ex.getClass().getSimpleName() + ": " + ex.getMessage());
        }
    }

    void record(String name, double error, double tol, boolean pass, String detail) {
        CaseResult r = new CaseResult(name, error, tol, pass, detail);
        results.add(r);
        out.println(String.format(Locale.ROOT, "%-40s rel_err=%.3e tol=%.0e %s%s", name, error, tol,
                pass ? "PASS" : "FAIL", detail.isEmpty() ? "" : "  (" + detail + ")"));
    }

    void fail(String name, String why) {
        CaseResult r = new CaseResult(name, Double.NaN, 0, false, why);
        results.add(r);
        out.println(String.format(Locale.ROOT, "%-40s FAIL  (%s)", name, why));
    }

    /** Model files of the set, labelled by storage precision ("fp32", "fp16", "bf16"), fp32 first. */
    static Map<String, Path> modelFiles(GoldenSet g) throws IOException {
        String lora = g.json().path("lora").path("file").asText("");
        List<Path> files;
        try (Stream<Path> s = Files.list(g.dir())) {
            files = s.filter(f -> f.getFileName().toString().endsWith(".safetensors"))
                    .filter(f -> !f.getFileName().toString().equals("golden.safetensors"))
                    .filter(f -> !f.getFileName().toString().equals(lora))
                    .sorted().toList();
        }
        Map<String, Path> byLabel = new LinkedHashMap<>();
        List<String> order = List.of("fp32", "fp16", "bf16");
        Map<String, Path> found = new LinkedHashMap<>();
        for (Path f : files) {
            String label = precision(f);
            String key = label;
            for (int i = 2; found.containsKey(key); i++) {
                key = label + "#" + i;
            }
            found.put(key, f);
        }
        for (String o : order) {
            found.entrySet().stream().filter(e -> e.getKey().startsWith(o)).forEach(e -> byLabel.put(e.getKey(), e.getValue()));
        }
        found.forEach(byLabel::putIfAbsent);
        return byLabel;
    }

    private static String precision(Path f) throws IOException {
        try (SafeTensors st = SafeTensors.open(f)) {
            for (SafeTensors.TensorInfo t : st.tensors().values()) {
                if (t.name().startsWith("model.diffusion_model.")) {
                    return t.dtype() == DType.F16 ? "fp16" : t.dtype() == DType.BF16 ? "bf16" : "fp32";
                }
            }
        }
        throw new IOException(f + ": no model.diffusion_model.* tensors: not an SD checkpoint");
    }

    static double err(float[][] out, float[] ref) {
        double num = 0, den = 0;
        int k = 0;
        for (float[] o : out) {
            for (float v : o) {
                if (k >= ref.length) {
                    throw new IllegalStateException("output larger than the reference (" + ref.length + " values)");
                }
                double d = (double) v - ref[k];
                num += d * d;
                den += (double) ref[k] * ref[k];
                k++;
            }
        }
        if (k != ref.length) {
            throw new IllegalStateException("output has " + k + " values, reference " + ref.length);
        }
        return Math.sqrt(num / den);
    }

    static double err(float[] out, float[] ref) {
        return err(new float[][]{out}, ref);
    }

    static int[] ints(JsonNode arr) {
        int[] r = new int[arr.size()];
        for (int i = 0; i < r.length; i++) {
            r[i] = arr.get(i).asInt();
        }
        return r;
    }

    static int[] fill(int n, int v) {
        int[] r = new int[n];
        java.util.Arrays.fill(r, v);
        return r;
    }

    static int[][] idRows(GoldenSet g, String name) throws IOException {
        int[] flat = g.ints(name);
        long[] s = g.shape(name);
        int b = (int) s[0], t = (int) s[1];
        int[][] ids = new int[b][t];
        for (int i = 0; i < b; i++) {
            System.arraycopy(flat, i * t, ids[i], 0, t);
        }
        return ids;
    }

    static List<float[]> rows(GoldenSet g, String name) throws IOException {
        float[] all = g.tensor(name);
        int n = (int) g.shape(name)[0];
        int per = all.length / n;
        List<float[]> r = new ArrayList<>(n);
        for (int i = 0; i < n; i++) {
            float[] x = new float[per];
            System.arraycopy(all, i * per, x, 0, per);
            r.add(x);
        }
        return r;
    }
}
