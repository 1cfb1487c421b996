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
    // ---- validation limits ----
    /** Longest prompt / negative prompt, in characters. */
    public int maxPromptChars = 4000;
    /** Image edge range in pixels (both must be multiples of {@link #sizeMultiple}). */
    public int minImageSize = 64;
    public int maxImageSize = 2048;
    public int sizeMultiple = 8;
    public int maxSteps = 150;
    public double maxGuidance = 30;
    public int maxClipSkip = 12;
    public int maxImages = 8;
    public int maxLoras = 8;
    /** LoRA weights must be finite and within ±this. */
    public double maxLoraWeight = 10;
    public int minPreviewEdge = 16;
    public int maxPreviewEdge = 1024;
    public int maxTenantChars = 128;
    /** Priorities must lie within ±this. */
    public int maxPriority = 1000;
    /** Explicit deadlines may lie at most this far in the future (milliseconds). */
    public long maxDeadlineMillis = 7L * 24 * 3600 * 1000;

    // ---- defaults ----
    /** Model used when a request names none. */
    public String defaultModel = "embedded";
    public int defaultSteps = 20;
    public String defaultSampler = "euler_a";
    public double defaultGuidance = 7.5;
    public int defaultClipSkip = 1;
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
        c.defaultModel = defaultModel;
        c.defaultSteps = defaultSteps;
        c.defaultSampler = defaultSampler;
        c.defaultGuidance = defaultGuidance;
        c.defaultClipSkip = defaultClipSkip;
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
