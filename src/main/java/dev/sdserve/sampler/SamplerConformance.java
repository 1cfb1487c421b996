package dev.sdserve.sampler;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.sdserve.model.SafeTensors;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;

/**
 * Runs the sampler pipelines of a golden set ({@code golden.json} → {@code pipelines}, {@code golden.safetensors} →
 * {@code pipe.init_noise}, {@code pipe.<name>.noise}, {@code pipe.<name>.latents}) with a model given as an
 * {@link EpsFunction}, and measures how far the trajectory is from diffusers'.
 *
 * <p>The EpsFunction must return the classifier-free guided noise prediction of the golden prompt
 * ({@code pipe.prompt_embeds} / {@code pipe.negative_embeds}, guidance {@code params.pipeline.guidance_scale}).
 */
public final class SamplerConformance {
    /**
     * @param pipeline          golden pipeline name (e.g. "euler_ancestral")
     * @param samplerId         the sampler id that ran it
     * @param evaluations       model evaluations
     * @param stepErrors        ‖latents_i − golden_i‖ / ‖golden_i‖ after each evaluation
     * @param finalRelativeError the error of the final latent (the last of stepErrors)
     */
    public record Result(String pipeline, String samplerId, int evaluations, double[] stepErrors, double finalRelativeError) {
        public double maxStepError() {
            double m = 0;
            for (double e : stepErrors) {
                m = Math.max(m, e);
            }
            return m;
        }
    }

    /** A golden pipeline case with everything needed to run it. */
    public record Case(String pipeline, DiffusersSampler sampler, int steps, float[] initNoise, List<float[]> noise,
                       List<float[]> latents, double[] timesteps, double initNoiseSigma) {
    }

    private SamplerConformance() {
    }

    /** Pipeline names of a golden set, in file order. */
    public static List<String> pipelines(Path goldenDir) throws IOException {
        JsonNode p = json(goldenDir).path("pipelines");
        List<String> out = new ArrayList<>();
        p.fieldNames().forEachRemaining(out::add);
        return out;
    }

    /** The sampler id of a golden pipeline name ("euler_ancestral" is "euler_a"). */
    public static String samplerId(String pipeline) {
        return Samplers.info(pipeline).id();
    }

    /** Loads one pipeline case of a golden set. */
    public static Case load(Path goldenDir, String pipeline) throws IOException {
        JsonNode root = json(goldenDir);
        JsonNode p = root.path("pipelines").path(pipeline);
        if (p.isMissingNode()) {
            throw new IllegalArgumentException("golden set " + goldenDir + " has no pipeline '" + pipeline + "'; it has " + pipelines(goldenDir));
        }
        int steps = root.path("params").path("pipeline").path("num_inference_steps").asInt(-1);
        if (steps < 1) {
            throw new IOException(goldenDir + "/golden.json: params.pipeline.num_inference_steps missing");
        }
        DiffusersSampler sampler = Samplers.create(samplerId(pipeline), SchedulerConfig.fromJson(p.path("config")));
        double[] ts = new double[p.path("timesteps").size()];
        Iterator<JsonNode> it = p.path("timesteps").elements();
        for (int i = 0; it.hasNext(); i++) {
            ts[i] = it.next().asDouble();
        }
        int draws = p.path("noise_draws").asInt(0);
        try (SafeTensors st = SafeTensors.open(goldenDir.resolve("golden.safetensors"))) {
            float[] init = st.floats("pipe.init_noise");
            List<float[]> latents = split(st.floats("pipe." + pipeline + ".latents"), (int) st.shape("pipe." + pipeline + ".latents")[0]);
            List<float[]> noise = draws > 0 ? split(st.floats("pipe." + pipeline + ".noise"), draws) : List.of();
            return new Case(pipeline, sampler, steps, init, noise, latents, ts, p.path("init_noise_sigma").asDouble());
        }
    }

    /** Runs a golden pipeline with the given model and compares every recorded latent. */
    public static Result run(Path goldenDir, String pipeline, EpsFunction model) throws IOException {
        return run(load(goldenDir, pipeline), model);
    }

    public static Result run(Case c, EpsFunction model) {
        ReplayNoise noise = new ReplayNoise(c.noise());
        List<float[]> got = Trajectory.run(c.sampler(), c.steps(), c.initNoise(), noise, model);
        if (got.size() != c.latents().size()) {
            throw new IllegalStateException(c.pipeline() + ": " + got.size() + " evaluations, golden has " + c.latents().size());
        }
        if (noise.used() != c.noise().size()) {
            throw new IllegalStateException(c.pipeline() + ": the sampler drew noise " + noise.used() + " times, the golden run " + c.noise().size());
        }
        double[] errs = new double[got.size()];
        for (int i = 0; i < errs.length; i++) {
            errs[i] = relativeError(got.get(i), c.latents().get(i));
        }
        return new Result(c.pipeline(), c.sampler().id(), got.size(), errs, errs[errs.length - 1]);
    }

    /** ‖a − ref‖ / ‖ref‖. */
    public static double relativeError(float[] a, float[] ref) {
        if (a.length != ref.length) {
            throw new IllegalArgumentException("length " + a.length + " vs " + ref.length);
        }
        double num = 0, den = 0;
        for (int i = 0; i < a.length; i++) {
            double d = (double) a[i] - ref[i];
            num += d * d;
            den += (double) ref[i] * ref[i];
        }
        return Math.sqrt(num / den);
    }

    static List<float[]> split(float[] all, int parts) {
        if (parts <= 0 || all.length % parts != 0) {
            throw new IllegalArgumentException(all.length + " floats do not split into " + parts + " parts");
        }
        int n = all.length / parts;
        List<float[]> out = new ArrayList<>(parts);
        for (int i = 0; i < parts; i++) {
            float[] p = new float[n];
            System.arraycopy(all, i * n, p, 0, n);
            out.add(p);
        }
        return out;
    }

    private static JsonNode json(Path goldenDir) throws IOException {
        Path f = goldenDir.resolve("golden.json");
        if (!Files.isRegularFile(f)) {
            throw new IOException("no golden.json in " + goldenDir);
        }
        return new ObjectMapper().readTree(f.toFile());
    }
}
