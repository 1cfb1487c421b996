package dev.sdserve.scheduler;

import dev.sdserve.admission.AdmissionController;
import dev.sdserve.admission.LoadItem;
import dev.sdserve.admission.Validation;
import dev.sdserve.engine.DenoiseBatch;
import dev.sdserve.engine.DenoiseItem;
import dev.sdserve.engine.EncodeItem;
import dev.sdserve.engine.Engine;
import dev.sdserve.engine.LatentShape;
import dev.sdserve.engine.ModelInfo;
import dev.sdserve.job.GenerationRequest;
import dev.sdserve.job.GenerationService;
import dev.sdserve.job.Job;
import dev.sdserve.job.JobEvent;
import dev.sdserve.job.JobState;
import dev.sdserve.job.PreviewOptions;
import dev.sdserve.job.ResolvedRequest;
import dev.sdserve.job.ServeException;
import dev.sdserve.image.InfoText;
import dev.sdserve.image.PngText;
import dev.sdserve.preview.Png;
import dev.sdserve.preview.Previews;
import dev.sdserve.sampler.NoiseSource;
import dev.sdserve.sampler.Sampler;
import dev.sdserve.sampler.SamplerState;

import java.security.SecureRandom;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Comparator;
import java.util.HashMap;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executor;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * The generation service: admission plus a step-level continuous-batching scheduler over an {@link Engine}.
 *
 * <p>One scheduler thread runs iterations ({@link #runOnce()}); each plans and makes exactly one engine call — a
 * text-encode batch, one denoising step for a batch of jobs (same model and latent shape, any mix of samplers,
 * step counts, guidance scales, timesteps), or a decode batch — then applies the results and publishes events.
 * Work is ordered by least slack (deadline − now − predicted remaining work), each denoise batch is split between
 * tenants by weight when it cannot hold everyone, best-effort jobs yield (pause) to the others, and the batch
 * grows only while the cost model predicts every included job still meets its deadline.
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
    private final OnlineCostModel cost;
    private final Validation validation;
    private final AdmissionController admission;
    private final Executor publishExecutor;
    private final ExecutorService ownExecutor;
    private final SchedulerStats stats = new SchedulerStats();
    /** Loads models off this thread (timeout, per-model circuit breaker). */
    private final ModelLoader loader;
    /** Failed loads not yet applied to their waiting jobs (guarded by the lock). */
    private final List<Map.Entry<String, ServeException>> failedLoads = new ArrayList<>();

    private final Object lock = new Object();
    /** Admitted, unfinished work, in admission order. Guarded by {@link #lock}. */
    private final List<Work> works = new ArrayList<>();
    private final Map<String, Job> jobs = new ConcurrentHashMap<>();
    private final Map<String, Work> workById = new HashMap<>();
    /** Recent mean UNet samples per denoise call, by bucket (guarded by the lock). */
    private final Map<String, Double> recentLatents = new HashMap<>();
    private final ArrayDeque<String> finishedIds = new ArrayDeque<>();
    private final AtomicLong idSeq = new AtomicLong();
    private final String idSalt;

    private volatile boolean draining;
    private volatile boolean running;
    /** When the last engine call ended (scheduler clock), for {@link #isProbe}. */
    private volatile long lastEngineCallNs = Long.MIN_VALUE;
    private Thread thread;

    public SchedulerService(Engine engine, ServiceConfig config, Clock clock) {
        this.engine = engine;
        this.config = config;
        this.clock = clock;
        this.cost = new OnlineCostModel(config.costPrior);
        this.validation = config.randomSeed == null
                ? new Validation(config.admission, engine::describe, config.samplers)
                : new Validation(config.admission, engine::describe, config.samplers, config.randomSeed);
        this.admission = new AdmissionController(config.admission);
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
        this.loader = new ModelLoader(engine, config);
        loader.listener(this::onModelLoad);
    }

    /** A load finished (error null) or failed: wake the scheduler; a failure ends the jobs waiting for the model. */
    private void onModelLoad(String model, ServeException error) {
        synchronized (lock) {
            if (error != null) {
                failedLoads.add(Map.entry(model, error));
            }
            lock.notifyAll();
        }
    }

    public SchedulerService(Engine engine, ServiceConfig config) {
        this(engine, config, Clock.system());
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
        loader.close();
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
        int n = 0;
        synchronized (lock) {
            for (Work w : new ArrayList<>(works)) {
                end(w, JobState.CANCELLED, new ServeException(ServeException.Code.UNAVAILABLE,
                        "the server is shutting down: the job did not finish within the drain timeout of "
                                + timeoutMillis + " ms"));
                n++;
            }
        }
        return n;
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
                    if (running && !hasRunnableWork()) {
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

    /** Admitted work waits for a model that is not resident (or a failed load is to be applied). Under the lock. */
    private boolean waitingForLoads() {
        if (!failedLoads.isEmpty()) {
            return true;
        }
        for (Work w : works) {
            if (!w.inFlight && !engine.isResident(w.req.model())) {
                return true;
            }
        }
        return false;
    }

    private boolean hasRunnableWork() {
        if (!failedLoads.isEmpty()) {
            return true;
        }
        for (Work w : works) {
            if (!w.inFlight && engine.isResident(w.req.model())) {
                return true;
            }
        }
        return false;
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
        boolean cold = !engine.isResident(r.model());
        if (cold) {
            ServeException refusal = loader.refusal(r.model()); // breaker open: refuse at once, with a retry hint
            if (refusal != null) {
                throw refusal;
            }
        }
        LatentShape shape = LatentShape.forImage(info, r.width(), r.height());
        Sampler sampler = config.samplers.find(r.sampler());
        if (r.deadlineMillis() <= nowMs && !r.bestEffort()) {
            throw new ServeException(ServeException.Code.DEADLINE_EXCEEDED, "deadline", "the deadline has already passed", null);
        }
        long deadlineNs = nowNs + (r.deadlineMillis() - nowMs) * 1_000_000L;
        String id = config.jobIdPrefix + idSalt + "-" + idSeq.incrementAndGet();
        Job job = new Job(id, r, detached, nowMs);
        Work w = new Work(job, info, shape, sampler, nowNs, deadlineNs, config.admission.weightOf(r.tenant()),
                new JobPublisher(job, publishExecutor));
        synchronized (lock) {
            if (draining) {
                stats.rejectedDraining.incrementAndGet();
                throw new ServeException(ServeException.Code.UNAVAILABLE, "the server is draining: not accepting new jobs");
            }
            AdmissionController.Outcome outcome;
            try {
                outcome = admit(w, nowNs);
            } catch (ServeException e) {
                boolean queueFull = e.getMessage().startsWith("queue full");
                if (!queueFull && isProbe(nowNs)) {
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
            int position = 0;
            for (Work o : works) {
                if (o.phase == Work.Phase.ENCODE && !o.inFlight) {
                    position++;
                }
            }
            w.span = config.tracing.request(id, r.model(), r.sloClass().name().toLowerCase(java.util.Locale.ROOT));
            w.enterStage("queue");
            works.add(w);
            workById.put(id, w);
            jobs.put(id, job);
            long est = nowMs + Math.round(works.size() > 1 ? stepMillis(w) : 0);
            w.publisher.event(new JobEvent.Queued(id, position, est));
            lock.notifyAll();
        }
        if (cold) {
            loader.load(r.model()); // starts now; the job waits in the queue (its deadline counts)
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
            Work w = workById.get(jobId);
            if (w == null || job.state().terminal()) {
                return false;
            }
            job.requestCancel();
            if (!w.inFlight) {
                end(w, JobState.CANCELLED, new ServeException(ServeException.Code.CANCELLED, "cancelled by the client"));
            }
            lock.notifyAll();
            return true;
        }
    }

    @Override
    public Collection<Job> jobs() {
        return List.copyOf(jobs.values());
    }

    public SchedulerStats stats() {
        return stats;
    }

    public OnlineCostModel costModel() {
        return cost;
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

    /** The model loader (residency, explicit loads, breaker state). */
    public ModelLoader loader() {
        return loader;
    }

    /** Jobs admitted and not yet finished for a model. */
    public int activeJobs(String model) {
        synchronized (lock) {
            int n = 0;
            for (Work w : works) {
                if (w.req.model().equals(model)) {
                    n++;
                }
            }
            return n;
        }
    }

    /**
     * Unloads a model that no admitted job uses (the scheduler's lock is held, so none starts meanwhile); refuses
     * with FAILED_PRECONDITION while jobs for it are admitted. Returns whether it was resident.
     */
    public boolean unloadModel(String model) {
        engine.describe(model);
        synchronized (lock) {
            int n = activeJobs(model);
            if (n > 0) {
                throw new ServeException(ServeException.Code.FAILED_PRECONDITION, null, "model '" + model + "' has " + n
                        + " job(s) in progress; unload it after they finish", 1000L);
            }
            return engine.unload(model);
        }
    }

    /**
     * Whether a request the deadline check refused is admitted anyway: nothing is admitted and the last engine call
     * ended at least {@code probeAfterIdleMillis} ago (so the predictions rest on old measurements only; a server
     * that never ran a call predicts from its prior and refuses as usual). Lock held.
     */
    private boolean isProbe(long nowNs) {
        long after = config.admission.probeAfterIdleMillis;
        return after > 0 && works.isEmpty() && lastEngineCallNs != Long.MIN_VALUE && nowNs - lastEngineCallNs >= after * 1_000_000L;
    }

    /** Jobs admitted and not yet finished. */
    public int outstanding() {
        synchronized (lock) {
            return works.size();
        }
    }

    // --------------------------------------------------------------------------------------------- admission

    private AdmissionController.Outcome admit(Work cand, long nowNs) {
        List<Work> all = new ArrayList<>(works);
        all.add(cand);
        Map<String, Profile> without = profiles(works);
        Map<String, Profile> with = profiles(all);
        Map<String, double[]> bucketInfo = new HashMap<>();
        List<LoadItem> before = new ArrayList<>(works.size());
        List<LoadItem> after = new ArrayList<>(works.size());
        double earliestFree = works.isEmpty() ? 0 : Double.MAX_VALUE;
        for (Work w : works) {
            LoadItem li = loadItem(w, without, bucketInfo);
            before.add(li);
            after.add(loadItem(w, with, bucketInfo));
            earliestFree = Math.min(earliestFree, li.ownMillis());
        }
        return admission.decide(before, after, loadItem(cand, with, bucketInfo), nowNs, works.size(), earliestFree);
    }

    private LoadItem loadItem(Work w, Map<String, Profile> profiles, Map<String, double[]> bucketInfo) {
        double own = ownRemainingMillis(w, profiles.get(w.bucket)) + loadWaitMillis(w.req.model(), bucketInfo);
        double work = workMillis(w, bucketInfo);
        return new LoadItem(w.tenant(), w.weight, w.bestEffort(), w.deadlineNanos, own, work);
    }

    /**
     * Predicted denoise time of a bucket's jobs: step {@code s} from now runs with every job that still has at
     * least {@code s} evaluations left (capped at the batch limit), so the step time falls as jobs finish.
     */
    private final class Profile {
        /** prefix[s] = predicted time of the next s steps of a job that stays that long. */
        final double[] prefix;

        Profile(String model, LatentShape shape, List<Work> members) {
            int maxRem = 0;
            for (Work w : members) {
                maxRem = Math.max(maxRem, w.remainingEvals());
            }
            int[] endingAt = new int[maxRem + 2];
            for (Work w : members) {
                endingAt[w.remainingEvals()] += w.latentPerStep();
            }
            prefix = new double[maxRem + 1];
            int load = 0;
            int[] loadAt = new int[maxRem + 2];
            for (int r = maxRem; r >= 1; r--) {
                load += endingAt[r];
                loadAt[r] = load;
            }
            // Arrivals keep replacing departures under load: never predict a batch below the recent mean.
            double recent = recentLatents.getOrDefault(Work.bucketOf(model, shape), 0.0);
            for (int st = 1; st <= maxRem; st++) {
                int b = Math.max(1, Math.min(config.maxLatentBatch, Math.max(loadAt[st], (int) Math.round(recent))));
                prefix[st] = prefix[st - 1] + cost.predictMillis(model, Stage.DENOISE, shape, b);
            }
        }

        double denoiseMillis(int steps) {
            if (steps < prefix.length) {
                return prefix[steps];
            }
            double last = prefix.length > 1 ? prefix[prefix.length - 1] - prefix[prefix.length - 2] : 0;
            return prefix[prefix.length - 1] + (steps - prefix.length + 1) * last;
        }
    }

    /** Profiles of the jobs still to denoise (encoding or denoising), by bucket. */
    private Map<String, Profile> profiles(List<Work> ws) {
        Map<String, List<Work>> by = new HashMap<>();
        for (Work w : ws) {
            if (w.phase == Work.Phase.ENCODE || w.phase == Work.Phase.DENOISE) {
                by.computeIfAbsent(w.bucket, k -> new ArrayList<>()).add(w);
            }
        }
        Map<String, Profile> out = new HashMap<>();
        for (Map.Entry<String, List<Work>> e : by.entrySet()) {
            Work f = e.getValue().get(0);
            out.put(e.getKey(), new Profile(f.req.model(), f.shape, e.getValue()));
        }
        return out;
    }

    /** Predicted wait for a model to become resident (0 when it is), cached per admission decision. */
    private double loadWaitMillis(String model, Map<String, double[]> cache) {
        return cache.computeIfAbsent("load:" + model, k -> new double[]{
                engine.isResident(model) ? 0 : loader.predictLoadMillis(model)})[0];
    }

    /** Critical path of the work's remaining stages under the bucket's load profile. */
    private double ownRemainingMillis(Work w, Profile profile) {
        double ms = 0;
        if (w.phase == Work.Phase.ENCODE) {
            ms += cost.predictMillis(w.req.model(), Stage.ENCODE, null, w.encodeItems());
        }
        if ((w.phase == Work.Phase.ENCODE || w.phase == Work.Phase.DENOISE) && profile != null) {
            ms += profile.denoiseMillis(w.remainingEvals());
        }
        ms += cost.predictMillis(w.req.model(), Stage.DECODE, w.shape, w.req.images());
        return ms;
    }

    /** Machine time the work still needs at the best batched throughput of its bucket (encode/decode amortised). */
    private double workMillis(Work w, Map<String, double[]> bucketInfo) {
        double ms = 0;
        String m = w.req.model();
        if (w.phase == Work.Phase.ENCODE) {
            int b = config.maxEncodeBatch;
            ms += cost.predictMillis(m, Stage.ENCODE, null, b) / b * w.encodeItems();
        }
        if (w.phase == Work.Phase.ENCODE || w.phase == Work.Phase.DENOISE) {
            double thr = bucketInfo.computeIfAbsent(w.bucket, k -> new double[]{bestThroughput(m, w.shape)})[0];
            ms += w.remainingEvals() * w.latentPerStep() / thr;
        }
        int d = config.maxDecodeBatch;
        ms += cost.predictMillis(m, Stage.DECODE, w.shape, d) / d * w.req.images();
        return ms;
    }

    /** Latent samples per millisecond at the most efficient batch size within the limit. */
    private double bestThroughput(String model, LatentShape shape) {
        double best = 0;
        for (int b = 1; ; b = Math.min(b * 2, config.maxLatentBatch)) {
            double c = cost.predictMillis(model, Stage.DENOISE, shape, b);
            best = Math.max(best, c <= 0 ? Double.MAX_VALUE / 1e6 : b / c);
            if (b >= config.maxLatentBatch) {
                break;
            }
        }
        return best;
    }

    private double stepMillis(Work w) {
        return cost.predictMillis(w.req.model(), Stage.DENOISE, w.shape, w.latentPerStep());
    }

    // ------------------------------------------------------------------------------------------- iterations

    /** A plan for one engine call. */
    record Plan(Stage stage, String model, LatentShape shape, List<Work> members) {
    }

    /**
     * Runs one scheduling iteration: housekeeping (cancellations, deadlines, stalled watchers), planning, one
     * engine call, applying its results. Returns false when there was nothing to run.
     */
    public boolean runOnce() {
        Plan plan;
        long t0 = config.statsTimer.getAsLong();
        BackgroundWork bg = background;
        boolean runBackground;
        synchronized (lock) {
            long now = clock.nanoTime();
            housekeeping(now);
            runBackground = bg != null && bg.wantsStep(() -> minSlackMillis(now));
            plan = runBackground ? null : plan(now);
            if (plan == null) {
                stats.planningNanos.addAndGet(config.statsTimer.getAsLong() - t0);
                if (!runBackground) {
                    if (waitingForLoads() && !(clock instanceof SimClock)) {
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
            for (Work w : plan == null ? List.<Work>of() : plan.members) {
                w.inFlight = true;
            }
            if (plan == null) {
                // background step below
            } else if (plan.stage == Stage.ENCODE) {
                for (Work w : plan.members) {
                    w.encodeStart = now;
                    w.enterStage("encode");
                    w.job.setState(JobState.ENCODING);
                    w.publisher.event(new JobEvent.Started(w.job.id(), clock.currentTimeMillis()));
                }
            } else if (plan.stage == Stage.DECODE) {
                for (Work w : plan.members) {
                    w.decodeStart = now;
                    w.enterStage("decode");
                    w.job.setState(JobState.DECODING);
                }
            } else {
                for (Work w : plan.members) {
                    if (w.denoiseStart < 0) {
                        w.denoiseStart = now;
                    }
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
        execute(plan);
        return true;
    }

    private volatile BackgroundWork background;

    /** Background work (LoRA training) run in the inference slack, or null for none. */
    public void setBackgroundWork(BackgroundWork work) {
        this.background = work;
    }

    /**
     * Least slack (ms) over admitted inference work not yet finished; +∞ when there is none; −∞ when best-effort
     * work (no deadline to measure against) is waiting, so background work never delays it either.
     *
     * <p>The slack is measured against the admission controller's finish prediction (requests served in deadline
     * order, each finishing after the work queued ahead of it, times the prediction safety factor), not against a
     * request's own remaining steps alone: near saturation the work ahead of a request, not its own steps, decides
     * when it ends, and a background step delays all of it.
     */
    private double minSlackMillis(long now) {
        Map<String, Profile> load = null;
        Map<String, double[]> bucketInfo = new HashMap<>();
        List<LoadItem> items = new ArrayList<>();
        double min = Double.POSITIVE_INFINITY;
        for (Work w : works) {
            if (w.phase == Work.Phase.DONE) {
                continue;
            }
            if (w.bestEffort()) {
                return Double.NEGATIVE_INFINITY;
            }
            if (load == null) {
                load = profiles(works);
            }
            min = Math.min(min, slackMillis(w, now, load));
            items.add(loadItem(w, load, bucketInfo));
        }
        if (!items.isEmpty()) {
            for (Map.Entry<LoadItem, Double> e : admission.predictFinish(items, now).entrySet()) {
                min = Math.min(min, (e.getKey().deadlineNanos() - e.getValue()) / 1e6);
            }
        }
        return min;
    }

    private void housekeeping(long now) {
        if (!failedLoads.isEmpty()) {
            for (Map.Entry<String, ServeException> f : failedLoads) {
                if (engine.isResident(f.getKey())) {
                    continue; // loaded meanwhile (e.g. a timed-out load that finished after all)
                }
                for (Work w : new ArrayList<>(works)) {
                    if (!w.inFlight && w.req.model().equals(f.getKey())) {
                        stats.failed.incrementAndGet();
                        end(w, JobState.FAILED, f.getValue());
                    }
                }
            }
            failedLoads.clear();
        }
        long realNow = System.nanoTime();
        long stallLimit = config.stalledWatcherMillis * 1_000_000L;
        for (int i = works.size() - 1; i >= 0; i--) {
            Work w = works.get(i);
            if (w.inFlight) {
                continue;
            }
            if (w.job.cancelRequested()) {
                end(w, JobState.CANCELLED, new ServeException(ServeException.Code.CANCELLED, "cancelled by the client"));
            } else if (config.dropLateRequests && !w.bestEffort() && now > w.deadlineNanos) {
                stats.deadlineExceeded.incrementAndGet();
                end(w, JobState.FAILED, new ServeException(ServeException.Code.DEADLINE_EXCEEDED,
                        "the deadline passed before the job finished (at " + describeProgress(w) + ")"));
            } else if (stallLimit > 0 && !w.job.detached() && w.job.watcherCount() > 0
                    && w.job.maxStalledNanos(realNow) > stallLimit) {
                stats.stalledWatchersCancelled.incrementAndGet();
                end(w, JobState.CANCELLED, new ServeException(ServeException.Code.CANCELLED,
                        "cancelled: the event stream's consumer took no event for more than "
                                + config.stalledWatcherMillis + " ms"));
            }
        }
    }

    private String describeProgress(Work w) {
        if (w.phase != Work.Phase.DONE && !engine.isResident(w.req.model())) {
            return "waiting for model '" + w.req.model() + "' to load";
        }
        return switch (w.phase) {
            case ENCODE -> "text encoding";
            case DENOISE -> "step " + w.evalsDone() + " of " + w.totalEvals;
            case DECODE, DONE -> "decoding";
        };
    }

    /** Slack in ms: time to the deadline minus the predicted remaining critical path under the current load. */
    private double slackMillis(Work w, long now, Map<String, Profile> profiles) {
        return (w.deadlineNanos - now) / 1e6 - ownRemainingMillis(w, profiles.get(w.bucket));
    }

    private Plan plan(long now) {
        if (works.isEmpty()) {
            return null;
        }
        Map<String, Profile> load = profiles(works);
        Map<Work, Double> slack = new IdentityHashMap<>();
        Work urgent = null;
        Work forced = null;
        // Only resident models are planned; jobs of the others wait (a load runs on the loader's thread meanwhile).
        Map<String, Boolean> resident = new HashMap<>();
        for (Work w : works) {
            if (w.inFlight || w.phase == Work.Phase.DONE) {
                continue;
            }
            if (!resident.computeIfAbsent(w.req.model(), engine::isResident)) {
                continue;
            }
            double s = slackMillis(w, now, load);
            if (w.wasInLastBatch) {
                s -= config.slackStickinessMillis; // hysteresis: no least-laxity thrashing between equal jobs
            }
            slack.put(w, s);
            if (urgent == null || before(w, s, urgent, slack.get(urgent))) {
                urgent = w;
            }
            if (w.phase != Work.Phase.DENOISE && w.stageWait >= config.maxStageWaitIterations
                    && (forced == null || before(w, s, forced, slack.get(forced)))) {
                forced = w;
            }
        }
        for (var e : resident.entrySet()) {
            if (!e.getValue()) {
                loader.load(e.getKey()); // joins the load in progress, or starts one (e.g. after an eviction)
            }
        }
        if (urgent == null) {
            return null;
        }
        Work pick = forced != null ? forced : urgent;
        Plan p = switch (pick.phase) {
            case ENCODE -> planEncode(pick, slack);
            case DECODE -> planDecode(pick, slack);
            default -> planDenoise(pick, slack, now);
        };
        if (p.stage == Stage.DENOISE) {
            for (Work w : works) {
                if (!w.inFlight && w.phase != Work.Phase.DENOISE) {
                    w.stageWait++;
                }
            }
        }
        return p;
    }

    /** Ordering: non-best-effort before best-effort, then least slack, then admission order. */
    private static boolean before(Work a, double sa, Work b, double sb) {
        if (a.bestEffort() != b.bestEffort()) {
            return !a.bestEffort();
        }
        if (sa != sb) {
            return sa < sb;
        }
        return a.admittedNanos < b.admittedNanos;
    }

    private List<Work> sortedMembers(Work pick, Map<Work, Double> slack, Work.Phase phase, boolean sameBucket) {
        List<Work> m = new ArrayList<>();
        for (Work w : works) {
            if (!w.inFlight && w.phase == phase && w.req.model().equals(pick.req.model())
                    && (!sameBucket || w.bucket.equals(pick.bucket))) {
                m.add(w);
            }
        }
        m.sort((a, b) -> a == b ? 0 : before(a, slack.get(a), b, slack.get(b)) ? -1 : 1);
        return m;
    }

    private Plan planEncode(Work pick, Map<Work, Double> slack) {
        List<Work> chosen = new ArrayList<>();
        int items = 0;
        for (Work w : sortedMembers(pick, slack, Work.Phase.ENCODE, false)) {
            if (!chosen.isEmpty() && items + w.encodeItems() > config.maxEncodeBatch) {
                continue;
            }
            chosen.add(w);
            items += w.encodeItems();
        }
        return new Plan(Stage.ENCODE, pick.req.model(), null, chosen);
    }

    private Plan planDecode(Work pick, Map<Work, Double> slack) {
        List<Work> chosen = new ArrayList<>();
        int items = 0;
        for (Work w : sortedMembers(pick, slack, Work.Phase.DECODE, true)) {
            if (!chosen.isEmpty() && items + w.req.images() > config.maxDecodeBatch) {
                continue;
            }
            chosen.add(w);
            items += w.req.images();
        }
        return new Plan(Stage.DECODE, pick.req.model(), pick.shape, chosen);
    }

    /**
     * Chooses the denoise batch of the picked work's bucket. Non-best-effort work first: when it does not all fit,
     * each tenant first gets up to its weighted share of the batch (in least-slack order), then the rest fills by
     * least slack. Best-effort work fills what is left. A job joins only while the predicted step time keeps every
     * already-chosen job (that can still make it) within its deadline.
     */
    private Plan planDenoise(Work pick, Map<Work, Double> slack, long now) {
        List<Work> members = sortedMembers(pick, slack, Work.Phase.DENOISE, true);
        String model = pick.req.model();
        LatentShape shape = pick.shape;
        int cap = config.maxLatentBatch;

        List<Work> normal = new ArrayList<>();
        List<Work> best = new ArrayList<>();
        int normalLatents = 0;
        Map<String, Double> weights = new LinkedHashMap<>();
        for (Work w : members) {
            if (w.bestEffort()) {
                best.add(w);
            } else {
                normal.add(w);
                normalLatents += w.latentPerStep();
                weights.putIfAbsent(w.tenant(), w.weight);
            }
        }
        Selection sel = new Selection(model, shape, cap, now);
        if (normalLatents > cap && weights.size() > 1) {
            double tw = weights.values().stream().mapToDouble(Double::doubleValue).sum();
            Map<String, Integer> used = new HashMap<>();
            for (Work w : normal) {
                double share = cap * weights.get(w.tenant()) / tw;
                int u = used.getOrDefault(w.tenant(), 0);
                if (u + w.latentPerStep() <= Math.max(share, w.latentPerStep()) && sel.tryAdd(w)) {
                    used.put(w.tenant(), u + w.latentPerStep());
                }
            }
        }
        for (Work w : normal) {
            sel.tryAdd(w);
        }
        for (Work w : best) {
            boolean added = sel.tryAdd(w);
            if (!added && w.wasInLastBatch) {
                w.pauses++;
                stats.pauses.incrementAndGet();
            } else if (added && w.pauses > 0 && !w.wasInLastBatch) {
                stats.resumes.incrementAndGet();
            }
        }
        for (Work w : members) {
            w.wasInLastBatch = sel.chosenSet.contains(w);
        }
        return new Plan(Stage.DENOISE, model, shape, sel.chosen);
    }

    /** Greedy batch builder with the deadline-aware size bound. */
    private final class Selection {
        final String model;
        final LatentShape shape;
        final int cap;
        final long now;
        final List<Work> chosen = new ArrayList<>();
        final java.util.Set<Work> chosenSet = java.util.Collections.newSetFromMap(new IdentityHashMap<>());
        int latents;
        /** Largest step time the chosen (still feasible) jobs tolerate. */
        double tolerance = Double.MAX_VALUE;

        Selection(String model, LatentShape shape, int cap, long now) {
            this.model = model;
            this.shape = shape;
            this.cap = cap;
            this.now = now;
        }

        boolean tryAdd(Work w) {
            if (chosenSet.contains(w)) {
                return false;
            }
            int n = latents + w.latentPerStep();
            if (chosen.isEmpty()) {
                add(w, n);
                return true;
            }
            if (n > cap) {
                return false;
            }
            double c = cost.predictMillis(model, Stage.DENOISE, shape, n);
            if (c > tolerance) {
                return false;
            }
            add(w, n);
            return true;
        }

        private void add(Work w, int n) {
            chosen.add(w);
            chosenSet.add(w);
            latents = n;
            double c = cost.predictMillis(model, Stage.DENOISE, shape, n);
            if (!w.bestEffort()) {
                double dec = cost.predictMillis(model, Stage.DECODE, shape, w.req.images());
                double tol = ((w.deadlineNanos - now) / 1e6 - dec) / Math.max(1, w.remainingEvals());
                if (tol >= c) {
                    tolerance = Math.min(tolerance, tol);
                }
            }
        }
    }

    // -------------------------------------------------------------------------------------------- execution

    private void execute(Plan plan) {
        switch (plan.stage) {
            case ENCODE -> runEncode(plan.model, plan.members);
            case DENOISE -> runDenoise(plan.model, plan.shape, plan.members);
            case DECODE -> runDecode(plan.model, plan.shape, plan.members);
        }
    }

    /** Runs a call; on failure retries split in halves (once per level) to isolate failing jobs. */
    private interface Call {
        void run(List<Work> members);
    }

    private void withIsolation(List<Work> members, Call call, String what) {
        withIsolation(members, call, what, false);
    }

    /**
     * An engine failure (a runtime exception, or an OutOfMemoryError: a batch too large for the device) splits the
     * batch in halves, down to single jobs; a single job that fails is retried once before it fails, so a transient
     * fault costs a step and a poisonous request fails alone. Engine calls happen before any state is advanced, so
     * a retry repeats the same step.
     */
    private void withIsolation(List<Work> members, Call call, String what, boolean retried) {
        try {
            call.run(members);
        } catch (RuntimeException | OutOfMemoryError e) {
            if (members.size() > 1 && config.splitFailedBatches) {
                stats.splitRetries.incrementAndGet();
                LOG.log(Level.WARNING, what + " of " + members.size() + " jobs failed (" + e + "); retrying split in halves");
                int h = members.size() / 2;
                withIsolation(new ArrayList<>(members.subList(0, h)), call, what, false);
                withIsolation(new ArrayList<>(members.subList(h, members.size())), call, what, false);
            } else if (!retried && config.splitFailedBatches) {
                stats.splitRetries.incrementAndGet();
                LOG.log(Level.WARNING, what + " of " + members.size() + " job(s) failed (" + e + "); retrying once");
                withIsolation(members, call, what, true);
            } else {
                LOG.log(Level.WARNING, what + " failed for " + members.size() + " job(s)", e);
                synchronized (lock) {
                    for (Work w : members) {
                        w.inFlight = false;
                        stats.failed.incrementAndGet();
                        // a ServeException from the engine (unknown LoRA, LoRA for another architecture, model
                        // that cannot be loaded) keeps its code and message
                        end(w, JobState.FAILED, e instanceof ServeException se ? se
                                : new ServeException(ServeException.Code.INTERNAL,
                                "the engine failed during " + what + ": " + e.getMessage()));
                    }
                }
            }
        }
    }

    private void runEncode(String model, List<Work> members) {
        withIsolation(members, ms -> {
            List<EncodeItem> items = new ArrayList<>();
            for (Work w : ms) {
                items.add(new EncodeItem(w.req.prompt(), w.req.clipSkip(), w.req.loras()));
                if (w.guided) {
                    items.add(new EncodeItem(w.req.negativePrompt(), w.req.clipSkip(), w.req.loras()));
                }
            }
            long t0 = clock.nanoTime();
            long r0 = config.statsTimer.getAsLong();
            float[][] out = engine.encode(model, items);
            stats.engineNanos.addAndGet(config.statsTimer.getAsLong() - r0);
            double ms0 = clock.millisSince(t0);
            lastEngineCallNs = clock.nanoTime();
            cost.observe(model, Stage.ENCODE, null, items.size(), ms0);
            config.metrics.batch(dev.sdserve.ops.ServeMetrics.STAGE_ENCODE, items.size());
            stats.encodeCalls.incrementAndGet();
            if (out.length != items.size()) {
                throw new IllegalStateException("engine returned " + out.length + " conditionings for " + items.size() + " prompts");
            }
            // Initial noise and sampler states are made outside the lock: only this thread touches them.
            long s0 = config.statsTimer.getAsLong();
            List<SamplerState[]> states = new ArrayList<>();
            for (Work w : ms) {
                SamplerState[] st = new SamplerState[w.req.images()];
                for (int i = 0; i < st.length; i++) {
                    NoiseSource noise = config.noise.apply(w.req.seedOf(i));
                    float[] init = new float[w.shape.size()];
                    noise.fill(init);
                    st[i] = w.sampler.start(w.req.steps(), init, noise);
                }
                states.add(st);
            }
            stats.samplerNanos.addAndGet(config.statsTimer.getAsLong() - s0);
            long now = clock.nanoTime();
            synchronized (lock) {
                int k = 0;
                for (int j = 0; j < ms.size(); j++) {
                    Work w = ms.get(j);
                    w.inFlight = false;
                    if (w.phase == Work.Phase.DONE) {
                        continue; // ended while in flight (drain)
                    }
                    w.cond = out[k++];
                    w.uncond = w.guided ? out[k++] : null;
                    w.states = states.get(j);
                    w.totalEvals = w.states[0].totalEvaluations();
                    w.encodeEnd = now;
                    w.enterStage("denoise");
                    w.phase = Work.Phase.DENOISE;
                    w.stageWait = 0;
                    w.job.setState(JobState.DENOISING);
                    if (w.job.cancelRequested()) {
                        end(w, JobState.CANCELLED, new ServeException(ServeException.Code.CANCELLED, "cancelled by the client"));
                    }
                }
            }
        }, "text encoding");
    }

    private void runDenoise(String model, LatentShape shape, List<Work> members) {
        withIsolation(members, ms -> {
            long s0 = config.statsTimer.getAsLong();
            List<SamplerState> flat = new ArrayList<>();
            List<Work> owner = new ArrayList<>();
            for (Work w : ms) {
                for (SamplerState s : w.states) {
                    flat.add(s);
                    owner.add(w);
                }
            }
            // Sampler maths is per image and independent: spread it over cores for large batches.
            float[][] inputs = new float[flat.size()][];
            forEachImage(flat.size(), i -> inputs[i] = flat.get(i).modelInput());
            List<DenoiseItem> items = new ArrayList<>(flat.size());
            for (int i = 0; i < flat.size(); i++) {
                Work w = owner.get(i);
                items.add(new DenoiseItem(inputs[i], flat.get(i).timestep(), w.cond, w.uncond, w.req.guidance(), w.req.loras()));
            }
            stats.samplerNanos.addAndGet(config.statsTimer.getAsLong() - s0);
            DenoiseBatch batch = new DenoiseBatch(model, shape, items);
            long t0 = clock.nanoTime();
            long r0 = config.statsTimer.getAsLong();
            float[][] eps = engine.denoise(batch);
            stats.engineNanos.addAndGet(config.statsTimer.getAsLong() - r0);
            double stepMs = clock.millisSince(t0);
            lastEngineCallNs = clock.nanoTime();
            cost.observe(model, Stage.DENOISE, shape, batch.unetSamples(), stepMs);
            config.metrics.batch(dev.sdserve.ops.ServeMetrics.STAGE_DENOISE, batch.unetSamples());
            int scale = ms.get(0).info.vaeScale();
            config.metrics.step(shape.width() * scale + "x" + shape.height() * scale, (long) (stepMs * 1e6));
            stats.denoiseCalls.incrementAndGet();
            stats.denoiseJobs.addAndGet(ms.size());
            stats.denoiseLatents.addAndGet(batch.unetSamples());
            if (eps.length != items.size()) {
                throw new IllegalStateException("engine returned " + eps.length + " predictions for " + items.size() + " samples");
            }
            long s1 = config.statsTimer.getAsLong();
            forEachImage(flat.size(), i -> flat.get(i).advance(eps[i]));
            stats.samplerNanos.addAndGet(config.statsTimer.getAsLong() - s1);
            long now = clock.nanoTime();
            synchronized (lock) {
                recentLatents.merge(Work.bucketOf(model, shape), (double) batch.unetSamples(),
                        (old, x) -> old + 0.05 * (x - old));
                for (Work w : ms) {
                    w.inFlight = false;
                    if (w.phase == Work.Phase.DONE) {
                        continue;
                    }
                    w.denoiseMillis += stepMs;
                    int done = w.states[0].evaluation();
                    w.done = done;
                    publishStep(w, done, stepMs);
                    if (w.states[0].done()) {
                        w.phase = Work.Phase.DECODE;
                        w.denoiseEnd = now;
                        w.stageWait = 0;
                    }
                    if (w.job.cancelRequested()) {
                        end(w, JobState.CANCELLED, new ServeException(ServeException.Code.CANCELLED, "cancelled by the client"));
                    }
                }
            }
        }, "a denoising step");
    }

    private void forEachImage(int n, java.util.function.IntConsumer body) {
        if (n >= config.parallelSamplerImages && config.parallelSamplerImages > 0) {
            java.util.stream.IntStream.range(0, n).parallel().forEach(body);
        } else {
            for (int i = 0; i < n; i++) {
                body.accept(i);
            }
        }
    }

    private void publishStep(Work w, int index, double stepMs) {
        PreviewOptions p = w.req.preview();
        boolean due = config.renderImages && p.enabled() && (index % p.everySteps() == 0 || index == w.totalEvals);
        String id = w.job.id();
        int total = w.totalEvals;
        if (!due) {
            w.publisher.step(new JobEvent.Step(id, index, total, java.util.List.of(), stepMs, false), null);
            return;
        }
        if (!w.previewSent) {
            w.previewSent = true;
            config.metrics.firstPreview(w.req.sloClass(), clock.nanoTime() - w.admittedNanos);
        }
        float[] latent = w.states[0].latents().clone();
        LatentShape shape = w.shape;
        ResolvedRequest r = w.req;
        w.publisher.step(new JobEvent.Step(id, index, total, java.util.List.of(), stepMs, true), () -> new JobEvent.Step(id, index, total,
                Previews.encode(latent, shape, r.width(), r.height(), p.maxEdge(), p.format()), p.format(), stepMs));
    }

    private void runDecode(String model, LatentShape shape, List<Work> members) {
        withIsolation(members, ms -> {
            List<float[]> latents = new ArrayList<>();
            for (Work w : ms) {
                for (SamplerState s : w.states) {
                    latents.add(s.latents());
                }
            }
            long t0 = clock.nanoTime();
            long r0 = config.statsTimer.getAsLong();
            float[][] images = engine.decode(model, shape, latents);
            config.metrics.batch(dev.sdserve.ops.ServeMetrics.STAGE_DECODE, latents.size());
            stats.engineNanos.addAndGet(config.statsTimer.getAsLong() - r0);
            double decMs = clock.millisSince(t0);
            lastEngineCallNs = clock.nanoTime();
            cost.observe(model, Stage.DECODE, shape, latents.size(), decMs);
            stats.decodeCalls.incrementAndGet();
            if (images.length != latents.size()) {
                throw new IllegalStateException("engine returned " + images.length + " images for " + latents.size() + " latents");
            }
            long now = clock.nanoTime();
            synchronized (lock) {
                int k = 0;
                for (Work w : ms) {
                    w.inFlight = false;
                    if (w.phase == Work.Phase.DONE) {
                        k += w.req.images();
                        continue;
                    }
                    w.decodeEnd = now;
                    List<float[]> mine = new ArrayList<>();
                    for (int i = 0; i < w.req.images(); i++) {
                        mine.add(images[k++]);
                    }
                    complete(w, mine);
                }
            }
        }, "decoding");
    }

    private void complete(Work w, List<float[]> images) {
        if (config.imageListener != null) {
            try {
                config.imageListener.accept(w.job, images);
            } catch (RuntimeException e) {
                LOG.log(Level.WARNING, "image listener failed for job " + w.job.id(), e);
            }
        }
        w.phase = Work.Phase.DONE;
        remove(w);
        stats.completed.incrementAndGet();
        long nowNs = clock.nanoTime();
        config.metrics.completed(w.req.sloClass());
        w.enterStage(null);
        if (w.span != null) {
            w.span.end();
        }
        config.metrics.finished(w.req.sloClass(), "completed", nowNs - w.admittedNanos, nowNs <= w.deadlineNanos);
        Map<String, Double> t = new LinkedHashMap<>();
        t.put("queue", (w.encodeStart - w.admittedNanos) / 1e6);
        t.put("encode", (w.encodeEnd - w.encodeStart) / 1e6);
        t.put("denoise", (w.denoiseEnd - w.encodeEnd) / 1e6);
        t.put("denoise_engine", w.denoiseMillis);
        t.put("decode", (w.decodeEnd - w.decodeStart) / 1e6);
        t.put("total", (w.decodeEnd - w.admittedNanos) / 1e6);
        Map<String, Double> timings = Map.copyOf(t);
        String id = w.job.id();
        ResolvedRequest r = w.req;
        List<Long> seeds = List.copyOf(w.seeds);
        boolean render = config.renderImages;
        w.publisher.event(() -> {
            List<byte[]> pngs = new ArrayList<>();
            if (render) {
                String modelHash = config.modelHash.apply(r.model());
                Map<String, String> loraHashes = new LinkedHashMap<>();
                for (var l : r.loras()) {
                    String h = config.loraHash.apply(l.name());
                    if (h != null) {
                        loraHashes.put(l.name(), h);
                    }
                }
                for (int i = 0; i < images.size(); i++) {
                    byte[] png = Png.encode(images.get(i), r.width(), r.height());
                    pngs.add(PngText.withText(png, InfoText.KEYWORD, InfoText.format(r, seeds.get(i), modelHash, loraHashes)));
                }
            }
            return new JobEvent.Completed(id, pngs, seeds, r, timings);
        });
        afterFinish(w);
    }

    /** Ends a job without a result. Caller holds the lock. */
    private void end(Work w, JobState state, ServeException error) {
        if (w.phase == Work.Phase.DONE) {
            return;
        }
        w.phase = Work.Phase.DONE;
        remove(w);
        if (state == JobState.CANCELLED) {
            stats.cancelled.incrementAndGet();
        }
        long nowNs = clock.nanoTime();
        if (state == JobState.CANCELLED) {
            config.metrics.cancelled(w.req.sloClass(), draining ? "drain" : "client");
        } else {
            config.metrics.failed(w.req.sloClass(), error == null ? ServeException.Code.INTERNAL : error.code());
        }
        config.metrics.finished(w.req.sloClass(), state == JobState.CANCELLED ? "cancelled" : "failed",
                nowNs - w.admittedNanos, false);
        w.enterStage(null);
        if (w.span != null) {
            w.span.fail(state.name() + (error == null ? "" : ": " + error.getMessage()));
        }
        w.publisher.event(new JobEvent.Ended(w.job.id(), state, error));
        afterFinish(w);
    }

    private void remove(Work w) {
        works.remove(w);
        workById.remove(w.job.id());
    }

    private void afterFinish(Work w) {
        finishedIds.addLast(w.job.id());
        while (finishedIds.size() > config.retainFinishedJobs) {
            jobs.remove(finishedIds.pollFirst());
        }
        lock.notifyAll();
    }

    /** For tests and the simulator: latent samples per denoise step of every running job, by job id. */
    Map<String, Integer> runningLatents() {
        synchronized (lock) {
            Map<String, Integer> m = new LinkedHashMap<>();
            for (Work w : works) {
                m.put(w.job.id(), w.latentPerStep());
            }
            return m;
        }
    }

    static Comparator<Work> byDeadline() {
        return Comparator.comparingLong(w -> w.deadlineNanos);
    }
}
