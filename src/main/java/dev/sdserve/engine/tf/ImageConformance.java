package dev.sdserve.engine.tf;

import com.fasterxml.jackson.databind.JsonNode;
import dev.sdserve.engine.DenoiseBatch;
import dev.sdserve.engine.DenoiseItem;
import dev.sdserve.engine.LatentShape;
import dev.sdserve.engine.InpaintingInputs;
import dev.sdserve.model.Checkpoint;
import dev.sdserve.model.GoldenSet;
import dev.sdserve.model.ModelConfig;
import dev.sdserve.model.ModelConfigs;
import dev.sdserve.model.SafeTensors;
import dev.sdserve.sampler.DiffusersSampler;
import dev.sdserve.sampler.ImageDraws;
import dev.sdserve.sampler.ImageInit;
import dev.sdserve.sampler.ReplayNoise;
import dev.sdserve.sampler.SamplerState;
import dev.sdserve.sampler.Samplers;
import dev.sdserve.sampler.SchedulerConfig;
import dev.sdserve.sampler.StrengthCut;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * The img2img and inpainting cases of a golden set's {@code ext/} folder ({@code golden-ext.json} /
 * {@code golden-ext.safetensors}, format "golden-ext 1"): for every run in {@code img2img.runs} and
 * {@code inpaint.runs}, the schedule the strength keeps, the VAE posterior samples, the start latent, the latents
 * after every step and the image, computed through the service's own code paths (the draws replayed in the order
 * {@link ImageDraws} makes them, {@link DiffusersSampler#start(int, ImageInit, dev.sdserve.sampler.NoiseSource)},
 * the 9-channel UNet input through {@link DenoiseItem#extraChannels()}). Every number comes from the JSON.
 * Sets without {@code ext/golden-ext.json} have no such cases.
 */
final class ImageConformance {
    static final String EXT_JSON = "ext/golden-ext.json";
    static final String EXT_TENSORS = "ext/golden-ext.safetensors";
    private static final String MAIN = "main";
    private static final String INPAINT = "inpaint9";

    private final Conformance c;
    private final GoldenSet g;
    private final JsonNode ext;
    private final SafeTensors t;
    private final TfEngine engine;
    private final float[] cond;
    private final float[] uncond;

    private ImageConformance(Conformance c, GoldenSet g, JsonNode ext, SafeTensors t, TfEngine engine) throws IOException {
        this.c = c;
        this.g = g;
        this.ext = ext;
        this.t = t;
        this.engine = engine;
        this.cond = g.tensor("pipe.prompt_embeds");
        this.uncond = g.tensor("pipe.negative_embeds");
    }

    /** Runs the cases of the set's {@code ext/} folder, if it has one, recording them on {@code c}. */
    static void run(Conformance c, GoldenSet g) throws IOException {
        Path json = g.dir().resolve(EXT_JSON);
        if (!Files.isRegularFile(json)) {
            return;
        }
        JsonNode ext = ModelConfigs.readJson(json);
        if (!ext.path("format").asText("").startsWith("golden-ext")) {
            c.fail("img2img", json + ": format is '" + ext.path("format").asText() + "', not golden-ext");
            return;
        }
        Map<String, Path> files = new HashMap<>();
        Map<String, ModelConfig> configs = new HashMap<>();
        files.put(MAIN, g.modelFile());
        configs.put(MAIN, g.config());
        String unet9 = ext.path("inpaint").path("unet9_file").asText("");
        if (!unet9.isEmpty()) {
            Path p = json.getParent().resolve(unet9);
            files.put(INPAINT, p);
            try (Checkpoint ck = Checkpoint.open(p, g.json())) {
                configs.put(INPAINT, ck.config());
            } catch (IOException | RuntimeException e) {
                c.fail("inpaint.unet9", p + ": " + e.getMessage());
            }
        }
        try (SafeTensors t = SafeTensors.open(g.dir().resolve(EXT_TENSORS));
             TfEngine engine = new TfEngine(name -> {
                 Path p = files.get(name);
                 if (p == null) {
                     throw dev.sdserve.job.ServeException.notFound("unknown model '" + name + "'");
                 }
                 return p;
             }, p -> p.equals(files.get(INPAINT)) ? configs.get(INPAINT) : configs.get(MAIN), null, null)) {
            ImageConformance ic = new ImageConformance(c, g, ext, t, engine);
            ic.img2img();
            ic.inpaint();
        }
    }

    private int steps(JsonNode run) throws IOException {
        int s = run.path("num_inference_steps").asInt(ext.path("params").path("num_inference_steps").asInt(-1));
        if (s < 1) {
            throw new IOException("golden-ext.json: no num_inference_steps for a run");
        }
        return s;
    }

    private double guidance(JsonNode run) throws IOException {
        double v = run.path("guidance_scale").asDouble(ext.path("params").path("guidance_scale").asDouble(Double.NaN));
        if (Double.isNaN(v)) {
            throw new IOException("golden-ext.json: no guidance_scale for a run");
        }
        return v;
    }

    private DiffusersSampler sampler(String name) {
        JsonNode cfg = ext.path("samplers").path(name).path("config");
        return Samplers.create(name, cfg.isObject() ? SchedulerConfig.fromJson(cfg) : SchedulerConfig.SD15);
    }

    private LatentShape latentShape() {
        JsonNode p = ext.path("params");
        int f = g.config().vae().downscale();
        int h = p.path("latent_height").asInt(p.path("height").asInt() / f);
        int w = p.path("latent_width").asInt(p.path("width").asInt() / f);
        return new LatentShape(g.config().vae().latentChannels(), h, w);
    }

    /** The recorded draws of a run, checked against the order the service draws them in. */
    private ReplayNoise draws(String name, JsonNode run, List<String> serviceOrder) throws IOException {
        List<float[]> rows = rows(name + ".draws");
        JsonNode d = run.path("draws");
        if (d.size() != rows.size()) {
            throw new IOException(name + ": " + d.size() + " draws named, " + rows.size() + " recorded");
        }
        for (int i = 0; i < serviceOrder.size(); i++) {
            String want = d.get(i).path("name").asText();
            if (!want.equals(serviceOrder.get(i))) {
                throw new IllegalStateException(name + ": draw " + i + " is '" + want + "' in the golden run, the service"
                        + " draws '" + serviceOrder.get(i) + "' there (service order " + serviceOrder + ")");
            }
        }
        return new ReplayNoise(rows);
    }

    private List<float[]> rows(String name) throws IOException {
        float[] all = t.floats(name);
        int n = (int) t.shape(name)[0];
        int per = all.length / n;
        List<float[]> r = new ArrayList<>(n);
        for (int i = 0; i < n; i++) {
            r.add(Arrays.copyOfRange(all, i * per, (i + 1) * per));
        }
        return r;
    }

    // ---------------------------------------------------------------- img2img

    private void img2img() throws IOException {
        JsonNode sec = ext.path("img2img");
        if (!sec.path("runs").isObject()) {
            return;
        }
        LatentShape shape = latentShape();
        float[] image = t.floats("img2img.init_image");
        c.safely("img2img.init_latent_mean", Conformance.CALL_TOLERANCE, () -> Conformance.err(
                engine.encodeImage(MAIN, shape, List.of(image), java.util.Collections.singletonList(null)),
                t.floats("img2img.init_latent_mean")));
        boolean first = true;
        for (var e : iterable(sec.path("runs").fields())) {
            String name = e.getKey();
            JsonNode run = e.getValue();
            if (first && t.has("img2img.init_latent")) {
                first = false;
                c.safely("img2img.init_latent", Conformance.CALL_TOLERANCE, () -> {
                    ImageDraws d = ImageDraws.img2img(new ReplayNoise(rows(name + ".draws")), shape.size());
                    return Conformance.err(engine.encodeImage(MAIN, shape, List.of(image), List.of(d.imagePosterior())),
                            t.floats("img2img.init_latent"));
                });
            }
            img2imgRun(name, run, shape, image);
        }
    }

    private void img2imgRun(String name, JsonNode run, LatentShape shape, float[] image) {
        c.safely(name + ".schedule", 0, () -> scheduleError(name, run));
        c.safely(name + ".start_latent", Conformance.CALL_TOLERANCE, () -> {
            int steps = steps(run);
            double guidance = guidance(run);
            DiffusersSampler s = sampler(run.path("sampler").asText());
            ReplayNoise replay = draws(name, run, List.of(ImageDraws.IMAGE, ImageDraws.NOISE));
            ImageDraws d = ImageDraws.img2img(replay, shape.size());
            float[] latent = engine.encodeImage(MAIN, shape, List.of(image), List.of(d.imagePosterior()))[0];
            SamplerState st = s.start(steps, ImageInit.img2img(latent, d.latentNoise(), run.path("strength").asDouble()), replay);
            float[] startLatent = st.latents();
            pending.put(name, trajectory(st, MAIN, shape, guidance, null));
            allUsed(name, replay);
            return Conformance.err(startLatent, t.floats(name + ".start_latent"));
        });
        latentsAndImage(name, MAIN, shape);
    }

    private void allUsed(String name, ReplayNoise replay) {
        long recorded = t.shape(name + ".draws")[0];
        if (replay.used() != recorded) {
            throw new IllegalStateException(name + ": the run used " + replay.used() + " draws, the golden run " + recorded);
        }
    }

    /** Trajectories computed by a run's first case, checked by the following ones. */
    private final Map<String, List<float[]>> pending = new HashMap<>();

    private void latentsAndImage(String name, String model, LatentShape shape) {
        c.safely(name + ".latents", Conformance.PIPELINE_TOLERANCE, () -> {
            List<float[]> got = need(name);
            return Conformance.err(got.toArray(float[][]::new), t.floats(name + ".latents"));
        });
        c.safely(name + ".image", Conformance.PIPELINE_TOLERANCE, () -> {
            List<float[]> got = need(name);
            return Conformance.err(engine.decode(model, shape, List.of(got.get(got.size() - 1))), t.floats(name + ".image"));
        });
    }

    private List<float[]> need(String name) {
        List<float[]> got = pending.get(name);
        if (got == null) {
            throw new IllegalStateException("the trajectory failed");
        }
        return got;
    }

    /** 0 when the steps kept, the begin index, the timesteps run and the noising timestep are the JSON's; else 1. */
    private double scheduleError(String name, JsonNode run) throws IOException {
        DiffusersSampler s = sampler(run.path("sampler").asText());
        int steps = steps(run);
        StrengthCut cut = s.strengthCut(steps, run.path("strength").asDouble());
        List<String> bad = new ArrayList<>();
        if (run.has("init_timestep") && cut.keptSteps() != run.get("init_timestep").asInt()) {
            bad.add("init_timestep " + cut.keptSteps() + " ≠ " + run.get("init_timestep").asInt());
        }
        int order = run.path("scheduler_order").asInt(s.order());
        if (run.has("t_start") && cut.beginIndex() != run.get("t_start").asInt() * order) {
            bad.add("begin index " + cut.beginIndex() + " ≠ t_start·order " + run.get("t_start").asInt() * order);
        }
        double[] ts = s.plan(steps).timesteps();
        JsonNode want = run.path("timesteps");
        if (want.size() != cut.evaluations()) {
            bad.add(cut.evaluations() + " evaluations, the run has " + want.size() + " timesteps");
        } else {
            for (int i = 0; i < want.size(); i++) {
                if (Math.abs(ts[cut.beginIndex() + i] - want.get(i).asDouble()) > 1e-3) {
                    bad.add("timestep " + i + " " + ts[cut.beginIndex() + i] + " ≠ " + want.get(i).asDouble());
                    break;
                }
            }
        }
        JsonNode an = run.path("add_noise_timestep");
        if (an.size() > 0 && Math.abs(an.get(0).asDouble() - cut.firstTimestep()) > 1e-3) {
            bad.add("noised at timestep " + cut.firstTimestep() + " ≠ " + an.get(0).asDouble());
        }
        if (!bad.isEmpty()) {
            throw new IllegalStateException(name + ": " + String.join("; ", bad));
        }
        return 0;
    }

    private List<float[]> trajectory(SamplerState st, String model, LatentShape shape, double guidance, float[] extra) {
        List<float[]> out = new ArrayList<>();
        while (!st.done()) {
            DenoiseItem it = new DenoiseItem(st.modelInput().clone(), st.timestep(), cond, uncond, guidance, null).withExtraChannels(extra);
            st.advance(engine.denoise(new DenoiseBatch(model, shape, List.of(it)))[0]);
            out.add(st.latents());
        }
        return out;
    }

    // ---------------------------------------------------------------- inpainting

    private void inpaint() throws IOException {
        JsonNode sec = ext.path("inpaint");
        if (!sec.path("runs").isObject()) {
            return;
        }
        LatentShape shape = latentShape();
        int f = g.config().vae().downscale();
        int h = shape.height() * f, w = shape.width() * f;
        float[] image = t.floats(sec.path("pipeline").path("image").asText("img2img.init_image"));
        float[] mask = t.floats(sec.path("pipeline").path("mask_image").asText("inpaint.mask"));
        float[] binary = InpaintingInputs.binarize(mask);
        float[] maskLatent = InpaintingInputs.latentMask(binary, w, h, shape.width(), shape.height());
        float[] masked = InpaintingInputs.maskedImage(image, binary);
        c.safely("inpaint.mask_latent", Conformance.CALL_TOLERANCE, () -> Conformance.err(maskLatent, t.floats("inpaint.mask_latent")));
        if (t.has("inpaint.masked_image")) {
            c.safely("inpaint.masked_image", Conformance.CALL_TOLERANCE, () -> {
                float[] m11 = new float[masked.length];
                for (int i = 0; i < m11.length; i++) {
                    m11[i] = masked[i] * 2f - 1f;
                }
                return Conformance.err(m11, t.floats("inpaint.masked_image"));
            });
        }
        for (var e : iterable(sec.path("runs").fields())) {
            String name = e.getKey();
            JsonNode run = e.getValue();
            boolean unet9 = run.path("unet_in_channels").asInt(4) > shape.channels();
            String model = unet9 ? INPAINT : MAIN;
            c.safely(name + ".masked_image_latents", Conformance.CALL_TOLERANCE, () -> {
                int steps = steps(run);
                double guidance = guidance(run);
                double strength = run.path("strength").asDouble(sec.path("strength").asDouble(1.0));
                DiffusersSampler s = sampler(run.path("sampler").asText());
                ReplayNoise replay = new ReplayNoise(rows(name + ".draws"));
                ImageDraws d = ImageDraws.inpaint(replay, shape.size(), unet9, strength);
                draws(name, run, d.names()); // the service's order is the golden run's
                float[] imageLatent = d.imagePosterior() == null ? null
                        : engine.encodeImage(model, shape, List.of(image), List.of(d.imagePosterior()))[0];
                float[] maskedLatent = engine.encodeImage(model, shape, List.of(masked), List.of(d.maskedPosterior()))[0];
                float[] extra = null;
                ImageInit init;
                if (unet9) {
                    extra = InpaintingInputs.extraChannels(maskLatent, maskedLatent);
                    init = ImageInit.inpaint(imageLatent, d.latentNoise(), strength, null);
                } else {
                    init = ImageInit.inpaint(imageLatent, d.latentNoise(), strength, maskLatent);
                }
                SamplerState st = s.start(steps, init, replay);
                pending.put(name, trajectory(st, model, shape, guidance, extra));
                allUsed(name, replay);
                return Conformance.err(maskedLatent, t.floats(name + ".masked_image_latents"));
            });
            latentsAndImage(name, model, shape);
        }
    }

    private static <T> Iterable<T> iterable(java.util.Iterator<T> it) {
        return () -> it;
    }
}
