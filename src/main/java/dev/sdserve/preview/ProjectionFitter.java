package dev.sdserve.preview;

import dev.sdserve.engine.DenoiseBatch;
import dev.sdserve.engine.DenoiseItem;
import dev.sdserve.engine.EncodeItem;
import dev.sdserve.engine.Engine;
import dev.sdserve.engine.LatentShape;
import dev.sdserve.engine.ModelInfo;
import dev.sdserve.sampler.Sampler;
import dev.sdserve.sampler.SamplerState;
import dev.sdserve.sampler.Samplers;
import dev.sdserve.sampler.TorchGenerator;

import java.util.ArrayList;
import java.util.List;

/**
 * Fits a model's preview projection against its own VAE: a few short guided denoising runs (fixed prompts and seeds,
 * all in one UNet batch per step) give denoised estimates x̂0 like the ones previews show, early and late; the VAE
 * decodes some of them and {@link ProjectionFit} solves for the affine map. Deterministic for a model file.
 */
public final class ProjectionFitter {
    /** Prompts of the runs: varied colours and scenes, the demo model's grammar included; one empty. */
    public static final List<String> PROMPTS = List.of(
            "a big red circle in the center, blue background",
            "a yellow square on the left, green background",
            "a white triangle at the top, black background",
            "a purple ring on the right, orange background",
            "a photo of a mountain lake at sunset",
            "");

    /**
     * @param prompts    one run per prompt
     * @param seed       run i starts from the noise of seed + i
     * @param steps      denoising steps of each run
     * @param guidance   classifier-free guidance scale
     * @param latentEdge latent edge of the runs (at most the model's default; small keeps the fit cheap on big models)
     * @param decodeEvery decode the x̂0 of every n-th evaluation (counting from 1: n, 2n, …, and always the last)
     * @param sampler    sampler id (the model's own prediction type is the caller's: see {@link #fit(Engine, String, Sampler, Settings)})
     */
    public record Settings(List<String> prompts, long seed, int steps, double guidance, int latentEdge,
                           int decodeEvery, String sampler) {
        public static Settings defaults() {
            return new Settings(PROMPTS, 20240, 6, 5.0, 16, 2, "dpmpp_2m");
        }
    }

    /** The fitted map and how it was made. */
    public record Result(LatentProjection projection, double residualMean255, double fallbackMean255, long samples,
                         int latentsDecoded, LatentShape shape, double millis, double unetMillis, double decodeMillis) {
    }

    private ProjectionFitter() {
    }

    public static Result fit(Engine engine, String model, Settings s) {
        return fit(engine, model, Samplers.create(s.sampler()), s);
    }

    /**
     * Runs the fit on the engine (blocking; seconds on big models).
     *
     * @param sampler the sampler on the model's own scheduler config (prediction type), so that x̂0 is right
     */
    public static Result fit(Engine engine, String model, Sampler sampler, Settings s) {
        long t0 = System.nanoTime();
        ModelInfo info = engine.describe(model);
        int defaultEdge = Math.max(1, info.defaultImageSize() / info.vaeScale());
        int edge = Math.max(1, Math.min(s.latentEdge(), defaultEdge));
        LatentShape shape = new LatentShape(info.latentChannels(), edge, edge);
        int runs = s.prompts().size();
        List<EncodeItem> texts = new ArrayList<>();
        for (String p : s.prompts()) {
            texts.add(new EncodeItem(p));
        }
        texts.add(new EncodeItem(""));
        float[][] ctx = engine.encode(model, texts);
        float[] uncond = ctx[runs];
        SamplerState[] states = new SamplerState[runs];
        for (int i = 0; i < runs; i++) {
            float[] noise = new float[shape.size()];
            new TorchGenerator(s.seed() + i).fill(noise);
            states[i] = sampler.start(s.steps(), noise, new TorchGenerator(s.seed() + 1000 + i));
        }
        List<float[]> latents = new ArrayList<>();
        long unet = 0;
        int evals = states[0].totalEvaluations();
        for (int k = 0; k < evals; k++) {
            List<DenoiseItem> items = new ArrayList<>(runs);
            for (int i = 0; i < runs; i++) {
                items.add(new DenoiseItem(states[i].modelInput().clone(), states[i].timestep(), ctx[i], uncond,
                        s.guidance(), List.of()));
            }
            long u0 = System.nanoTime();
            float[][] out = engine.denoise(new DenoiseBatch(model, shape, items));
            unet += System.nanoTime() - u0;
            boolean keep = (k + 1) % Math.max(1, s.decodeEvery()) == 0 || k == evals - 1;
            for (int i = 0; i < runs; i++) {
                states[i].advance(out[i]);
                if (keep) {
                    latents.add(states[i].denoised());
                }
            }
        }
        long d0 = System.nanoTime();
        int pw = shape.width() * info.vaeScale(), ph = shape.height() * info.vaeScale();
        ProjectionFit fit = new ProjectionFit(shape.channels());
        for (int from = 0; from < latents.size(); from += runs) {
            List<float[]> chunk = latents.subList(from, Math.min(latents.size(), from + runs));
            float[][] images = engine.decode(model, shape, chunk);
            for (int j = 0; j < chunk.size(); j++) {
                fit.add(chunk.get(j), shape, images[j], pw, ph);
            }
        }
        long decode = System.nanoTime() - d0;
        LatentProjection p = fit.solve();
        return new Result(p, fit.meanAbs255(p), fit.meanAbs255(LatentProjection.SD1_CHEAP), fit.samples(),
                latents.size(), shape, (System.nanoTime() - t0) / 1e6, unet / 1e6, decode / 1e6);
    }
}
