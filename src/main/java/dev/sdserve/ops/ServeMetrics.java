package dev.sdserve.ops;

import dev.sdserve.engine.EngineStats;
import dev.sdserve.job.ServeException;
import dev.sdserve.job.SloClass;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.DistributionSummary;
import io.micrometer.core.instrument.FunctionCounter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.MultiGauge;
import io.micrometer.core.instrument.Tags;
import io.micrometer.core.instrument.Timer;
import io.micrometer.core.instrument.composite.CompositeMeterRegistry;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.DoubleSupplier;

/**
 * The service's metrics, in one place, so the scheduler, engine and admission code call named methods instead of
 * building meters. A plain class over a Micrometer {@link MeterRegistry} (no Quarkus types): tests and the
 * simulator use {@link #noop()} or a {@code SimpleMeterRegistry}; the server gets one over Quarkus' Prometheus
 * registry (exposed at {@code /q/metrics}).
 *
 * <p>Names follow Prometheus conventions once exported: base units (seconds, bytes), {@code _total} on counters,
 * snake_case labels. Label values are bounded sets (SLO class, status code, stage, shape bucket, model name): never
 * put a job id or a prompt in a label.
 *
 * <p>All methods are thread-safe and cheap (a map lookup and an atomic add); call them from the scheduler loop.
 */
public final class ServeMetrics {
    /** Prometheus names (as exported) of every metric, for docs, dashboards and tests. */
    public static final String QUEUE_DEPTH = "sdserve_queue_depth";
    public static final String JOBS_RUNNING = "sdserve_jobs_running";
    public static final String ADMITTED = "sdserve_requests_admitted_total";
    public static final String REFUSED = "sdserve_requests_refused_total";
    public static final String COMPLETED = "sdserve_requests_completed_total";
    public static final String CANCELLED = "sdserve_requests_cancelled_total";
    public static final String FAILED = "sdserve_requests_failed_total";
    public static final String BATCH_SIZE = "sdserve_batch_size";
    public static final String STEP_DURATION = "sdserve_step_duration_seconds";
    public static final String FIRST_PREVIEW = "sdserve_time_to_first_preview_seconds";
    public static final String REQUEST_DURATION = "sdserve_request_duration_seconds";
    public static final String SLO_REQUESTS = "sdserve_slo_requests_total";
    public static final String SLO_ATTAINMENT = "sdserve_slo_attainment_ratio";
    public static final String MODELS_RESIDENT = "sdserve_models_resident";
    public static final String MODEL_MEMORY = "sdserve_model_memory_bytes";
    public static final String MODEL_MEMORY_BUDGET = "sdserve_model_memory_budget_bytes";
    public static final String LORA_CACHE_HITS = "sdserve_lora_cache_hits_total";
    public static final String LORA_CACHE_MISSES = "sdserve_lora_cache_misses_total";
    public static final String FINETUNE_STEP = "sdserve_finetune_step";
    public static final String FINETUNE_TOTAL_STEPS = "sdserve_finetune_total_steps";
    public static final String FINETUNE_LOSS = "sdserve_finetune_loss";
    public static final String ENGINE_CALLS = "sdserve_engine_calls_total";
    public static final String ENGINE_ITEMS = "sdserve_engine_items_total";
    public static final String DRAINING = "sdserve_draining";

    /** Stages of a request, used as the {@code stage} label of batch sizes and engine counters. */
    public static final String STAGE_ENCODE = "encode";
    public static final String STAGE_DENOISE = "denoise";
    public static final String STAGE_DECODE = "decode";
    public static final String STAGE_IMAGE_ENCODE = "image_encode";

    private static final double[] BATCH_BUCKETS = {1, 2, 4, 8, 16, 32, 64};
    private static final Duration[] STEP_BUCKETS = durations(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30);
    private static final Duration[] LATENCY_BUCKETS = durations(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300, 600);

    private final MeterRegistry registry;
    private final Map<String, Counter> counters = new ConcurrentHashMap<>();
    private final Map<String, DistributionSummary> summaries = new ConcurrentHashMap<>();
    private final Map<String, Timer> timers = new ConcurrentHashMap<>();
    private final Map<SloClass, AtomicLong[]> slo = new ConcurrentHashMap<>();
    private final Map<String, FineTune> fineTunes = new ConcurrentHashMap<>();
    private final MultiGauge modelMemory;
    private volatile Map<String, Long> resident = Map.of();

    public ServeMetrics(MeterRegistry registry) {
        this.registry = registry;
        this.modelMemory = MultiGauge.builder("sdserve.model.memory").baseUnit("bytes")
                .description("Memory held by a resident model (weights and graphs), bytes").register(registry);
        Gauge.builder("sdserve.models.resident", () -> resident.size()).strongReference(true)
                .description("Models resident in memory").register(registry);
        for (SloClass c : SloClass.values()) {
            AtomicLong[] metMissed = {new AtomicLong(), new AtomicLong()};
            slo.put(c, metMissed);
            Gauge.builder("sdserve.slo.attainment", () -> {
                        long met = metMissed[0].get();
                        long total = met + metMissed[1].get();
                        return total == 0 ? Double.NaN : (double) met / total;
                    }).strongReference(true).baseUnit("ratio").tags("slo_class", label(c))
                    .description("Fraction of finished requests of this SLO class that met their deadline, since start")
                    .register(registry);
        }
    }

    /** Metrics that go nowhere (for tests and tools that do not care). */
    public static ServeMetrics noop() {
        return new ServeMetrics(new CompositeMeterRegistry());
    }

    public MeterRegistry registry() {
        return registry;
    }

    // ---- gauges over suppliers (register once at startup) ----

    /** Queue depth of one SLO class: requests admitted and not yet started. Register once per class. */
    public void registerQueueDepth(SloClass sloClass, DoubleSupplier depth) {
        Gauge.builder("sdserve.queue.depth", depth::getAsDouble).strongReference(true).tags("slo_class", label(sloClass))
                .description("Requests admitted and waiting to start, per SLO class").register(registry);
    }

    /** Jobs started and not yet ended (encoding, denoising or decoding). */
    public void registerRunning(DoubleSupplier running) {
        Gauge.builder("sdserve.jobs.running", running::getAsDouble).strongReference(true)
                .description("Jobs started and not yet ended").register(registry);
    }

    /** 1 while the server drains (refuses new work, finishes what it accepted), else 0. */
    public void registerDraining(java.util.function.BooleanSupplier draining) {
        Gauge.builder("sdserve.draining", () -> draining.getAsBoolean() ? 1 : 0).strongReference(true)
                .description("1 while the server drains before shutdown").register(registry);
    }

    /** Engine call and item counters per stage, read from the engine's own counters. */
    public void registerEngineStats(EngineStats stats) {
        engineCounter(STAGE_ENCODE, stats.encodeCalls, stats.encodeItems);
        engineCounter(STAGE_DENOISE, stats.denoiseCalls, stats.denoiseItems);
        engineCounter(STAGE_DECODE, stats.decodeCalls, stats.decodeItems);
        engineCounter(STAGE_IMAGE_ENCODE, stats.imageEncodeCalls, stats.imageEncodeItems);
        FunctionCounter.builder("sdserve.engine.unet.samples", stats.unetSamples, AtomicLong::get)
                .description("UNet samples evaluated (a guided request counts twice)").register(registry);
    }

    private void engineCounter(String stage, AtomicLong calls, AtomicLong items) {
        FunctionCounter.builder("sdserve.engine.calls", calls, AtomicLong::get).tags("stage", stage)
                .description("Engine calls per stage").register(registry);
        FunctionCounter.builder("sdserve.engine.items", items, AtomicLong::get).tags("stage", stage)
                .description("Requests processed by engine calls per stage").register(registry);
    }

    // ---- request lifecycle counters ----

    /** A request was admitted. */
    public void admitted(SloClass sloClass) {
        counter("sdserve.requests.admitted", "Requests admitted", "slo_class", label(sloClass)).increment();
    }

    /** A request was refused at admission (INVALID_ARGUMENT, NOT_FOUND, RESOURCE_EXHAUSTED, UNAVAILABLE, …). */
    public void refused(ServeException.Code code) {
        counter("sdserve.requests.refused", "Requests refused at admission, by status code", "code", code.name()).increment();
    }

    /** An admitted request completed with its images. */
    public void completed(SloClass sloClass) {
        counter("sdserve.requests.completed", "Requests completed with images", "slo_class", label(sloClass)).increment();
    }

    /**
     * An admitted request was cancelled: by its client, or by the server (drain timeout, deadline). {@code reason}
     * is a short fixed word: "client", "drain", "deadline".
     */
    public void cancelled(SloClass sloClass, String reason) {
        counter("sdserve.requests.cancelled", "Admitted requests cancelled, by reason", "slo_class", label(sloClass),
                "reason", reason).increment();
    }

    /** An admitted request failed (engine error, out of memory, …); {@code code} is its public status. */
    public void failed(SloClass sloClass, ServeException.Code code) {
        counter("sdserve.requests.failed", "Admitted requests that failed, by status code", "slo_class", label(sloClass),
                "code", code.name()).increment();
    }

    // ---- distributions ----

    /** Size (requests) of one engine call of a stage: {@link #STAGE_ENCODE}, {@link #STAGE_DENOISE}, {@link #STAGE_DECODE}. */
    public void batch(String stage, int size) {
        summaries.computeIfAbsent(stage, s -> DistributionSummary.builder("sdserve.batch.size")
                        .description("Requests per engine call, per stage").tags("stage", s)
                        .serviceLevelObjectives(BATCH_BUCKETS).register(registry))
                .record(size);
    }

    /**
     * Wall time of one denoising step (one UNet call) for a shape bucket such as "512x512" (latent shape and batch
     * rounding are the scheduler's choice; keep the set small).
     */
    public void step(String bucket, long nanos) {
        timer("sdserve.step.duration", "Wall time of one denoising step (UNet call), per shape bucket", STEP_BUCKETS,
                "bucket", bucket).record(nanos, TimeUnit.NANOSECONDS);
    }

    /** From admission to the first preview sent to the client. */
    public void firstPreview(SloClass sloClass, long nanos) {
        timer("sdserve.time.to.first.preview", "From admission to the first step preview", LATENCY_BUCKETS,
                "slo_class", label(sloClass)).record(nanos, TimeUnit.NANOSECONDS);
    }

    /**
     * A request ended (completed, cancelled or failed): its end-to-end latency from admission, and, when it
     * completed, whether it met its deadline (feeds SLO attainment). Call once per admitted request.
     *
     * @param outcome "completed", "cancelled" or "failed"
     */
    public void finished(SloClass sloClass, String outcome, long nanos, boolean metDeadline) {
        timer("sdserve.request.duration", "End-to-end latency from admission to the end of the request",
                LATENCY_BUCKETS, "slo_class", label(sloClass), "outcome", outcome).record(nanos, TimeUnit.NANOSECONDS);
        if ("completed".equals(outcome)) {
            sloOutcome(sloClass, metDeadline);
        }
    }

    /** Whether a finished request met its deadline (counted in {@value #SLO_REQUESTS} and the attainment ratio). */
    public void sloOutcome(SloClass sloClass, boolean met) {
        counter("sdserve.slo.requests", "Finished requests by SLO class and whether they met their deadline",
                "slo_class", label(sloClass), "met", String.valueOf(met)).increment();
        slo.get(sloClass)[met ? 0 : 1].incrementAndGet();
    }

    // ---- models, LoRAs, fine-tuning ----

    /** The models now resident and the bytes each holds; replaces the previous set (call on load and evict). */
    public void residentModels(Map<String, Long> bytesByModel) {
        Map<String, Long> copy = Map.copyOf(bytesByModel);
        resident = copy;
        List<MultiGauge.Row<?>> rows = new ArrayList<>();
        copy.forEach((m, b) -> rows.add(MultiGauge.Row.of(Tags.of("model", m), b)));
        modelMemory.register(rows, true);
    }

    /** The memory budget for resident models, bytes (register once). */
    public void registerMemoryBudget(long bytes) {
        Gauge.builder("sdserve.model.memory.budget", () -> bytes).strongReference(true).baseUnit("bytes")
                .description("Memory budget for resident models, bytes").register(registry);
    }

    public void loraCache(boolean hit) {
        if (hit) {
            counter("sdserve.lora.cache.hits", "LoRA lookups served from the cache").increment();
        } else {
            counter("sdserve.lora.cache.misses", "LoRA lookups that loaded the file").increment();
        }
    }

    /** Progress of a fine-tuning run (its name is a label: keep runs few). */
    public void fineTuneProgress(String run, long step, long totalSteps, double loss) {
        FineTune f = fineTunes.computeIfAbsent(run, r -> {
            FineTune n = new FineTune();
            Gauge.builder("sdserve.finetune.step", n, x -> x.step).tags("run", r).strongReference(true)
                    .description("Optimizer steps done").register(registry);
            Gauge.builder("sdserve.finetune.total.steps", n, x -> x.total).tags("run", r).strongReference(true)
                    .description("Optimizer steps planned").register(registry);
            Gauge.builder("sdserve.finetune.loss", n, x -> x.loss).tags("run", r).strongReference(true)
                    .description("Latest training loss").register(registry);
            return n;
        });
        f.step = step;
        f.total = totalSteps;
        f.loss = loss;
    }

    private static final class FineTune {
        volatile double step;
        volatile double total;
        volatile double loss = Double.NaN;
    }

    // ---- helpers ----

    /** Label value of an SLO class: "interactive", "standard", "batch". */
    public static String label(SloClass c) {
        return (c == null ? SloClass.STANDARD : c).name().toLowerCase(Locale.ROOT);
    }

    private Counter counter(String name, String description, String... tags) {
        String key = key(name, tags);
        Counter c = counters.get(key);
        if (c == null) {
            c = counters.computeIfAbsent(key, k -> Counter.builder(name).description(description).tags(tags).register(registry));
        }
        return c;
    }

    private Timer timer(String name, String description, Duration[] buckets, String... tags) {
        String key = key(name, tags);
        Timer t = timers.get(key);
        if (t == null) {
            t = timers.computeIfAbsent(key, k -> Timer.builder(name).description(description).tags(tags)
                    .serviceLevelObjectives(buckets).register(registry));
        }
        return t;
    }

    private static String key(String name, String... tags) {
        return tags.length == 0 ? name : name + '|' + String.join("|", tags);
    }

    private static Duration[] durations(double... seconds) {
        Duration[] d = new Duration[seconds.length];
        for (int i = 0; i < seconds.length; i++) {
            d[i] = Duration.ofNanos(Math.round(seconds[i] * 1e9));
        }
        return d;
    }
}
