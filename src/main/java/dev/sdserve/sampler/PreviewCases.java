package dev.sdserve.sampler;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.sdserve.model.SafeTensors;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * The {@code preview.<sampler>.*} cases of a golden set's {@code ext/} folder ({@code golden-ext.json} →
 * {@code preview}, {@code samplers}; {@code golden-ext.safetensors}): for every UNet evaluation of a guided run, σ,
 * the timestep, the UNet input, the guided ε and the denoised estimate x̂0 = x·√(σ²+1) − σ·ε, plus x̂0 through
 * AUTOMATIC1111's "Approx cheap" factors and through the VAE. Every number (steps, guidance, sampler configs, which
 * tensors hold the prompt embeddings, the initial latent and the recorded noise) is read from the JSON.
 */
public final class PreviewCases {
    /** The ext folder's file names. */
    public static final String EXT_DIR = "ext", JSON = "golden-ext.json", TENSORS = "golden-ext.safetensors";

    /**
     * One sampler's case. Latents are NCHW without batch ({@code shape} = c, h, w), images HWC.
     *
     * @param vaeEvalIndices the evaluations whose x̂0 {@code denoisedVae} decodes
     */
    public record Case(String name, DiffusersSampler sampler, int steps, double guidance, int[] shape,
                       float[] promptEmbeds, float[] negativeEmbeds, float[] initNoise, List<float[]> noise,
                       int unusedDraws, double[] sigma, double[] timestep, List<float[]> xIn, List<float[]> eps,
                       List<float[]> denoised, List<float[]> rgbCheap, List<float[]> rgbCheapRaw,
                       int[] vaeEvalIndices, List<float[]> denoisedVae, int imageHeight, int imageWidth) {
        public int evaluations() {
            return sigma.length;
        }
    }

    /** What a run of a case recorded at every evaluation. */
    public record Recorded(double[] sigma, double[] timestep, List<float[]> xIn, List<float[]> eps,
                           List<float[]> denoised, int[] denoisedEvaluation, int drawsUsed) {
    }

    private PreviewCases() {
    }

    /** Whether the set has an ext folder with preview cases. */
    public static boolean present(Path setDir) throws IOException {
        Path j = setDir.resolve(EXT_DIR).resolve(JSON);
        return Files.isRegularFile(j) && new ObjectMapper().readTree(j.toFile()).path("preview").path("samplers").isObject();
    }

    /** Every preview case of the set, in the JSON's order. */
    public static List<Case> load(Path setDir) throws IOException {
        Path ext = setDir.resolve(EXT_DIR);
        JsonNode root = new ObjectMapper().readTree(ext.resolve(JSON).toFile());
        JsonNode preview = root.path("preview");
        JsonNode pipe = preview.path("pipeline");
        int steps = required(pipe, "num_inference_steps").asInt();
        double guidance = required(pipe, "guidance_scale").asDouble();
        int height = required(pipe, "height").asInt();
        int width = required(pipe, "width").asInt();
        Map<Path, SafeTensors> open = new HashMap<>();
        try {
            Refs refs = new Refs(setDir, ext, open);
            float[] prompt = refs.floats(required(pipe, "prompt_embeds").asText());
            float[] negative = refs.floats(required(pipe, "negative_prompt_embeds").asText());
            String latentRef = required(pipe, "latents").asText();
            float[] init = refs.floats(latentRef);
            long[] initShape = refs.shape(latentRef);
            int[] shape = {(int) initShape[1], (int) initShape[2], (int) initShape[3]};
            SafeTensors t = refs.file(TENSORS);
            List<Case> out = new ArrayList<>();
            var it = preview.path("samplers").fields();
            while (it.hasNext()) {
                var e = it.next();
                String name = e.getKey();
                JsonNode s = e.getValue();
                JsonNode config = root.path("samplers").path(name).path("config");
                if (!config.isObject()) {
                    throw new IOException(ext.resolve(JSON) + ": samplers." + name + ".config missing");
                }
                DiffusersSampler sampler = Samplers.create(name, SchedulerConfig.fromJson(config));
                int evals = required(s, "evals").asInt();
                String p = "preview." + name + ".";
                List<float[]> noise = s.path("noise").isTextual() ? refs.rows(s.path("noise").asText()) : List.of();
                int[] vaeIdx = ints(s.path("vae_eval_indices"));
                Case c = new Case(name, sampler, steps, guidance, shape, prompt, negative, init, noise,
                        s.path("unused_draws").size(), doubles(t.floats(p + "sigma")), doubles(t.floats(p + "timestep")),
                        rows(t, p + "x_in"), rows(t, p + "eps"), rows(t, p + "denoised"), rows(t, p + "denoised_rgb_cheap"),
                        rows(t, p + "denoised_rgb_cheap_raw"), vaeIdx, rows(t, p + "denoised_vae"), height, width);
                if (c.evaluations() != evals || c.xIn().size() != evals || c.denoised().size() != evals
                        || c.denoisedVae().size() != vaeIdx.length) {
                    throw new IOException(ext.resolve(TENSORS) + ": " + p + "* rows disagree with evals = " + evals);
                }
                out.add(c);
            }
            return out;
        } finally {
            for (SafeTensors st : open.values()) {
                st.close();
            }
        }
    }

    /**
     * Runs a case's trajectory with {@code model} giving the guided output for each evaluation ({@code evaluation}
     * counts from 0), recording what the sampler state reports before and after every evaluation.
     */
    public static Recorded run(Case c, ModelOutput model) {
        ReplayNoise noise = new ReplayNoise(c.noise());
        SamplerState s = c.sampler().start(c.steps(), c.initNoise(), noise);
        int n = s.totalEvaluations();
        double[] sig = new double[n], ts = new double[n];
        int[] at = new int[n];
        List<float[]> in = new ArrayList<>(), eps = new ArrayList<>(), x0 = new ArrayList<>();
        for (int k = 0; !s.done(); k++) {
            sig[k] = s.sigma();
            ts[k] = s.timestep();
            float[] x = s.modelInput().clone();
            float[] e = model.output(k, x, ts[k]);
            in.add(x);
            eps.add(e);
            s.advance(e);
            x0.add(s.denoised());
            at[k] = s.denoisedEvaluation();
        }
        return new Recorded(sig, ts, in, eps, x0, at, noise.used());
    }

    /** The guided model output of one evaluation. */
    @FunctionalInterface
    public interface ModelOutput {
        float[] output(int evaluation, float[] modelInput, double timestep);
    }

    /** Resolves "file tensor …" references of the JSON: the file in ext/ or in the set's folder. */
    private record Refs(Path setDir, Path ext, Map<Path, SafeTensors> open) {
        SafeTensors file(String name) throws IOException {
            Path f = Files.isRegularFile(ext.resolve(name)) ? ext.resolve(name) : setDir.resolve(name);
            if (!Files.isRegularFile(f)) {
                throw new IOException("golden-ext.json names " + name + ", which is neither in " + ext + " nor in " + setDir);
            }
            SafeTensors st = open.get(f);
            if (st == null) {
                st = SafeTensors.open(f);
                open.put(f, st);
            }
            return st;
        }

        private String[] split(String ref) throws IOException {
            String[] p = ref.trim().split("\\s+");
            if (p.length < 2 || !p[0].endsWith(".safetensors")) {
                throw new IOException("golden-ext.json: '" + ref + "' is not '<file>.safetensors <tensor> …'");
            }
            return p;
        }

        float[] floats(String ref) throws IOException {
            String[] p = split(ref);
            return file(p[0]).floats(p[1]);
        }

        long[] shape(String ref) throws IOException {
            String[] p = split(ref);
            return file(p[0]).shape(p[1]);
        }

        List<float[]> rows(String ref) throws IOException {
            String[] p = split(ref);
            return PreviewCases.rows(file(p[0]), p[1]);
        }
    }

    private static List<float[]> rows(SafeTensors t, String name) throws IOException {
        if (!t.has(name)) {
            throw new IOException(t.path() + ": no tensor " + name);
        }
        return SamplerConformance.split(t.floats(name), (int) t.shape(name)[0]);
    }

    private static JsonNode required(JsonNode n, String field) throws IOException {
        JsonNode v = n.path(field);
        if (v.isMissingNode() || v.isNull()) {
            throw new IOException("golden-ext.json: '" + field + "' missing");
        }
        return v;
    }

    private static int[] ints(JsonNode a) {
        int[] r = new int[a.size()];
        for (int i = 0; i < r.length; i++) {
            r[i] = a.get(i).asInt();
        }
        return r;
    }

    private static double[] doubles(float[] f) {
        double[] d = new double[f.length];
        for (int i = 0; i < f.length; i++) {
            d[i] = f[i];
        }
        return d;
    }
}
