package dev.sdserve.scheduler;

import dev.sdserve.admission.AdmissionController;
import dev.sdserve.admission.Validation;
import dev.sdserve.image.ImageInputs;
import dev.sdserve.clock.Clock;
import dev.sdserve.clock.SimClock;
import dev.sdserve.engine.Engine;
import dev.sdserve.engine.LatentShape;
import dev.sdserve.engine.ModelInfo;
import dev.sdserve.engine.ModelLoader;
import dev.sdserve.engine.ModelResidency;
import dev.sdserve.job.GenerationRequest;
import dev.sdserve.job.GenerationService;
import dev.sdserve.job.Job;
import dev.sdserve.job.ResolvedRequest;
import dev.sdserve.job.ServeException;
import dev.sdserve.sampler.Sampler;

import java.security.SecureRandom;
import java.util.ArrayDeque;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executor;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicLong;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * The generation service ({@link GenerationService}, what the transports call): a step-level continuous-batching
 * scheduler over an {@link Engine}. This class is the front and the loop; the work is done by
 * <ul>
 *   <li>admission ({@link Validation}, then the {@link AdmissionController}'s decision on the predicted completion
 *       of everything admitted, {@code admission.CompletionPredictor}),</li>
 *   <li>the {@link Planner}, which holds the requests' states and returns one {@link StepPlan} per iteration,</li>
 *   <li>the {@link StepExecutor}, which runs the plan on the engine (failure isolation, retries) and returns a
 *       {@link StepResult} that the planner applies,</li>
 *   <li>the {@link Publisher}, which turns progress into events, previews, metrics and trace spans.</li>
 * </ul>
 *
 * <p>One scheduler thread runs iterations ({@link #runOnce()}): under the lock, housekeeping and either one step of
 * the background work (LoRA training, in the inference slack) or a plan; outside the lock, the engine call; under
 * the lock again, the result. Other threads (submissions, cancellations, model loads finishing) take the same lock.
 *
 * <p>All time comes from the injected {@link Clock}: with a {@link SimClock} and a fake engine that spends its cost
 * on that clock, the whole service runs in simulated time (tests, the simulator). Without {@link #start()}, a
 * caller can drive iterations itself with {@link #runOnce()}.
 */
public final class SchedulerService implements GenerationService, AutoCloseable {
    private static final Logger LOG = Logger.getLogger(SchedulerService.class.getName());

    private final Engine engine;
    private final ServiceConfig config;
    private final Clock clock;
    private final Validation validation;
    private final ExecutorService ownExecutor;
    private final Executor publishExecutor;
    private final SchedulerStats stats = new SchedulerStats();
    /** Which models are in memory; loads run off this thread (timeout, per-model circuit breaker). */
    private final ModelResidency residency;
    /** Null when the residency was given (its owner closes it). */
    private final ModelLoader ownLoader;
    private final Publisher publisher;
    private final Planner planner;
    private final StepExecutor executor;
    /** Text encodings already computed (off unless {@link ServiceConfig#textCacheBytes} &gt; 0). */
    private final TextEmbeddingCache textCache;

    private final Object lock = new Object();
    /** Jobs by id, finished ones too (the last {@code retainFinishedJobs}). */
    private final Map<String, Job> jobs = new ConcurrentHashMap<>();
    private final ArrayDeque<String> finishedIds = new ArrayDeque<>();
    private final AtomicLong idSeq = new AtomicLong();
    private final String idSalt;

    private volatile boolean draining;
    private volatile boolean running;
    private volatile BackgroundWork background;
    private Thread thread;

    /** With the engine's models loaded by a {@link ModelLoader} of its own (tests, the simulator, the CLI). */
    public SchedulerService(Engine engine, ServiceConfig config, Clock clock) {
        this(engine, null, config, clock);
    }

    public SchedulerService(Engine engine, ServiceConfig config) {
        this(engine, config, Clock.system());
    }

    /**
     * @param residency model residency shared with the model service (null: a {@link ModelLoader} of its own,
     *                  closed with the service)
     */
    public SchedulerService(Engine engine, ModelResidency residency, ServiceConfig config, Clock clock) {
        this.engine = engine;
        this.config = config;
        this.clock = clock;
        this.validation = new Validation(config.admission, engine::describe, config.samplers,
                config.randomSeed == null ? new SecureRandom()::nextLong : config.randomSeed, ImageInputs.PREPARER);
        if (config.publishExecutor != null) {
            this.publishExecutor = config.publishExecutor;
            this.ownExecutor = null;
        } else {
            this.ownExecutor = Executors.newSingleThreadExecutor(r -> {
                Thread t = new Thread(r, "sdserve-publisher");
                t.setDaemon(true);
                return t;
            });
            this.publishExecutor = ownExecutor;
        }
        this.idSalt = Long.toHexString(new SecureRandom().nextLong() & 0xFFFFFFL);
        this.ownLoader = residency == null ? new ModelLoader(engine, config.loadSettings()) : null;
        this.residency = residency == null ? ownLoader : residency;
        Publisher publisher = new Publisher(config, clock);
        this.publisher = publisher;
        this.planner = new Planner(config, clock, this.residency, new AdmissionController(config.admission), publisher,
                stats, () -> draining, this::afterFinish);
        ModelResidency loads = this.residency;
        this.textCache = new TextEmbeddingCache(config.textCacheBytes, m -> loads.status(m).loads(), stats);
        this.executor = new StepExecutor(engine, config, clock, stats, textCache);
        this.residency.listener(this::onModelLoad);
    }

    /** A load finished (error null) or failed: wake the scheduler; a failure ends the jobs waiting for the model. */
    private void onModelLoad(String model, ServeException error) {
        if (error == null && config.previewProjections != null && config.previewFitOnLoad) {
            config.previewProjections.fitInBackground(model); // the model's preview colours, off this thread
        }
        synchronized (lock) {
            if (error != null) {
                planner.loadFailed(model, error);
            }
            lock.notifyAll();
        }
    }

    // ------------------------------------------------------------------------------------------------ lifecycle

    /** Starts the scheduler thread. */
    public synchronized void start() {
        if (running) {
            return;
        }
        running = true;
        thread = new Thread(this::loop, "sdserve-scheduler");
        thread.setDaemon(true);
        thread.start();
    }

    /** Stops the scheduler thread (jobs still running stay where they are; see {@link #drain}). */
    public synchronized void stop() {
        running = false;
        Thread t = thread;
        thread = null;
        if (t != null) {
            synchronized (lock) {
                lock.notifyAll();
            }
            try {
                t.join(10_000);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
    }

    @Override
    public void close() {
        stop();
        if (ownLoader != null) {
            ownLoader.close();
        }
        if (ownExecutor != null) {
            ownExecutor.shutdown();
        }
    }

    public boolean isRunning() {
        return running;
    }

    /**
     * Stops admitting (new submissions get UNAVAILABLE), lets admitted jobs finish for up to {@code timeoutMillis}
     * of the service clock, then cancels the rest with UNAVAILABLE. Without a running scheduler thread it drives
     * the iterations itself. Returns the number of jobs cancelled at the end.
     */
    public int drain(long timeoutMillis) {
        draining = true;
        long start = clock.nanoTime();
        long limit = timeoutMillis * 1_000_000L;
        while (outstanding() > 0 && clock.nanoTime() - start < limit) {
            if (running) {
                synchronized (lock) {
                    try {
                        lock.wait(10);
                    } catch (InterruptedException e) {
                        Thread.currentThread().interrupt();
                        break;
                    }
                }
            } else if (!runOnce()) {
                break;
            }
        }
        synchronized (lock) {
            return planner.endAll(new ServeException(ServeException.Code.UNAVAILABLE,
                    "the server is shutting down: the job did not finish within the drain timeout of "
                            + timeoutMillis + " ms"));
        }
    }

    public boolean draining() {
        return draining;
    }

    private void loop() {
        while (running) {
            boolean worked;
            try {
                worked = runOnce();
            } catch (RuntimeException | OutOfMemoryError | StackOverflowError e) {
                // never let the scheduler thread die: every admitted job would hang
                LOG.log(Level.SEVERE, "scheduler iteration failed", e);
                worked = false;
            }
            if (!worked) {
                synchronized (lock) {
                    if (running && !planner.hasRunnableWork()) {
                        try {
                            lock.wait(config.idleWaitMillis);
                        } catch (InterruptedException e) {
                            Thread.currentThread().interrupt();
                            return;
                        }
                    }
                }
            }
        }
    }

    /**
     * Runs one scheduling iteration: housekeeping (cancellations, deadlines, stalled watchers), then one step of
     * the background work if the inference slack allows it, else a plan, its engine call and its result. Returns
     * false when there was nothing to run.
     */
    public boolean runOnce() {
        StepPlan plan;
        long t0 = config.statsTimer.getAsLong();
        BackgroundWork bg = background;
        synchronized (lock) {
            long now = clock.nanoTime();
            planner.housekeeping(now);
            boolean runBackground = bg != null && bg.wantsStep(() -> planner.minSlackMillis(now));
            plan = runBackground ? null : planner.schedule(now);
            if (plan == null) {
                stats.planningNanos.addAndGet(config.statsTimer.getAsLong() - t0);
                if (!runBackground) {
                    if (planner.waitingForLoads() && !(clock instanceof SimClock)) {
                        // work waits for a model load: wait a little for it (real time) and report progress, so a
                        // caller driving iterations keeps going (on a SimClock the caller moves time instead)
                        try {
                            lock.wait(config.idleWaitMillis);
                        } catch (InterruptedException e) {
                            Thread.currentThread().interrupt();
                            return false;
                        }
                        return true;
                    }
                    return false;
                }
            }
        }
        if (plan == null) { // the background work's turn (inference slack allows one of its steps)
            try {
                bg.runStep();
            } catch (RuntimeException e) {
                LOG.log(Level.SEVERE, "background step failed", e);
            }
            return true;
        }
        stats.iterations.incrementAndGet();
        stats.planningNanos.addAndGet(config.statsTimer.getAsLong() - t0);
        StepResult result = executor.execute(plan);
        synchronized (lock) {
            planner.updateFromOutput(plan, result);
        }
        return true;
    }

    /** Background work (LoRA training) run in the inference slack, or null for none. */
    public void setBackgroundWork(BackgroundWork work) {
        this.background = work;
    }

    // ------------------------------------------------------------------------------------- GenerationService

    @Override
    public Job submit(GenerationRequest request, boolean detached) {
        try {
            Job job = submitOrRefuse(request, detached);
            config.metrics.admitted(job.request().sloClass());
            return job;
        } catch (ServeException e) {
            config.metrics.refused(e.code());
            throw e;
        }
    }

    private Job submitOrRefuse(GenerationRequest request, boolean detached) {
        if (draining) {
            stats.rejectedDraining.incrementAndGet();
            throw new ServeException(ServeException.Code.UNAVAILABLE, "the server is draining: not accepting new jobs");
        }
        long nowMs = clock.currentTimeMillis();
        long nowNs = clock.nanoTime();
        ResolvedRequest r = validation.resolve(request, nowMs);
        ModelInfo info = engine.describe(r.model());
        boolean cold = !residency.isResident(r.model());
        if (cold) {
            ServeException refusal = residency.refusal(r.model()); // breaker open: refuse at once, with a retry hint
            if (refusal != null) {
                throw refusal;
            }
        }
        LatentShape shape = LatentShape.forImage(info, r.width(), r.height());
        Sampler sampler = config.samplers.find(r.sampler(), info.architecture(), info.predictionType());
        if (r.deadlineMillis() <= nowMs && !r.bestEffort()) {
            throw new ServeException(ServeException.Code.DEADLINE_EXCEEDED, "deadline", "the deadline has already passed", null);
        }
        long deadlineNs = nowNs + (r.deadlineMillis() - nowMs) * 1_000_000L;
        String id = config.jobIdPrefix + idSalt + "-" + idSeq.incrementAndGet();
        Job job = new Job(id, r, detached, nowMs);
        Work w = new Work(job, info, shape, sampler, nowNs, deadlineNs, config.admission.weightOf(r.tenant()),
                new JobPublisher(job, publishExecutor));
        w.textCache = textCache;
        w.decoderPreviews = publisher.decoderReadout(r) != null;
        synchronized (lock) {
            if (draining) {
                stats.rejectedDraining.incrementAndGet();
                throw new ServeException(ServeException.Code.UNAVAILABLE, "the server is draining: not accepting new jobs");
            }
            AdmissionController.Outcome outcome;
            try {
                outcome = planner.decide(w, nowNs);
            } catch (ServeException e) {
                boolean queueFull = e.getMessage().startsWith("queue full");
                if (!queueFull && planner.isProbe(nowNs)) {
                    // Idle, and refused only on predicted cost: the cost figures may be stale (a slow spell), and
                    // refusing would never let a measured call correct them. Run this one and measure.
                    outcome = AdmissionController.Outcome.ADMIT;
                    stats.admittedProbe.incrementAndGet();
                    LOG.info("admitting " + id + " as a probe on an idle server (" + e.getMessage() + ")");
                } else {
                    if (queueFull) {
                        stats.rejectedQueueFull.incrementAndGet();
                    } else {
                        stats.rejectedDeadline.incrementAndGet();
                    }
                    BackgroundWork bg = background;
                    if (bg != null) {
                        bg.inferenceRefused(nowNs / 1e6); // the machine is saturated: background work should back off
                    }
                    throw e;
                }
            }
            if (outcome == AdmissionController.Outcome.ADMIT_BEST_EFFORT) {
                stats.admittedBestEffort.incrementAndGet();
            }
            stats.admitted.incrementAndGet();
            jobs.put(id, job);
            planner.enqueue(w, nowMs);
            lock.notifyAll();
        }
        if (cold) {
            residency.load(r.model()); // starts now; the job waits in the queue (its deadline counts)
        }
        return job;
    }

    @Override
    public Optional<Job> find(String jobId) {
        return Optional.ofNullable(jobs.get(jobId));
    }

    @Override
    public boolean cancel(String jobId) {
        Job job = jobs.get(jobId);
        if (job == null) {
            throw ServeException.notFound("job '" + jobId + "' not found");
        }
        synchronized (lock) {
            boolean live = planner.cancel(jobId);
            if (live) {
                lock.notifyAll();
            }
            return live;
        }
    }

    @Override
    public boolean finishEarly(String jobId) {
        if (!jobs.containsKey(jobId)) {
            throw ServeException.notFound("job '" + jobId + "' not found");
        }
        synchronized (lock) {
            boolean live = planner.finishEarly(jobId);
            if (live) {
                lock.notifyAll();
            }
            return live;
        }
    }

    @Override
    public Collection<Job> jobs() {
        return List.copyOf(jobs.values());
    }

    /** A job has ended (under the lock): keep the last {@code retainFinishedJobs} for {@link #find}; wake waiters. */
    private void afterFinish(Work w) {
        finishedIds.addLast(w.job.id());
        while (finishedIds.size() > config.retainFinishedJobs) {
            jobs.remove(finishedIds.pollFirst());
        }
        lock.notifyAll();
    }

    // ------------------------------------------------------------------------------------------------ queries

    /**
     * Turns the text-embedding cache off (true) or back on at run time; its entries are kept meanwhile. Nothing
     * changes when it is off by configuration ({@link ServiceConfig#textCacheBytes} = 0). For side-by-side benches.
     */
    public void pauseTextCache(boolean paused) {
        textCache.pause(paused);
    }

    public SchedulerStats stats() {
        return stats;
    }

    public OnlineCostModel costModel() {
        return planner.costModel();
    }

    public ServiceConfig config() {
        return config;
    }

    public Clock clock() {
        return clock;
    }

    public Engine engine() {
        return engine;
    }

    /** Model residency (explicit loads, breaker state). */
    public ModelResidency loader() {
        return residency;
    }

    /** Jobs admitted and not yet finished for a model. */
    public int activeJobs(String model) {
        synchronized (lock) {
            return planner.activeJobs(model);
        }
    }

    /**
     * Unloads a model that no admitted job uses (the scheduler's lock is held, so none starts meanwhile); refuses
     * with FAILED_PRECONDITION while jobs for it are admitted. Returns whether it was resident.
     */
    public boolean unloadModel(String model) {
        engine.describe(model);
        synchronized (lock) {
            int n = planner.activeJobs(model);
            if (n > 0) {
                throw new ServeException(ServeException.Code.FAILED_PRECONDITION, null, "model '" + model + "' has " + n
                        + " job(s) in progress; unload it after they finish", 1000L);
            }
            return engine.unload(model);
        }
    }

    /** Jobs admitted and not yet finished. */
    public int outstanding() {
        synchronized (lock) {
            return planner.outstanding();
        }
    }

    /** For tests and the simulator: latent samples per denoise step of every running job, by job id. */
    Map<String, Integer> runningLatents() {
        synchronized (lock) {
            return planner.runningLatents();
        }
    }
}
