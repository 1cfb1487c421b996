package dev.sdserve.engine.projection;

import dev.sdserve.engine.AddedConditioning;
import dev.sdserve.engine.Conditioning;
import dev.sdserve.engine.DenoiseBatch;
import dev.sdserve.engine.DenoiseItem;
import dev.sdserve.engine.EncodeItem;
import dev.sdserve.engine.Engine;
import dev.sdserve.engine.LatentShape;
import dev.sdserve.engine.ModelInfo;
import dev.sdserve.engine.SizeConditioning;
import dev.sdserve.sampler.Sampler;
import dev.sdserve.sampler.SamplerState;
import dev.sdserve.sampler.Samplers;
import dev.sdserve.sampler.TorchGenerator;

import java.util.ArrayList;
import java.util.List;

/**
 * Fits a model's preview projection against its own VAE: short guided denoising runs (fixed prompts and seeds, all in
 * one UNet batch per step) give denoised estimates x̂0; the VAE decodes those of the runs' second half and
 * {@link ProjectionFit} solves for the affine map. Deterministic for a model file.
 *
 * <p>Choices, measured on the demo model (whose VAE is far from linear in colour): the prompts cover every colour
 * word as a shape and as a background (a fit on a few scenes generalised badly: the demo prompt's purple background
 * came out blue); the first evaluations' x̂0 are left out (their amplitudes are several times the data's, their
 * decodes saturate, and fitting them pulled every colour towards grey).
 */
public final class ProjectionFitter {
    /** Colour words (the demo model's twelve). */
    static final List<String> COLOURS = List.of("red", "green", "blue", "yellow", "orange", "purple", "pink", "white",
            "black", "cyan", "gray", "brown");
    static final List<String> SHAPES = List.of("circle", "square", "triangle", "diamond", "ring");

    /** One run per colour: that colour as a shape on another colour's background (each colour once as each). */
    public static final List<String> PROMPTS = prompts();

    private static List<String> prompts() {
        List<String> out = new ArrayList<>();
        int n = COLOURS.size();
        for (int i = 0; i < n; i++) {
            out.add("a big " + COLOURS.get(i) + " " + SHAPES.get(i % SHAPES.size()) + " in the center, "
                    + COLOURS.get((5 * i + 3) % n) + " background");
        }
        return List.copyOf(out);
    }

    /**
     * @param prompts    one run per prompt
     * @param seed       run i starts from the noise of seed + i
     * @param steps      denoising steps of each run
     * @param guidance   classifier-free guidance scale
     * @param latentEdge latent edge of the runs (at most the model's default; small keeps the fit cheap on big models)
     * @param decodeFrom  the first evaluation (from 0) whose x̂0 the affine map is fitted on; every later one is too
     * @param readoutFrom the first evaluation whose x̂0 the decoder readout is fitted on (the readout, unlike the
     *                    affine map, gains from the early estimates: they are what early previews show)
     * @param sampler    sampler id (the model's own prediction type is the caller's: see {@link #fit(Engine, String, Sampler, Settings)})
     */
    public record Settings(List<String> prompts, long seed, int steps, double guidance, int latentEdge,
                           int decodeFrom, int readoutFrom, String sampler) {
        public static Settings defaults() {
            return new Settings(PROMPTS, 20240, 6, 5.0, 16, 3, 1, "dpmpp_2m");
        }
    }

    /**
     * The fitted map and how it was made.
     *
     * @param decoder            the decoder preview's readout (a map from the VAE decoder trunk's features to RGB,
     *                           {@link Engine#decoderFeatures}), fitted on the same decodes; null when the engine has
     *                           no trunk
     * @param decoderResidual255 its mean |readout − VAE| on its fit's cells (NaN without one); those start at an
     *                           earlier evaluation than the affine map's, so the comparison is not in its favour
     */
    public record Result(LatentProjection projection, double residualMean255, double fallbackMean255, long samples,
                         int latentsDecoded, LatentShape shape, double millis, double unetMillis, double decodeMillis,
                         LatentProjection decoder, double decoderResidual255) {
    }

    /** Ridge of the decoder readout's fit (fraction of the mean diagonal): its inputs are many and correlated. */
    static final double DECODER_RIDGE = 1e-3;

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
        texts.add(EncodeItem.negative("", 1, List.of()));
        // whole conditionings: SDXL's UNet also takes each side's pooled embedding and the size
        List<Conditioning> ctx = engine.encodeConditioning(model, texts);
        Conditioning uncond = ctx.get(runs);
        SizeConditioning size = SizeConditioning.of(shape.height() * info.vaeScale(), shape.width() * info.vaeScale());
        SamplerState[] states = new SamplerState[runs];
        for (int i = 0; i < runs; i++) {
            float[] noise = new float[shape.size()];
            new TorchGenerator(s.seed() + i).fill(noise);
            states[i] = sampler.start(s.steps(), noise, new TorchGenerator(s.seed() + 1000 + i));
        }
        List<float[]> latents = new ArrayList<>();
        List<Boolean> forAffine = new ArrayList<>(); // per kept latent: whether the affine map is fitted on it
        List<Boolean> forReadout = new ArrayList<>(); // and whether the decoder readout is
        long unet = 0;
        int evals = states[0].totalEvaluations();
        for (int k = 0; k < evals; k++) {
            List<DenoiseItem> items = new ArrayList<>(runs);
            for (int i = 0; i < runs; i++) {
                Conditioning c = ctx.get(i);
                boolean xl = c.pooled() != null;
                items.add(new DenoiseItem(states[i].modelInput().clone(), states[i].timestep(), c.context(),
                        uncond.context(), s.guidance(), List.of(), xl ? AddedConditioning.of(c, size) : null,
                        xl ? AddedConditioning.of(uncond, size) : null));
            }
            long u0 = System.nanoTime();
            float[][] out = engine.denoise(new DenoiseBatch(model, shape, items));
            unet += System.nanoTime() - u0;
            boolean affine = k >= Math.min(s.decodeFrom(), evals - 1);
            boolean forDecoder = k >= Math.min(s.readoutFrom(), evals - 1);
            boolean keep = affine || forDecoder;
            for (int i = 0; i < runs; i++) {
                states[i].advance(out[i]);
                if (keep) {
                    latents.add(states[i].denoised());
                    forAffine.add(affine);
                    forReadout.add(forDecoder);
                }
            }
        }
        long d0 = System.nanoTime();
        int pw = shape.width() * info.vaeScale(), ph = shape.height() * info.vaeScale();
        ProjectionFit fit = new ProjectionFit(shape.channels());
        ProjectionFit readout = null;
        LatentShape featureShape = null;
        for (int from = 0; from < latents.size(); from += runs) {
            List<float[]> chunk = latents.subList(from, Math.min(latents.size(), from + runs));
            float[][] images = engine.decode(model, shape, chunk);
            float[][] features = engine.decoderFeatures(model, shape, chunk);
            for (int j = 0; j < chunk.size(); j++) {
                if (forAffine.get(from + j)) {
                    fit.add(chunk.get(j), shape, images[j], pw, ph);
                }
                if (features != null && forReadout.get(from + j)) {
                    if (readout == null) {
                        featureShape = new LatentShape(features[j].length / (shape.height() * shape.width()),
                                shape.height(), shape.width());
                        readout = new ProjectionFit(featureShape.channels(), DECODER_RIDGE);
                    }
                    readout.add(features[j], featureShape, images[j], pw, ph);
                }
            }
        }
        long decode = System.nanoTime() - d0;
        LatentProjection p = fit.solve();
        LatentProjection d = readout == null ? null : readout.solve(LatentProjection.DECODER);
        return new Result(p, fit.meanAbs255(p), fit.meanAbs255(LatentProjection.SD1_CHEAP), fit.samples(),
                latents.size(), shape, (System.nanoTime() - t0) / 1e6, unet / 1e6, decode / 1e6, d,
                d == null ? Double.NaN : readout.meanAbs255(d));
    }
}
