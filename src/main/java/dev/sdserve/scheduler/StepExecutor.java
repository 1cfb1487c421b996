package dev.sdserve.scheduler;

import dev.sdserve.clock.Clock;
import dev.sdserve.engine.Conditioning;
import dev.sdserve.engine.DeepCache;
import dev.sdserve.engine.DenoiseBatch;
import dev.sdserve.engine.DenoiseItem;
import dev.sdserve.engine.EncodeItem;
import dev.sdserve.engine.Engine;
import dev.sdserve.engine.InpaintingInputs;
import dev.sdserve.engine.Stage;
import dev.sdserve.image.ImageInputs;
import dev.sdserve.job.ImageOptions;
import dev.sdserve.sampler.ImageDraws;
import dev.sdserve.sampler.ImageInit;
import dev.sdserve.job.ServeException;
import dev.sdserve.sampler.NoiseSource;
import dev.sdserve.sampler.SamplerState;
import dev.sdserve.scheduler.StepPlan.DecodeMember;
import dev.sdserve.scheduler.StepPlan.DenoiseMember;
import dev.sdserve.scheduler.StepPlan.EncodeMember;
import dev.sdserve.scheduler.StepPlan.ImageEncodeMember;
import dev.sdserve.scheduler.StepResult.EngineCall;
import dev.sdserve.scheduler.StepResult.Outcome;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.function.IntConsumer;
import java.util.logging.Level;
import java.util.logging.Logger;
import java.util.stream.IntStream;

/**
 * Runs a {@link StepPlan} on the {@link Engine} and answers with a {@link StepResult}; decides nothing. Around the
 * engine call it does the per-image sampler maths (initial noise and sampler states after text encoding; model
 * inputs and updates around a denoising step), spread over cores for large batches.
 *
 * <p>Failure isolation: an engine failure (a runtime exception, or an OutOfMemoryError: a batch too large for the
 * device) splits the batch in halves, down to single requests; a single request that fails is retried once before
 * it fails, so a transient fault costs a step and a poisonous request fails alone. Engine calls happen before any
 * state is advanced, so a retry repeats the same step. Runs on the scheduler thread, outside the scheduler's lock.
 */
final class StepExecutor {
    private static final Logger LOG = Logger.getLogger(StepExecutor.class.getName());

    private final Engine engine;
    private final ServiceConfig config;
    private final Clock clock;
    private final SchedulerStats stats;
    private final TextEmbeddingCache textCache;

    StepExecutor(Engine engine, ServiceConfig config, Clock clock, SchedulerStats stats, TextEmbeddingCache textCache) {
        this.engine = engine;
        this.config = config;
        this.clock = clock;
        this.stats = stats;
        this.textCache = textCache;
    }

    StepResult execute(StepPlan plan) {
        Outcome[] out = new Outcome[plan.members().size()];
        List<EngineCall> calls = new ArrayList<>();
        List<Integer> all = new ArrayList<>(out.length);
        for (int i = 0; i < out.length; i++) {
            all.add(i);
        }
        switch (plan.stage()) {
            case ENCODE -> isolated(all, ix -> encode(plan, ix, out, calls), "text encoding", out);
            case DENOISE -> isolated(all, ix -> denoise(plan, ix, out, calls), "a denoising step", out);
            case DECODE -> {
                List<Integer> vae = new ArrayList<>(), readout = new ArrayList<>();
                for (int i : all) {
                    (((DecodeMember) plan.members().get(i)).readout() == null ? vae : readout).add(i);
                }
                if (!vae.isEmpty()) {
                    isolated(vae, ix -> decode(plan, ix, out, calls), "decoding", out);
                }
                if (!readout.isEmpty()) {
                    isolated(readout, ix -> decoderPreview(plan, ix, out, calls), "a decoder preview", out);
                }
            }
            case IMAGE_ENCODE -> isolated(all, ix -> imageEncode(plan, ix, out, calls), "encoding the init image", out);
        }
        return new StepResult(Arrays.asList(out), calls);
    }

    /** One engine call for some of the plan's members (their indices). */
    private interface Call {
        void run(List<Integer> members);
    }

    private void isolated(List<Integer> members, Call call, String what, Outcome[] out) {
        isolated(members, call, what, false, out);
    }

    private void isolated(List<Integer> members, Call call, String what, boolean retried, Outcome[] out) {
        try {
            call.run(members);
        } catch (RuntimeException | OutOfMemoryError e) {
            if (members.size() > 1 && config.splitFailedBatches) {
                stats.splitRetries.incrementAndGet();
                LOG.log(Level.WARNING, what + " of " + members.size() + " jobs failed (" + e + "); retrying split in halves");
                int h = members.size() / 2;
                isolated(new ArrayList<>(members.subList(0, h)), call, what, false, out);
                isolated(new ArrayList<>(members.subList(h, members.size())), call, what, false, out);
            } else if (!retried && config.splitFailedBatches) {
                stats.splitRetries.incrementAndGet();
                LOG.log(Level.WARNING, what + " of " + members.size() + " job(s) failed (" + e + "); retrying once");
                isolated(members, call, what, true, out);
            } else {
                LOG.log(Level.WARNING, what + " failed for " + members.size() + " job(s)", e);
                // a ServeException from the engine (unknown LoRA, LoRA for another architecture, model that cannot
                // be loaded) keeps its code and message
                ServeException error = e instanceof ServeException se ? se
                        : new ServeException(ServeException.Code.INTERNAL, "the engine failed during " + what + ": " + e.getMessage());
                for (int i : members) {
                    out[i] = Outcome.failed(error);
                }
            }
        }
    }

    private void encode(StepPlan plan, List<Integer> ix, Outcome[] out, List<EngineCall> calls) {
        List<EncodeMember> ms = new ArrayList<>(ix.size());
        List<EncodeItem> items = new ArrayList<>();
        for (int i : ix) {
            EncodeMember m = (EncodeMember) plan.members().get(i);
            ms.add(m);
            items.addAll(m.prompts());
        }
        long t0 = clock.nanoTime();
        List<Conditioning> encoded = textCache.enabled() ? encodeCached(plan.model(), items, calls)
                : encodeAll(plan.model(), items, calls);
        float[][] conds = encoded.stream().map(Conditioning::context).toArray(float[][]::new);
        float[][] pooled = pooled(encoded);
        double millis = clock.millisSince(t0);
        long s0 = config.statsTimer.getAsLong();
        List<SamplerState[]> states = new ArrayList<>(ms.size());
        for (EncodeMember m : ms) {
            SamplerState[] st = new SamplerState[m.seeds().size()];
            for (int i = 0; i < st.length; i++) {
                NoiseSource noise = config.noise.apply(m.seeds().get(i));
                float[] init = new float[m.shape().size()];
                noise.fill(init);
                st[i] = m.sampler().start(m.steps(), init, noise);
            }
            states.add(st);
        }
        stats.samplerNanos.addAndGet(config.statsTimer.getAsLong() - s0);
        long now = clock.nanoTime();
        int k = 0;
        for (int j = 0; j < ms.size(); j++) {
            int n = ms.get(j).prompts().size();
            out[ix.get(j)] = new Outcome(null, millis, now, Arrays.copyOfRange(conds, k, k + n), states.get(j), null,
                    pooled == null ? null : Arrays.copyOfRange(pooled, k, k + n), null);
            k += n;
        }
    }

    private void denoise(StepPlan plan, List<Integer> ix, Outcome[] out, List<EngineCall> calls) {
        long s0 = config.statsTimer.getAsLong();
        List<SamplerState> flat = new ArrayList<>();
        List<StepPlan.StepOptions> options = new ArrayList<>();
        List<float[]> extra = new ArrayList<>();
        for (int i : ix) {
            DenoiseMember m = (DenoiseMember) plan.members().get(i);
            for (int j = 0; j < m.states().length; j++) {
                flat.add(m.states()[j]);
                options.add(m.options());
                extra.add(m.extraChannels() == null ? null : m.extraChannels()[j]);
            }
        }
        // Sampler maths is per image and independent: spread it over cores for large batches.
        float[][] inputs = new float[flat.size()][];
        forEachImage(flat.size(), i -> inputs[i] = flat.get(i).modelInput());
        List<DenoiseItem> items = new ArrayList<>(flat.size());
        for (int i = 0; i < flat.size(); i++) {
            StepPlan.StepOptions o = options.get(i);
            DenoiseItem item = new DenoiseItem(inputs[i], flat.get(i).timestep(), o.cond(), o.uncond(), o.guidance(), o.loras());
            items.add(extra.get(i) == null ? item : item.withExtraChannels(extra.get(i)));
        }
        addConditioning(items, options);
        mergeTokens(items, options);
        stats.samplerNanos.addAndGet(config.statsTimer.getAsLong() - s0);
        DenoiseBatch batch = new DenoiseBatch(plan.model(), plan.shape(), items);
        List<DeepCache.Step> deep = deepCacheSteps(plan, ix);
        long t0 = clock.nanoTime();
        long r0 = config.statsTimer.getAsLong();
        float[][] eps = deep == null ? engine.denoise(batch) : engine.denoise(batch, deep);
        stats.engineNanos.addAndGet(config.statsTimer.getAsLong() - r0);
        double millis = clock.millisSince(t0);
        boolean shallow = deep != null && deep.stream().allMatch(s -> s != null && s.shallow());
        calls.add(new EngineCall(Stage.DENOISE, plan.model(), plan.shape(), batch.unetSamples(), millis, clock.nanoTime(),
                shallow));
        stats.denoiseCalls.incrementAndGet();
        stats.denoiseJobs.addAndGet(ix.size());
        stats.denoiseLatents.addAndGet(batch.unetSamples());
        if (eps.length != items.size()) {
            throw new IllegalStateException("engine returned " + eps.length + " predictions for " + items.size() + " samples");
        }
        long s1 = config.statsTimer.getAsLong();
        forEachImage(flat.size(), i -> flat.get(i).advance(eps[i]));
        stats.samplerNanos.addAndGet(config.statsTimer.getAsLong() - s1);
        long now = clock.nanoTime();
        for (int i : ix) {
            out[i] = new Outcome(null, millis, now, null, null, null);
        }
    }

    private void decode(StepPlan plan, List<Integer> ix, Outcome[] out, List<EngineCall> calls) {
        Sliced r = latentCall(plan, ix, Stage.DECODE, "images",
                latents -> engine.decode(plan.model(), plan.shape(), latents), calls);
        stats.decodeCalls.incrementAndGet();
        for (int j = 0; j < ix.size(); j++) {
            DecodeMember m = (DecodeMember) plan.members().get(ix.get(j));
            float[][] mine = r.perMember().get(j);
            if (m.overlay() != null) { // inpainting: the original back outside the mask
                for (int q = 0; q < mine.length; q++) {
                    boolean rendered = mine[q].length == m.overlay().width() * m.overlay().height() * 3;
                    mine[q] = rendered ? ImageInputs.finish(m.overlay(), true, mine[q]) : mine[q];
                }
            }
            out[ix.get(j)] = new Outcome(null, r.millis(), r.endNanos(), null, null, List.of(mine));
        }
    }

    /**
     * Decoder previews (members with a readout): one engine call per readout (a model has one; a refit between two
     * requests' admissions could give two), RGB per latent cell, costed as {@link Stage#PREVIEW}.
     */
    private void decoderPreview(StepPlan plan, List<Integer> ix, Outcome[] out, List<EngineCall> calls) {
        Map<dev.sdserve.engine.projection.LatentProjection, List<Integer>> byReadout = new java.util.LinkedHashMap<>();
        for (int i : ix) {
            byReadout.computeIfAbsent(((DecodeMember) plan.members().get(i)).readout(), k -> new ArrayList<>()).add(i);
        }
        for (var e : byReadout.entrySet()) {
            Sliced r = latentCall(plan, e.getValue(), Stage.PREVIEW, "previews",
                    latents -> engine.decoderPreview(plan.model(), plan.shape(), latents, e.getKey()), calls);
            for (int j = 0; j < e.getValue().size(); j++) {
                out[e.getValue().get(j)] = new Outcome(null, r.millis(), r.endNanos(), null, null,
                        List.of(r.perMember().get(j)));
            }
        }
    }

    /** An engine call's outputs sliced per member (in the members' order), its duration and its end. */
    private record Sliced(List<float[][]> perMember, double millis, long endNanos) {
    }

    /**
     * One engine call over the decode members' latents (in member order), timed and recorded as a {@code stage}
     * call; its outputs (one per latent) sliced back to the members.
     */
    private Sliced latentCall(StepPlan plan, List<Integer> ix, Stage stage, String what,
                              java.util.function.Function<List<float[]>, float[][]> call, List<EngineCall> calls) {
        List<float[]> latents = new ArrayList<>();
        for (int i : ix) {
            latents.addAll(((DecodeMember) plan.members().get(i)).latents());
        }
        long t0 = clock.nanoTime();
        long r0 = config.statsTimer.getAsLong();
        float[][] results = call.apply(latents);
        stats.engineNanos.addAndGet(config.statsTimer.getAsLong() - r0);
        double millis = clock.millisSince(t0);
        calls.add(new EngineCall(stage, plan.model(), plan.shape(), latents.size(), millis, clock.nanoTime()));
        if (results.length != latents.size()) {
            throw new IllegalStateException("engine returned " + results.length + " " + what + " for " + latents.size() + " latents");
        }
        List<float[][]> perMember = new ArrayList<>(ix.size());
        int k = 0;
        for (int i : ix) {
            int n = ((DecodeMember) plan.members().get(i)).latents().size();
            perMember.add(Arrays.copyOfRange(results, k, k + n));
            k += n;
        }
        return new Sliced(perMember, millis, clock.nanoTime());
    }

    /** One text-encoder call for every item (the cache off). */
    private List<Conditioning> encodeAll(String model, List<EncodeItem> items, List<EngineCall> calls) {
        long t0 = clock.nanoTime();
        long r0 = config.statsTimer.getAsLong();
        List<Conditioning> encoded = engine.encodeConditioning(model, items);
        stats.engineNanos.addAndGet(config.statsTimer.getAsLong() - r0);
        calls.add(new EngineCall(Stage.ENCODE, model, null, items.size(), clock.millisSince(t0), clock.nanoTime()));
        stats.encodeCalls.incrementAndGet();
        if (encoded.size() != items.size()) {
            throw new IllegalStateException("engine returned " + encoded.size() + " conditionings for " + items.size() + " prompts");
        }
        return encoded;
    }

    /**
     * The cached items from the text-embedding cache, the others from one text-encoder call (none when every item
     * is cached: no engine call, nothing for the cost model to learn), which fills the cache.
     */
    private List<Conditioning> encodeCached(String model, List<EncodeItem> items, List<EngineCall> calls) {
        Conditioning[] out = new Conditioning[items.size()];
        List<EncodeItem> misses = new ArrayList<>();
        List<Integer> missAt = new ArrayList<>();
        for (int i = 0; i < out.length; i++) {
            out[i] = textCache.get(model, items.get(i));
            if (out[i] == null) {
                misses.add(items.get(i));
                missAt.add(i);
            }
        }
        if (!misses.isEmpty()) {
            List<Conditioning> encoded = encodeAll(model, misses, calls);
            for (int j = 0; j < misses.size(); j++) {
                out[missAt.get(j)] = encoded.get(j);
                textCache.put(model, misses.get(j), encoded.get(j));
            }
        }
        return Arrays.asList(out);
    }

    /**
     * The DeepCache step of every image of the members, in the batch's order (null entries for members without
     * DeepCache); null when no member uses it.
     */
    private static List<DeepCache.Step> deepCacheSteps(StepPlan plan, List<Integer> ix) {
        List<DeepCache.Step> steps = new ArrayList<>();
        boolean any = false;
        for (int i : ix) {
            DenoiseMember m = (DenoiseMember) plan.members().get(i);
            DeepCache.Step[] s = m.options().deepCache();
            any |= s != null;
            for (int j = 0; j < m.states().length; j++) {
                steps.add(s == null ? null : s[j]);
            }
        }
        return any ? steps : null;
    }

    /** The pooled embeddings of an encode call, one per item; null when no item has one (SD 1.x / 2.x). */
    private static float[][] pooled(List<Conditioning> encoded) {
        if (encoded.stream().allMatch(c -> c.pooled() == null)) {
            return null;
        }
        return encoded.stream().map(Conditioning::pooled).toArray(float[][]::new);
    }

    /** Gives each item its step options' added conditioning (SDXL's pooled embedding and size, both sides). */
    private static void addConditioning(List<DenoiseItem> items, List<StepPlan.StepOptions> options) {
        for (int i = 0; i < items.size(); i++) {
            StepPlan.StepOptions o = options.get(i);
            if (o.added() != null) {
                DenoiseItem it = items.get(i);
                items.set(i, new DenoiseItem(it.latentInput(), it.timestep(), it.cond(), it.uncond(), it.guidance(),
                        it.loras(), o.added(), o.addedUncond(), it.extraChannels()));
            }
        }
    }

    /** Gives each item its step options' token merging ratio (when it has one). */
    private static void mergeTokens(List<DenoiseItem> items, List<StepPlan.StepOptions> options) {
        for (int i = 0; i < items.size(); i++) {
            if (options.get(i).tokenMerging() > 0) {
                items.set(i, items.get(i).withTokenMerging(options.get(i).tokenMerging()));
            }
        }
    }

    /**
     * img2img / inpainting: draws each image's posterior and latent noise from its seed's generator in diffusers'
     * order ({@link ImageDraws}), encodes the init images (and, for an inpainting UNet, the masked images) in one VAE
     * call, and starts the sampler states at the strength; the generator goes on drawing the step noise.
     */
    private void imageEncode(StepPlan plan, List<Integer> ix, Outcome[] out, List<EngineCall> calls) {
        long s0 = config.statsTimer.getAsLong();
        List<float[]> pixels = new ArrayList<>();
        List<float[]> eps = new ArrayList<>();
        List<ImageDraws[]> draws = new ArrayList<>(ix.size());
        List<NoiseSource[]> sources = new ArrayList<>(ix.size());
        for (int i : ix) {
            ImageEncodeMember m = (ImageEncodeMember) plan.members().get(i);
            int size = m.shape().size();
            ImageDraws[] d = new ImageDraws[m.seeds().size()];
            NoiseSource[] src = new NoiseSource[d.length];
            for (int j = 0; j < d.length; j++) {
                src[j] = config.noise.apply(m.seeds().get(j));
                d[j] = m.image().inpainting() ? ImageDraws.inpaint(src[j], size, m.inpaintingUnet(), m.strength())
                        : ImageDraws.img2img(src[j], size);
                if (d[j].imagePosterior() != null) {
                    pixels.add(m.image().pixels());
                    eps.add(d[j].imagePosterior());
                }
                if (m.inpaintingUnet()) { // a 4-channel UNet never reads the masked image's latent: drawn, not encoded
                    pixels.add(m.image().maskedPixels());
                    eps.add(d[j].maskedPosterior());
                }
            }
            draws.add(d);
            sources.add(src);
        }
        stats.samplerNanos.addAndGet(config.statsTimer.getAsLong() - s0);
        long t0 = clock.nanoTime();
        long r0 = config.statsTimer.getAsLong();
        float[][] latents = pixels.isEmpty() ? new float[0][] : engine.encodeImage(plan.model(), plan.shape(), pixels, eps);
        stats.engineNanos.addAndGet(config.statsTimer.getAsLong() - r0);
        double millis = clock.millisSince(t0);
        if (!pixels.isEmpty()) {
            calls.add(new EngineCall(Stage.IMAGE_ENCODE, plan.model(), plan.shape(), pixels.size(), millis, clock.nanoTime()));
        }
        if (latents.length != pixels.size()) {
            throw new IllegalStateException("engine returned " + latents.length + " latents for " + pixels.size() + " images");
        }
        long s1 = config.statsTimer.getAsLong();
        long now = clock.nanoTime();
        int k = 0;
        for (int x = 0; x < ix.size(); x++) {
            ImageEncodeMember m = (ImageEncodeMember) plan.members().get(ix.get(x));
            ImageDraws[] d = draws.get(x);
            SamplerState[] st = new SamplerState[d.length];
            float[][] extra = m.inpaintingUnet() ? new float[d.length][] : null;
            for (int j = 0; j < d.length; j++) {
                float[] imageLatent = d[j].imagePosterior() != null ? latents[k++] : null;
                float[] maskLatent = m.image().maskLatent();
                ImageInit init;
                if (!m.image().inpainting()) {
                    init = ImageInit.img2img(imageLatent, d[j].latentNoise(), m.strength());
                } else {
                    if (imageLatent != null) {
                        fillLatent(imageLatent, d[j].latentNoise(), maskLatent, m.inpaintingFill());
                    }
                    if (m.inpaintingUnet()) {
                        extra[j] = InpaintingInputs.extraChannels(maskLatent, latents[k++]);
                    }
                    init = ImageInit.inpaint(imageLatent, d[j].latentNoise(), m.strength(),
                            m.inpaintingUnet() ? null : maskLatent);
                }
                st[j] = m.sampler().start(m.steps(), init, sources.get(x)[j]);
            }
            out[ix.get(x)] = new Outcome(null, millis, now, null, st, null, null, extra);
        }
        stats.samplerNanos.addAndGet(config.statsTimer.getAsLong() - s1);
    }

    /**
     * A1111's latent-side inpainting fills (in place): 2 "latent noise" puts the request's latent noise in the masked
     * region of the image latent, 3 "latent nothing" zeros; 0 and 1 were applied to the pixels.
     */
    static void fillLatent(float[] latent, float[] noise, float[] maskLatent, int fill) {
        if (fill != ImageOptions.LATENT_NOISE && fill != ImageOptions.LATENT_NOTHING) {
            return;
        }
        int cells = maskLatent.length;
        for (int i = 0; i < latent.length; i++) {
            float m = maskLatent[i % cells];
            float filled = fill == ImageOptions.LATENT_NOISE ? noise[i] : 0f;
            latent[i] = latent[i] * (1f - m) + filled * m;
        }
    }

    private void forEachImage(int n, IntConsumer body) {
        if (n >= config.parallelSamplerImages && config.parallelSamplerImages > 0) {
            IntStream.range(0, n).parallel().forEach(body);
        } else {
            for (int i = 0; i < n; i++) {
                body.accept(i);
            }
        }
    }
}
