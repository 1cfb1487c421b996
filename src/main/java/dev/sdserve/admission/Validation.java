package dev.sdserve.admission;

import dev.sdserve.engine.LoraWeight;
import dev.sdserve.engine.ModelInfo;
import dev.sdserve.engine.TokenMerging;
import dev.sdserve.job.GenerationRequest;
import dev.sdserve.job.ImagePreparer;
import dev.sdserve.job.ResolvedImage;
import dev.sdserve.job.PreviewOptions;
import dev.sdserve.job.PromptLoras;
import dev.sdserve.job.ResolvedRequest;
import dev.sdserve.job.ServeException;
import dev.sdserve.job.SloClass;
import dev.sdserve.sampler.Sampler;
import dev.sdserve.sampler.SamplerCatalog;

import java.security.SecureRandom;
import java.util.List;
import java.util.Locale;
import java.util.function.Function;
import java.util.function.LongSupplier;

/**
 * Checks a {@link GenerationRequest} and fills its defaults, producing a {@link ResolvedRequest}. Every refusal is
 * {@code INVALID_ARGUMENT} with {@link ServeException#field()} set to the request field and the allowed range in
 * the message; an unknown model is {@code NOT_FOUND} (from the engine's {@code describe}).
 *
 * <p>Conventions for "not given": null fields; {@code preview == null} means the server's preview defaults; in a
 * given {@link PreviewOptions}, {@code everySteps == 0} means previews off, {@code maxEdge == 0} and a blank format
 * mean the defaults.
 */
public final class Validation {
    public static final long MAX_SEED = Limits.MAX_SEED;

    private final AdmissionConfig config;
    private final NameCheck names;
    private final Function<String, ModelInfo> models;
    private final SamplerCatalog samplers;
    private final LongSupplier randomSeed;
    private final ImageValidation images;

    /**
     * @param models     model lookup (the engine's {@code describe}; throws NOT_FOUND for an unknown model)
     * @param randomSeed source of seeds for requests without one (values are reduced to 0..2^32-1)
     */
    public Validation(AdmissionConfig config, Function<String, ModelInfo> models, SamplerCatalog samplers,
                      LongSupplier randomSeed) {
        this(config, models, samplers, randomSeed, null);
    }

    /**
     * @param images decodes and prepares init images and masks (the image room's); null: requests with an init
     *               image are refused
     */
    public Validation(AdmissionConfig config, Function<String, ModelInfo> models, SamplerCatalog samplers,
                      LongSupplier randomSeed, ImagePreparer images) {
        this.images = new ImageValidation(config, images);
        this.config = config;
        this.names = new NameCheck(config);
        this.models = models;
        this.samplers = samplers;
        this.randomSeed = randomSeed;
    }

    public Validation(AdmissionConfig config, Function<String, ModelInfo> models, SamplerCatalog samplers) {
        this(config, models, samplers, new SecureRandom()::nextLong);
    }

    /**
     * Validates and resolves.
     *
     * @param nowMillis the service clock, for the SLO-class default deadline
     */
    public ResolvedRequest resolve(GenerationRequest r, long nowMillis) {
        if (r == null) {
            throw ServeException.invalid("request", "must be given");
        }
        String rawPrompt = r.prompt() == null ? "" : r.prompt();
        checkText("prompt", rawPrompt);
        // <lora:name:weight> tags are read here (every transport sends them as written); the prompt stays as written
        // (the engine drops extra-network tags as A1111 does, the PNG text keeps them in place)
        PromptLoras tagged = PromptLoras.parse(rawPrompt, "prompt");
        String prompt = rawPrompt;
        String negative = r.negativePrompt() == null ? "" : r.negativePrompt();
        checkText("negative_prompt", negative);

        String modelName = blank(r.model()) ? config.defaultModel : r.model().trim();
        ModelInfo info = names.model(modelName, models);
        r = RecommendedDefaults.fill(r, modelName, config.modelDefaults, samplers);

        List<LoraWeight> loras = names.loras(r.loras(), tagged.loras());
        int multiple = Math.max(config.sizeMultiple, info.vaeScale());
        ImageValidation.Decoded decoded = images.decode(r.image(), info);
        int width = size("width", r.width(), decoded == null ? info.defaultImageSize()
                : images.edgeFromImage(r.width(), decoded, multiple, true), multiple);
        int height = size("height", r.height(), decoded == null ? info.defaultImageSize()
                : images.edgeFromImage(r.height(), decoded, multiple, false), multiple);

        int steps = r.steps() == null ? config.defaultSteps : r.steps();
        if (steps < 1 || steps > config.maxSteps) {
            throw ServeException.invalid("steps", "must be within 1.." + config.maxSteps + ", got " + steps);
        }

        String samplerName = blank(r.sampler()) ? config.defaultSampler : r.sampler();
        Sampler sampler = samplers.find(samplerName);
        if (sampler == null) {
            throw ServeException.invalid("sampler", "unknown sampler '" + samplerName + "'; known: " + samplers.ids());
        }

        double guidance = r.guidance() == null ? config.defaultGuidance : r.guidance();
        if (!Double.isFinite(guidance) || guidance < 0 || guidance > config.maxGuidance) {
            throw ServeException.invalid("guidance_scale", "must be finite within 0.." + config.maxGuidance + ", got " + guidance);
        }

        long seed;
        if (r.seed() == null) {
            seed = randomSeed.getAsLong() & MAX_SEED;
        } else {
            seed = r.seed();
            if (seed < 0 || seed > MAX_SEED) {
                throw ServeException.invalid("seed", "must be within 0.." + MAX_SEED + ", got " + seed);
            }
        }

        int clipSkip = r.clipSkip() == null ? config.defaultClipSkip : r.clipSkip();
        if (clipSkip < 1 || clipSkip > config.maxClipSkip) {
            throw ServeException.invalid("clip_skip", "must be within 1.." + config.maxClipSkip + ", got " + clipSkip);
        }

        int images = r.images() == null ? 1 : r.images();
        if (images < 1 || images > config.maxImages) {
            throw ServeException.invalid("images", "must be within 1.." + config.maxImages + ", got " + images);
        }
        if (seed + images - 1 > MAX_SEED && r.seed() != null) {
            throw ServeException.invalid("seed", "seed + images - 1 must stay within 0.." + MAX_SEED + ", got seed " + seed);
        } else if (seed + images - 1 > MAX_SEED) {
            seed = MAX_SEED - images + 1;
        }

        PreviewOptions preview = preview(r.preview(), steps);

        SloClass slo = r.sloClass() == null ? config.defaultSloClass : r.sloClass();
        long deadline = r.deadlineMillis() != null ? r.deadlineMillis() : nowMillis + config.sloMillis(slo);
        if (r.deadlineMillis() != null && (deadline <= nowMillis || deadline - nowMillis > config.maxDeadlineMillis)) {
            // also catches "now + huge" that overflowed to a negative number
            throw ServeException.invalid("deadline_ms", "must lie within 1.." + config.maxDeadlineMillis
                    + " ms from now, got " + (deadline - nowMillis));
        }

        int priority = r.priority() == null ? 0 : r.priority();
        if (priority < -config.maxPriority || priority > config.maxPriority) {
            throw ServeException.invalid("priority", "must be within -" + config.maxPriority + ".." + config.maxPriority
                    + ", got " + priority);
        }
        String tenant = blank(r.tenant()) ? config.defaultTenant : r.tenant().trim();
        if (tenant.length() > config.maxTenantChars) {
            throw ServeException.invalid("tenant", "at most " + config.maxTenantChars + " characters, got " + tenant.length());
        }
        if (tenant.chars().anyMatch(Character::isISOControl)) {
            throw ServeException.invalid("tenant", "must not contain control characters");
        }
        boolean bestEffort = Boolean.TRUE.equals(r.bestEffort());
        double guidanceCutoff = guidanceCutoff(r.guidanceCutoff());
        int deepCacheInterval = deepCacheInterval(r.deepCacheInterval());
        double tokenMerging = tokenMerging(r.tokenMerging());
        names.lorasExist(r.loras(), tagged.loras(), modelName, info); // last: a bad field gets its 400 first
        ResolvedImage image = this.images.resolve(r.image(), decoded, info, sampler, steps, width, height);

        return new ResolvedRequest(prompt, negative, modelName, loras, width, height, steps, sampler.id(), guidance,
                seed, clipSkip, images, preview, slo, deadline, priority, tenant, bestEffort,
                Boolean.TRUE.equals(r.padCondUncond()), image, guidanceCutoff, deepCacheInterval, tokenMerging);
    }

    /** DeepCache's interval: 0..max (0 and 1 = off, resolved to 1), the server's default when unset. */
    private int deepCacheInterval(Integer given) {
        int n = given == null ? config.defaultDeepCacheInterval : given;
        if (n < 0 || n > config.maxDeepCacheInterval) {
            throw ServeException.invalid("deep_cache_interval", "must be within 0.." + config.maxDeepCacheInterval
                    + " (a full UNet step every this many steps, the shallow path between; 0 or 1 = off), got " + n);
        }
        return Math.max(1, n);
    }

    /**
     * The token merging ratio: [0, {@link TokenMerging#MAX_RATIO}], the server's default when unset, served in
     * steps of {@link TokenMerging#RATIO_STEP} (each ratio is a UNet graph of its own).
     */
    private double tokenMerging(Double given) {
        double f = given == null ? config.defaultTokenMerging : given;
        if (!Double.isFinite(f) || f < 0 || f > TokenMerging.MAX_RATIO) {
            throw ServeException.invalid("token_merging_ratio", "must be within [0, " + TokenMerging.MAX_RATIO
                    + "] (the share of the self-attention tokens merged at full resolution; 0 = off), got " + f);
        }
        return TokenMerging.quantize(f);
    }

    /** The guidance truncation fraction: (0, 1], the server's default when unset. */
    private double guidanceCutoff(Double given) {
        double f = given == null ? config.defaultGuidanceCutoff : given;
        if (!Double.isFinite(f) || f <= 0 || f > 1) {
            throw ServeException.invalid("guidance_cutoff", "must be within (0, 1] (the fraction of the steps that "
                    + "keep classifier-free guidance; 1 = all), got " + f);
        }
        return f;
    }

    private void checkText(String field, String text) {
        if (text.length() > config.maxPromptChars) {
            throw ServeException.invalid(field, "at most " + config.maxPromptChars + " characters, got " + text.length());
        }
    }

    private int size(String field, Integer given, int dflt, int multiple) {
        int v = given == null || given == 0 ? dflt : given;
        if (v < config.minImageSize || v > config.maxImageSize || v % multiple != 0) {
            throw ServeException.invalid(field, "must be a multiple of " + multiple + " within " + config.minImageSize
                    + ".." + config.maxImageSize + ", got " + v);
        }
        return v;
    }

    private PreviewOptions preview(PreviewOptions p, int steps) {
        if (p == null) {
            return new PreviewOptions(config.defaultPreviewEvery, config.defaultPreviewFormat, config.defaultPreviewMaxEdge);
        }
        if (p.everySteps() < 0 || p.everySteps() > config.maxSteps) {
            throw ServeException.invalid("preview.every_steps", "must be within 0.." + config.maxSteps
                    + " (0 = off), got " + p.everySteps());
        }
        if (p.everySteps() == 0) {
            return PreviewOptions.OFF;
        }
        String format = blank(p.format()) ? config.defaultPreviewFormat : p.format().trim().toLowerCase(Locale.ROOT);
        if (format.equals("jpg")) {
            format = "jpeg";
        }
        if (!format.equals("png") && !format.equals("jpeg") && !format.equals(PreviewOptions.LATENT)) {
            throw ServeException.invalid("preview.format", "must be png, jpeg or latent, got '" + p.format() + "'");
        }
        int edge = p.maxEdge() == 0 ? config.defaultPreviewMaxEdge : p.maxEdge();
        if (edge < config.minPreviewEdge || edge > config.maxPreviewEdge) {
            throw ServeException.invalid("preview.max_edge", "must be within " + config.minPreviewEdge + ".."
                    + config.maxPreviewEdge + " (0 = default), got " + edge);
        }
        String content = p.content().trim().toLowerCase(Locale.ROOT);
        if (!content.equals(PreviewOptions.DENOISED) && !content.equals(PreviewOptions.NOISY)) {
            throw ServeException.invalid("preview.content", "must be denoised or noisy, got '" + p.content() + "'");
        }
        if (p.fullEvery() < 0 || p.fullEvery() > config.maxSteps) {
            throw ServeException.invalid("preview.full_every", "must be within 0.." + config.maxSteps
                    + " (0 = never), got " + p.fullEvery());
        }
        String projection = p.projection().trim().toLowerCase(Locale.ROOT);
        if (!PreviewOptions.PROJECTIONS.contains(projection)) {
            throw ServeException.invalid("preview.projection", "must be auto, affine or decoder, got '" + p.projection() + "'");
        }
        return new PreviewOptions(p.everySteps(), format, edge, content, p.fullEvery(), projection);
    }

    private static boolean blank(String s) {
        return s == null || s.isBlank();
    }
}
