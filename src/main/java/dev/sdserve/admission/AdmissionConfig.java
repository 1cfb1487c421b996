package dev.sdserve.admission;

import dev.sdserve.job.SloClass;

import java.util.EnumMap;
import java.util.HashMap;
import java.util.Map;

/**
 * Validation limits, request defaults and admission policy. Plain mutable fields with sensible defaults, so a CDI
 * producer can copy {@code application.properties} values onto it; {@link #copy()} for per-test variations.
 */
public final class AdmissionConfig {
    // ---- validation limits (defaults: the constants of Limits, which the OpenAPI schema and README show) ----
    /** Longest prompt / negative prompt, in characters. */
    public int maxPromptChars = Limits.MAX_PROMPT_CHARS;
    /** Image edge range in pixels (both must be multiples of {@link #sizeMultiple}). */
    public int minImageSize = Limits.MIN_IMAGE_SIZE;
    public int maxImageSize = Limits.MAX_IMAGE_SIZE;
    public int sizeMultiple = Limits.SIZE_MULTIPLE;
    public int maxSteps = Limits.MAX_STEPS;
    public double maxGuidance = Limits.MAX_GUIDANCE;
    public int maxClipSkip = Limits.MAX_CLIP_SKIP;
    public int maxImages = Limits.MAX_IMAGES;
    public int maxLoras = Limits.MAX_LORAS;
    /** LoRA weights must be finite and within ±this. */
    public double maxLoraWeight = Limits.MAX_LORA_WEIGHT;
    public int minPreviewEdge = Limits.MIN_PREVIEW_EDGE;
    public int maxPreviewEdge = Limits.MAX_PREVIEW_EDGE;
    public int maxTenantChars = Limits.MAX_TENANT_CHARS;
    /** Priorities must lie within ±this. */
    public int maxPriority = Limits.MAX_PRIORITY;
    /** Explicit deadlines may lie at most this far in the future (milliseconds). */
    public long maxDeadlineMillis = Limits.MAX_DEADLINE_MILLIS;
    public int maxInitImageBytes = Limits.MAX_INIT_IMAGE_BYTES;
    public long maxInitImagePixels = Limits.MAX_INIT_IMAGE_PIXELS;
    public int maxMaskBlur = Limits.MAX_MASK_BLUR;
    /**
     * The models and LoRAs the server has, for admission's name checks (unknown name: NOT_FOUND listing what
     * exists); null = models are checked through the engine's {@code describe}, LoRA names only for their form.
     */
    public NameCheck.Names names;

    // ---- defaults ----
    /** Model used when a request names none. */
    public String defaultModel = "embedded";
    public int defaultSteps = 20;
    public String defaultSampler = "euler_a";
    public double defaultGuidance = 7.5;
    public int defaultClipSkip = 1;
    /** Guidance truncation when a request sets none (1 = off: every evaluation guided). */
    public double defaultGuidanceCutoff = 1.0;
    /** DeepCache's interval when a request sets none (0/1 = off), and the largest a request may ask. */
    public int defaultDeepCacheInterval = 1;
    public int maxDeepCacheInterval = Limits.MAX_DEEP_CACHE_INTERVAL;
    /** Token merging when a request sets none (0 = off). */
    public double defaultTokenMerging = 0;
    public SloClass defaultSloClass = SloClass.STANDARD;
    public String defaultTenant = "default";
    public int defaultPreviewEvery = 1;
    public int defaultPreviewMaxEdge = 256;
    public String defaultPreviewFormat = "png";
    /**
     * Each model's recommended settings (from its JSON or built in), which fill what a request leaves unset before
     * the defaults above do ({@link RecommendedDefaults}).
     */
    public java.util.function.Function<String, dev.sdserve.model.ModelDefaults> modelDefaults =
            name -> dev.sdserve.model.ModelDefaults.NONE;
    /** Relative deadline per SLO class, in milliseconds (used when a request has no explicit deadline). */
    public final Map<SloClass, Long> sloDeadlineMillis = new EnumMap<>(Map.of(
            SloClass.INTERACTIVE, 30_000L,
            SloClass.STANDARD, 300_000L,
            SloClass.BATCH, 3_600_000L));

    // ---- admission ----
    /** Jobs admitted and not yet finished (queued + running); beyond this, RESOURCE_EXHAUSTED. */
    public int maxQueue = 256;
    /** Refuse requests whose predicted completion misses their deadline (unless best effort). */
    public boolean deadlineAdmission = true;
    /**
     * Safety factor on predicted work for the deadline check (1.1 = assume work takes 10% longer than predicted).
     */
    public double predictionSafety = 1.1;
    /**
     * An idle server (nothing admitted) whose last engine call ended at least this long ago admits one request the
     * deadline check would refuse, as a probe: after a slow spell the cost figures are too high, and refusals alone
     * never produce the measurement that corrects them (0 = never).
     */
    public long probeAfterIdleMillis = 5000;
    /** Smallest retry-after hint, in milliseconds. */
    public long minRetryAfterMillis = 100;
    /** Per-tenant fairness weights (tenants not listed weigh {@link #defaultTenantWeight}). */
    public final Map<String, Double> tenantWeights = new HashMap<>();
    public double defaultTenantWeight = 1.0;

    public double weightOf(String tenant) {
        Double w = tenantWeights.get(tenant);
        return w == null || !(w > 0) ? defaultTenantWeight : w;
    }

    public long sloMillis(SloClass c) {
        Long v = sloDeadlineMillis.get(c);
        return v == null ? 300_000L : v;
    }

    public AdmissionConfig copy() {
        AdmissionConfig c = new AdmissionConfig();
        c.maxPromptChars = maxPromptChars;
        c.minImageSize = minImageSize;
        c.maxImageSize = maxImageSize;
        c.sizeMultiple = sizeMultiple;
        c.maxSteps = maxSteps;
        c.maxGuidance = maxGuidance;
        c.maxClipSkip = maxClipSkip;
        c.maxImages = maxImages;
        c.maxLoras = maxLoras;
        c.maxLoraWeight = maxLoraWeight;
        c.minPreviewEdge = minPreviewEdge;
        c.maxPreviewEdge = maxPreviewEdge;
        c.maxTenantChars = maxTenantChars;
        c.maxPriority = maxPriority;
        c.maxDeadlineMillis = maxDeadlineMillis;
        c.maxInitImageBytes = maxInitImageBytes;
        c.maxInitImagePixels = maxInitImagePixels;
        c.maxMaskBlur = maxMaskBlur;
        c.names = names;
        c.defaultModel = defaultModel;
        c.defaultSteps = defaultSteps;
        c.defaultSampler = defaultSampler;
        c.defaultGuidance = defaultGuidance;
        c.defaultClipSkip = defaultClipSkip;
        c.defaultGuidanceCutoff = defaultGuidanceCutoff;
        c.defaultDeepCacheInterval = defaultDeepCacheInterval;
        c.maxDeepCacheInterval = maxDeepCacheInterval;
        c.defaultTokenMerging = defaultTokenMerging;
        c.defaultSloClass = defaultSloClass;
        c.defaultTenant = defaultTenant;
        c.defaultPreviewEvery = defaultPreviewEvery;
        c.defaultPreviewMaxEdge = defaultPreviewMaxEdge;
        c.defaultPreviewFormat = defaultPreviewFormat;
        c.modelDefaults = modelDefaults;
        c.sloDeadlineMillis.putAll(sloDeadlineMillis);
        c.maxQueue = maxQueue;
        c.deadlineAdmission = deadlineAdmission;
        c.predictionSafety = predictionSafety;
        c.minRetryAfterMillis = minRetryAfterMillis;
        c.probeAfterIdleMillis = probeAfterIdleMillis;
        c.tenantWeights.putAll(tenantWeights);
        c.defaultTenantWeight = defaultTenantWeight;
        return c;
    }
}
