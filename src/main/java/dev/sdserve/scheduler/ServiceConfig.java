package dev.sdserve.scheduler;

import dev.sdserve.sampler.LibrarySamplers;
import dev.sdserve.sampler.SamplerCatalog;
import dev.sdserve.engine.CostModel;
import dev.sdserve.admission.AdmissionConfig;
import dev.sdserve.sampler.NoiseSource;
import dev.sdserve.sampler.TorchGenerator;
import dev.sdserve.job.Job;

import java.util.List;
import java.util.concurrent.Executor;
import java.util.function.BiConsumer;
import java.util.function.LongFunction;
import java.util.function.LongSupplier;

/**
 * Configuration of {@link SchedulerService}: admission (validation, defaults, admission policy) plus scheduling.
 * Plain mutable fields with sensible defaults; a CDI producer maps {@code application.properties} onto it.
 */
public final class ServiceConfig implements dev.sdserve.admission.CompletionPredictor.Limits {
    /** Validation limits, defaults and admission policy. */
    public AdmissionConfig admission = new AdmissionConfig();

    /** Largest UNet batch in latent samples (a guided image counts twice); the cost model may choose less. */
    public int maxLatentBatch = 64;
    /**
     * Hysteresis of least-slack ordering: a job in the running batch keeps its place unless another has this much
     * less slack (ms). Without it, jobs of equal slack take turns step by step and all finish late together.
     */
    public double slackStickinessMillis = 250;
    /** Largest text-encoder batch in prompts. */
    public int maxEncodeBatch = 32;
    /** Largest VAE decode batch in images. */
    public int maxDecodeBatch = 8;
    /**
     * Encode/decode work waits at most this many denoise iterations even when least-slack order prefers the
     * running batch (so neither starves).
     */
    public int maxStageWaitIterations = 2;
    /**
     * Cancel a non-detached job whose watchers leave an event untaken this long (real time, ms; 0 = never).
     * Previews conflate meanwhile, so a slow consumer never stalls the batch.
     */
    public long stalledWatcherMillis = 60_000;
    /** End requests (not best effort) with DEADLINE_EXCEEDED once their deadline has passed. */
    public boolean dropLateRequests = true;
    /** On an engine failure of a batch, retry it split in halves to isolate the failing request(s). */
    public boolean splitFailedBatches = true;
    /**
     * Batches with at least this many images run their sampler maths (model inputs, updates, noise) in parallel
     * on the common fork-join pool; 0 = always on the scheduler thread.
     */
    public int parallelSamplerImages = 8;
    /** Finished jobs kept for {@code find}/{@code jobs}. */
    public int retainFinishedJobs = 1000;
    /** Encode PNG results and previews (the simulator turns this off). */
    public boolean renderImages = true;
    /** Where events are rendered (previews, PNGs) and published; null = a dedicated daemon thread. */
    public Executor publishExecutor;
    /** Samplers by id / name. */
    public SamplerCatalog samplers = new LibrarySamplers();
    /**
     * Per-image Gaussian source from the image's seed (initial noise first, then per-step draws): by default
     * PyTorch's CPU generator, so a seed gives the latents diffusers / A1111 give.
     */
    public LongFunction<NoiseSource> noise = TorchGenerator::new;
    /** Source of seeds for requests without one (null = SecureRandom). */
    public LongSupplier randomSeed;
    /** Cost predictions before a bucket has been measured. */
    public CostModel costPrior = CostModel.proportional(20, 1000);
    /** Scheduler thread: how long to wait for work when idle (real ms). */
    public long idleWaitMillis = 50;
    /**
     * Timer of the overhead statistics (planning, sampler, engine nanoseconds); the overhead benchmark uses the
     * thread's CPU time so that a shared machine does not inflate it.
     */
    public LongSupplier statsTimer = System::nanoTime;
    /**
     * Called on the scheduler thread with each completed job's decoded images (HWC floats in [0, 1]) before PNG
     * encoding; null = none. Tests compare images at float precision through it.
     */
    public BiConsumer<Job, List<float[]>> imageListener;
    /**
     * Short (AutoV2) hash of a model or LoRA by name, for the PNG {@code parameters} text; null when unknown.
     * Called off the scheduler thread when a result is encoded.
     */
    public java.util.function.Function<String, String> modelHash = name -> null;
    public java.util.function.Function<String, String> loraHash = name -> null;
    /** Prometheus metrics (no-op unless the server wires its registry). */
    public dev.sdserve.ops.ServeMetrics metrics = dev.sdserve.ops.ServeMetrics.noop();
    /** OpenTelemetry spans per request and stage (no-op unless the server wires a tracer). */
    public dev.sdserve.ops.Tracing tracing = dev.sdserve.ops.Tracing.noop();
    /** A model load that takes longer ends the jobs waiting for it with UNAVAILABLE (real ms). */
    public long loadTimeoutMillis = 120_000;
    /** Failed loads of a model in a row that open its circuit breaker. */
    public int loadBreakerFailures = 1;
    /** How long an open breaker refuses requests for its model before a trial load (real ms). */
    public long loadBreakerDelayMillis = 30_000;
    /**
     * Each model's fitted preview projection (fitted off the scheduler thread when the model loads or at its first
     * preview); null: previews use the SD 1.x factors (the fake engine, the simulator).
     */
    public dev.sdserve.engine.projection.PreviewProjections previewProjections;
    /** Fit a model's preview projection when it loads (false: at its first preview; one-shot CLI runs). */
    public boolean previewFitOnLoad = true;
    /**
     * Bound of the text-embedding cache, bytes (0 = off: every prompt is encoded). A cached prompt or negative
     * prompt skips the text encoder; an SD 1.5 entry (one 75-token chunk) holds 77×768 floats, ≈ 231 KiB, an SDXL
     * one 77×2048 + 1280, ≈ 621 KiB. Off here (tests, tools); the server and the CLI turn it on
     * ({@code sdserve.text-cache-mb}).
     */
    public long textCacheBytes = 0;
    /** Job ids: prefix of generated ids. */
    public String jobIdPrefix = "job-";

    @Override
    public int maxLatentBatch() {
        return maxLatentBatch;
    }

    @Override
    public int maxEncodeBatch() {
        return maxEncodeBatch;
    }

    @Override
    public int maxDecodeBatch() {
        return maxDecodeBatch;
    }

    /** The model loader's settings (timeout, breaker). */
    public dev.sdserve.engine.ModelLoader.Settings loadSettings() {
        return new dev.sdserve.engine.ModelLoader.Settings(loadTimeoutMillis, loadBreakerFailures, loadBreakerDelayMillis);
    }

    public static ServiceConfig defaults() {
        return new ServiceConfig();
    }
}
