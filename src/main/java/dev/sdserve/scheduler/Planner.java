package dev.sdserve.scheduler;

import dev.sdserve.admission.AdmissionController;
import dev.sdserve.admission.CompletionPredictor;
import dev.sdserve.clock.Clock;
import dev.sdserve.engine.AddedConditioning;
import dev.sdserve.engine.EncodeItem;
import dev.sdserve.engine.LatentShape;
import dev.sdserve.engine.ModelResidency;
import dev.sdserve.engine.SizeConditioning;
import dev.sdserve.engine.Stage;
import dev.sdserve.job.JobState;
import dev.sdserve.job.ServeException;
import dev.sdserve.sampler.SamplerState;
import dev.sdserve.scheduler.StepResult.EngineCall;
import dev.sdserve.scheduler.StepResult.Outcome;

import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.BooleanSupplier;
import java.util.function.Consumer;

/**
 * Holds the requests' states ({@link Work}, in admission order) and the cost model, and makes the decisions: which
 * engine call runs next and with whom ({@link #schedule}, a {@link StepPlan}), and what its {@link StepResult}
 * means for every request ({@link #updateFromOutput}: progress, stage changes, completion, failure, measured
 * costs). Also the housekeeping of every iteration (cancellations, deadlines, stalled watchers, failed model loads)
 * and the admission decision against the work it holds (through admission's {@link CompletionPredictor}).
 *
 * <p>Policy: work is ordered by least slack (deadline − now − predicted remaining work), each denoise batch is split
 * between tenants by weight when it cannot hold everyone, best-effort work yields (pauses) to the rest, and the
 * batch grows only while the cost model predicts every included request still meets its deadline; text encoding
 * and decoding wait at most {@code maxStageWaitIterations} denoise iterations.
 *
 * <p>Not thread-safe: every method runs under the scheduler's lock (the {@link SchedulerService} holds it), and
 * only the scheduler thread changes a request's stage.
 */
final class Planner {
    private final ServiceConfig config;
    private final Clock clock;
    private final ModelResidency residency;
    private final OnlineCostModel cost;
    private final CompletionPredictor predictor;
    private final Publisher publisher;
    private final SchedulerStats stats;
    private final BooleanSupplier draining;
    /** Called (under the lock) when a request has ended, whatever the way. */
    private final Consumer<Work> finished;

    /** Admitted, unfinished work, in admission order. */
    private final List<Work> works = new ArrayList<>();
    private final Map<String, Work> workById = new HashMap<>();
    /** Recent mean UNet samples per denoise call, by bucket. */
    private final Map<String, Double> recentLatents = new HashMap<>();
    /** Failed loads not yet applied to their waiting jobs. */
    private final List<Map.Entry<String, ServeException>> failedLoads = new ArrayList<>();
    /** When the last engine call ended (scheduler clock), for {@link #isProbe}. */
    private volatile long lastEngineCallNs = Long.MIN_VALUE;

    Planner(ServiceConfig config, Clock clock, ModelResidency residency, AdmissionController admission,
            Publisher publisher, SchedulerStats stats, BooleanSupplier draining, Consumer<Work> finished) {
        this.config = config;
        this.clock = clock;
        this.residency = residency;
        this.cost = new OnlineCostModel(config.costPrior);
        this.predictor = new CompletionPredictor(cost, admission, config,
                bucket -> recentLatents.getOrDefault(bucket, 0.0),
                model -> residency.isResident(model) ? 0 : residency.predictLoadMillis(model));
        this.publisher = publisher;
        this.stats = stats;
        this.draining = draining;
        this.finished = finished;
    }

    OnlineCostModel costModel() {
        return cost;
    }

    // ------------------------------------------------------------------------------------------- admission

    /** The admission decision for a candidate against the admitted work (throws RESOURCE_EXHAUSTED). */
    AdmissionController.Outcome decide(Work cand, long nowNs) {
        return predictor.admit(works, cand, nowNs);
    }

    /**
     * Whether a request the deadline check refused is admitted anyway: nothing is admitted and the last engine call
     * ended at least {@code probeAfterIdleMillis} ago (so the predictions rest on old measurements only; a server
     * that never ran a call predicts from its prior and refuses as usual).
     */
    boolean isProbe(long nowNs) {
        long after = config.admission.probeAfterIdleMillis;
        return after > 0 && works.isEmpty() && lastEngineCallNs != Long.MIN_VALUE && nowNs - lastEngineCallNs >= after * 1_000_000L;
    }

    /** Takes an admitted request in; tells the client its place in the encode queue and an estimated start. */
    void enqueue(Work w, long nowMs) {
        int position = 0;
        for (Work o : works) {
            if (o.phase == Work.Phase.ENCODE && !o.inFlight) {
                position++;
            }
        }
        works.add(w);
        workById.put(w.job.id(), w);
        long est = nowMs + Math.round(works.size() > 1 ? predictor.stepMillis(w) : 0);
        publisher.queued(w, position, est);
    }

    // ------------------------------------------------------------------------------------------- queries

    int outstanding() {
        return works.size();
    }

    /** Jobs admitted and not yet finished for a model. */
    int activeJobs(String model) {
        int n = 0;
        for (Work w : works) {
            if (w.req.model().equals(model)) {
                n++;
            }
        }
        return n;
    }

    /** Admitted work waits for a model that is not resident (or a failed load is to be applied). */
    boolean waitingForLoads() {
        if (!failedLoads.isEmpty()) {
            return true;
        }
        for (Work w : works) {
            if (!w.inFlight && !residency.isResident(w.req.model())) {
                return true;
            }
        }
        return false;
    }

    boolean hasRunnableWork() {
        if (!failedLoads.isEmpty()) {
            return true;
        }
        for (Work w : works) {
            if (!w.inFlight && residency.isResident(w.req.model())) {
                return true;
            }
        }
        return false;
    }

    /** Least slack over the admitted work (see {@link CompletionPredictor#minSlackMillis}). */
    double minSlackMillis(long now) {
        return predictor.minSlackMillis(works, now);
    }

    /** Latent samples per denoise step of every running job, by job id. */
    Map<String, Integer> runningLatents() {
        Map<String, Integer> m = new LinkedHashMap<>();
        for (Work w : works) {
            m.put(w.job.id(), w.latentPerStep());
        }
        return m;
    }

    // ------------------------------------------------------------------------------------------- events from outside

    /** A model load failed: its waiting jobs end at the next housekeeping. */
    void loadFailed(String model, ServeException error) {
        failedLoads.add(Map.entry(model, error));
    }

    /**
     * A client cancels: a job not in flight ends now; one in an engine call ends when the call returns. Returns
     * false when the job had already ended.
     */
    boolean cancel(String jobId) {
        Work w = workById.get(jobId);
        if (w == null || w.job.state().terminal()) {
            return false;
        }
        w.job.requestCancel();
        if (!w.inFlight) {
            end(w, JobState.CANCELLED, new ServeException(ServeException.Code.CANCELLED, "cancelled by the client"));
        }
        return true;
    }

    /**
     * A client asks a job to finish with what it has (A1111's interrupt and skip): a job denoising stops after the
     * step in flight (now, when none is) and decodes the denoised estimate x̂0 of its latest step; a job with no step
     * done yet is cancelled; a job decoding completes as usual. Returns false when the job had already ended.
     */
    boolean finishEarly(String jobId) {
        Work w = workById.get(jobId);
        if (w == null || w.job.state().terminal()) {
            return false;
        }
        if (w.phase == Work.Phase.ENCODE || w.phase == Work.Phase.DENOISE && !w.inFlight && w.done == 0) {
            return cancel(jobId);
        }
        w.finishEarly = true;
        if (w.phase == Work.Phase.DENOISE && !w.inFlight) {
            stopDenoising(w, clock.nanoTime());
        }
        return true;
    }

    /** Denoising ends here: the work decodes next, from its states' {@link SamplerState#earlyResult()}. */
    private void stopDenoising(Work w, long nowNs) {
        w.dropDeepCache();
        w.stoppedAt = w.done;
        w.phase = Work.Phase.DECODE;
        w.denoiseEnd = nowNs;
        w.stageWait = 0;
    }

    /** Ends every admitted job (the drain timeout passed); returns how many. */
    int endAll(ServeException error) {
        int n = 0;
        for (Work w : new ArrayList<>(works)) {
            end(w, JobState.CANCELLED, error);
            n++;
        }
        return n;
    }

    /** Cancellations, deadlines, stalled watchers and failed model loads, before planning. */
    void housekeeping(long now) {
        if (!failedLoads.isEmpty()) {
            for (Map.Entry<String, ServeException> f : failedLoads) {
                if (residency.isResident(f.getKey())) {
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
        if (w.phase != Work.Phase.DONE && !residency.isResident(w.req.model())) {
            return "waiting for model '" + w.req.model() + "' to load";
        }
        return switch (w.phase) {
            case ENCODE -> "text encoding";
            case IMAGE -> "encoding the init image";
            case DENOISE -> "step " + w.evalsDone() + " of " + w.totalEvals;
            case DECODE, DONE -> "decoding";
        };
    }

    // ------------------------------------------------------------------------------------------- schedule

    /**
     * The next engine call, or null when nothing can run (no work, or only work waiting for a model load). Its
     * members are in flight from now until {@link #updateFromOutput}: their stage starts here.
     */
    StepPlan schedule(long now) {
        Choice c = choose(now);
        if (c == null) {
            return null;
        }
        List<StepPlan.Member> members = new ArrayList<>(c.members.size());
        for (Work w : c.members) {
            w.inFlight = true;
            switch (c.stage) {
                case ENCODE -> {
                    w.encodeStart = now;
                    publisher.stage(w, "encode");
                    w.job.setState(JobState.ENCODING);
                    publisher.started(w);
                    List<EncodeItem> prompts = w.prompts.items();
                    // an image request's sampler states start after its image encoding, not here
                    members.add(new StepPlan.EncodeMember(w.job.id(), prompts, w.sampler, w.req.steps(), w.shape,
                            w.image == null ? w.seeds : List.of()));
                }
                case DENOISE -> {
                    if (w.denoiseStart < 0) {
                        w.denoiseStart = now;
                    }
                    members.add(new StepPlan.DenoiseMember(w.job.id(), w.states, stepOptions(w), w.extraChannels));
                }
                case DECODE -> {
                    if (w.fullPreview != null) { // a full preview: the request stays in its denoising stage
                        members.add(new StepPlan.DecodeMember(w.job.id(), w.fullPreview.latents(), null,
                                w.fullPreview.index(), w.fullPreview.readout()));
                        continue;
                    }
                    w.decodeStart = now;
                    publisher.stage(w, "decode");
                    w.job.setState(JobState.DECODING);
                    List<float[]> latents = new ArrayList<>(w.states.length);
                    for (SamplerState s : w.states) {
                        latents.add(w.stoppedAt >= 0 ? s.earlyResult() : s.latents());
                    }
                    members.add(new StepPlan.DecodeMember(w.job.id(), latents,
                            w.image != null && w.image.overlay() && w.image.inpainting() ? w.image.prepared() : null));
                }
                case IMAGE_ENCODE -> {
                    publisher.stage(w, "image_encode");
                    members.add(imageEncodeMember(w));
                }
            }
        }
        return new StepPlan(c.stage, c.model, c.members.get(0).info, c.shape, members);
    }

    /** An image request's VAE encoding and sampler start. */
    private static StepPlan.ImageEncodeMember imageEncodeMember(Work w) {
        return new StepPlan.ImageEncodeMember(w.job.id(), w.image.prepared(), w.image.strength(), w.info.inpainting(),
                w.image.options().inpaintingFill(), w.sampler, w.req.steps(), w.shape, w.seeds);
    }

    /** What a request's next model evaluation uses. */
    private static StepPlan.StepOptions stepOptions(Work w) {
        conditionAt(w, w.states[0].evaluation());
        // guidance truncation: past the cutoff the step runs the prompt's half only (no unconditional row)
        boolean guided = w.guidedAt(w.done);
        return new StepPlan.StepOptions(w.cond, guided ? w.uncond : null, w.req.guidance(), w.req.loras(), w.added,
                guided ? w.addedUncond : null, w.deepCacheSteps())
                .withTokenMerging(w.tokenMerging());
    }

    /**
     * Sets the work's conditioning to that of model evaluation {@code evaluation}: a prompt schedule's text for it
     * (A1111's prompt editing and alternation), padded as pad_cond_uncond asks.
     */
    private static void conditionAt(Work w, int evaluation) {
        w.cond = w.prompts.cond(evaluation);
        w.uncond = w.prompts.uncond(evaluation);
    }

    /** A chosen call: the stage, the model, the latent shape (null for text encoding) and the members in order. */
    private record Choice(Stage stage, String model, LatentShape shape, List<Work> members) {
    }

    private Choice choose(long now) {
        if (works.isEmpty()) {
            return null;
        }
        Map<String, CompletionPredictor.Profile> load = predictor.profiles(works);
        Map<Work, Double> slack = new IdentityHashMap<>();
        Work urgent = null;
        Work forced = null;
        // Only resident models are planned; jobs of the others wait (a load runs on the loader's thread meanwhile).
        Map<String, Boolean> resident = new HashMap<>();
        for (Work w : works) {
            if (w.inFlight || w.phase == Work.Phase.DONE) {
                continue;
            }
            if (!resident.computeIfAbsent(w.req.model(), residency::isResident)) {
                continue;
            }
            double s = predictor.slackMillis(w, now, load);
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
                residency.load(e.getKey()); // joins the load in progress, or starts one (e.g. after an eviction)
            }
        }
        if (urgent == null) {
            return null;
        }
        Choice previews = chooseFullPreviews(slack);
        if (previews != null) {
            return previews;
        }
        Work pick = forced != null ? forced : urgent;
        Choice p = switch (pick.phase) {
            case ENCODE -> chooseEncode(pick, slack);
            case DECODE -> chooseDecode(pick, slack);
            case IMAGE -> chooseImageEncode(pick, slack);
            default -> chooseDenoise(pick, slack, now);
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

    /**
     * Full previews waiting for their decode go first (their requests wait for them), batched with the bucket's other
     * decodes; under overload (a request that is not best effort has negative slack, the previews' decodes counted)
     * they are skipped: the step goes out with its projected preview and the request denoises on. Null: none due.
     */
    private Choice chooseFullPreviews(Map<Work, Double> slack) {
        Work pick = null;
        boolean overloaded = false;
        for (Map.Entry<Work, Double> e : slack.entrySet()) {
            Work w = e.getKey();
            double raw = e.getValue() + (w.wasInLastBatch ? config.slackStickinessMillis : 0); // without the hysteresis
            overloaded |= !w.bestEffort() && raw < 0;
            if (w.fullPreview != null && (pick == null || before(w, e.getValue(), pick, slack.get(pick)))) {
                pick = w;
            }
        }
        if (pick == null) {
            return null;
        }
        if (overloaded) {
            for (Work w : slack.keySet()) {
                if (w.fullPreview != null) {
                    publisher.fullPreviewSkipped(w);
                }
            }
            return null;
        }
        return chooseDecode(pick, slack);
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
            boolean inStage = switch (phase) {
                case DECODE -> w.phase == Work.Phase.DECODE || w.fullPreview != null;
                case DENOISE -> w.phase == Work.Phase.DENOISE && w.fullPreview == null;
                default -> w.phase == phase;
            };
            if (!w.inFlight && inStage && w.req.model().equals(pick.req.model())
                    && (!sameBucket || w.bucket.equals(pick.bucket))) {
                m.add(w);
            }
        }
        m.sort((a, b) -> a == b ? 0 : before(a, slack.get(a), b, slack.get(b)) ? -1 : 1);
        return m;
    }

    private Choice chooseEncode(Work pick, Map<Work, Double> slack) {
        List<Work> chosen = new ArrayList<>();
        int items = 0;
        for (Work w : sortedMembers(pick, slack, Work.Phase.ENCODE, false)) {
            if (!chosen.isEmpty() && items + w.encodeItems() > config.maxEncodeBatch) {
                continue;
            }
            chosen.add(w);
            items += w.encodeItems();
        }
        return new Choice(Stage.ENCODE, pick.req.model(), null, chosen);
    }

    private Choice chooseDecode(Work pick, Map<Work, Double> slack) {
        return chooseVae(pick, slack, Work.Phase.DECODE, Stage.DECODE, w -> w.req.images());
    }

    /** The image encodings of the picked work's bucket (one latent shape), up to the decode batch limit in images. */
    private Choice chooseImageEncode(Work pick, Map<Work, Double> slack) {
        return chooseVae(pick, slack, Work.Phase.IMAGE, Stage.IMAGE_ENCODE, Work::imageEncodeItems);
    }

    /** A VAE call (decode or image encode) for the picked work's bucket, up to the decode batch limit in images. */
    private Choice chooseVae(Work pick, Map<Work, Double> slack, Work.Phase phase, Stage stage,
                             java.util.function.ToIntFunction<Work> images) {
        List<Work> chosen = new ArrayList<>();
        int items = 0;
        for (Work w : sortedMembers(pick, slack, phase, true)) {
            if (!chosen.isEmpty() && items + images.applyAsInt(w) > config.maxDecodeBatch) {
                continue;
            }
            chosen.add(w);
            items += images.applyAsInt(w);
        }
        return new Choice(stage, pick.req.model(), pick.shape, chosen);
    }

    /**
     * Chooses the denoise batch of the picked work's bucket. Non-best-effort work first: when it does not all fit,
     * each tenant first gets up to its weighted share of the batch (in least-slack order), then the rest fills by
     * least slack. Best-effort work fills what is left. A job joins only while the predicted step time keeps every
     * already-chosen job (that can still make it) within its deadline.
     */
    private Choice chooseDenoise(Work pick, Map<Work, Double> slack, long now) {
        List<Work> members = sortedMembers(pick, slack, Work.Phase.DENOISE, true);
        // DeepCache: shallow steps and full steps go in calls of their own (each call one graph, one cost)
        boolean shallow = pick.shallowNext();
        members.removeIf(w -> w.shallowNext() != shallow);
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
        Selection sel = new Selection(model, shape, cap, now, shallow, mergeFactor(pick));
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
        return new Choice(Stage.DENOISE, model, shape, sel.chosen);
    }

    /** Greedy batch builder with the deadline-aware size bound. */
    private final class Selection {
        final String model;
        final LatentShape shape;
        final int cap;
        final long now;
        final List<Work> chosen = new ArrayList<>();
        final Set<Work> chosenSet = Collections.newSetFromMap(new IdentityHashMap<>());
        int latents;
        /** Largest step time the chosen (still feasible) jobs tolerate. */
        double tolerance = Double.MAX_VALUE;

        /** A call of DeepCache shallow steps (cheaper). */
        final boolean shallow;
        /** Cost of a sample against one without token merging (the bucket's members share their ratio). */
        final double factor;

        Selection(String model, LatentShape shape, int cap, long now, boolean shallow, double factor) {
            this.factor = factor;
            this.model = model;
            this.shape = shape;
            this.cap = cap;
            this.now = now;
            this.shallow = shallow;
        }

        private double stepMillis(int n) {
            return (shallow ? cost.predictShallowMillis(model, shape, n) : cost.predictMillis(model, Stage.DENOISE, shape, n))
                    * factor;
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
            double c = stepMillis(n);
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
            double c = stepMillis(n);
            if (!w.bestEffort()) {
                double dec = cost.predictMillis(model, Stage.DECODE, shape, w.req.images());
                double tol = ((w.deadlineNanos - now) / 1e6 - dec) / Math.max(1, w.remainingEvals());
                if (tol >= c) {
                    tolerance = Math.min(tolerance, tol);
                }
            }
        }
    }

    // ------------------------------------------------------------------------------------------- update

    /** A denoise plan's first member still known (its bucket and token merging are every member's), or null. */
    private Work firstKnown(StepPlan plan) {
        for (StepPlan.Member m : plan.members()) {
            Work w = workById.get(m.jobId());
            if (w != null) {
                return w;
            }
        }
        return null;
    }

    private double mergeFactor(Work w) {
        return CompletionPredictor.mergeFactor(cost, w);
    }

    /**
     * Applies what the executor made of a plan: the measured calls feed the cost model and the metrics; each member
     * (in flight until now) advances to its next stage, completes, or fails. Members ended while in flight (drain)
     * are skipped; a cancellation that arrived during the call takes effect now.
     */
    void updateFromOutput(StepPlan plan, StepResult result) {
        Work known = firstKnown(plan);
        for (EngineCall call : result.calls()) {
            // a merged call is observed as what the full call would have cost (the cost model holds full calls)
            double factor = call.stage() == Stage.DENOISE && known != null ? mergeFactor(known) : 1.0;
            if (call.shallow()) {
                cost.observeShallow(call.model(), call.shape(), call.batch(), call.millis() / factor);
            } else {
                cost.observe(call.model(), call.stage(), call.shape(), call.batch(), call.millis() / factor);
            }
            lastEngineCallNs = call.endNanos();
            publisher.engineCall(call, plan.info().vaeScale());
            if (call.stage() == Stage.DENOISE) {
                recentLatents.merge(known != null ? known.bucket : Work.bucketOf(call.model(), call.shape()),
                        (double) call.batch(),
                        (old, x) -> old + 0.05 * (x - old));
            }
        }
        for (int i = 0; i < plan.members().size(); i++) {
            Work w = workById.get(plan.members().get(i).jobId());
            Outcome o = result.outcomes().get(i);
            boolean previewDecode = plan.members().get(i) instanceof StepPlan.DecodeMember d && d.previewStep() > 0;
            if (o.error() != null && previewDecode) {
                if (w != null && w.phase != Work.Phase.DONE) { // a failed preview costs the preview, not the request
                    w.inFlight = false;
                    publisher.fullPreviewSkipped(w);
                }
                continue;
            }
            if (o.error() != null) {
                stats.failed.incrementAndGet();
                if (w != null) {
                    w.inFlight = false;
                    end(w, JobState.FAILED, o.error());
                }
                continue;
            }
            if (w == null || w.phase == Work.Phase.DONE) {
                continue; // ended while in flight (drain)
            }
            w.inFlight = false;
            switch (plan.stage()) {
                case ENCODE -> encoded(w, o);
                case DENOISE -> denoised(w, o);
                case DECODE -> {
                    if (previewDecode) {
                        previewDecoded(w, o);
                    } else {
                        decoded(w, o);
                    }
                }
                case IMAGE_ENCODE -> imageEncoded(w, o);
            }
        }
    }

    private void encoded(Work w, Outcome o) {
        w.prompts.encoded(o.conditionings());
        conditionAt(w, 0);
        addedConditioning(w, o);
        if (w.image != null) { // the init image is encoded next; its sampler states start there
            w.encodeEnd = o.endNanos();
            w.phase = Work.Phase.IMAGE;
            w.stageWait = 0;
            if (w.job.cancelRequested()) {
                end(w, JobState.CANCELLED, new ServeException(ServeException.Code.CANCELLED, "cancelled by the client"));
            }
            return;
        }
        w.states = o.states();
        w.totalEvals = w.states[0].totalEvaluations();
        w.encodeEnd = o.endNanos();
        publisher.stage(w, "denoise");
        w.phase = Work.Phase.DENOISE;
        w.stageWait = 0;
        w.job.setState(JobState.DENOISING);
        if (w.job.cancelRequested()) {
            end(w, JobState.CANCELLED, new ServeException(ServeException.Code.CANCELLED, "cancelled by the client"));
        }
    }

    /**
     * SDXL: each side's added conditioning, its pooled embedding with the size conditioning diffusers uses by
     * default (original size = target size = the request's, crop (0, 0)); nothing for families without a pooled one.
     */
    private static void addedConditioning(Work w, Outcome o) {
        if (o.pooled() == null || o.pooled()[0] == null) {
            return;
        }
        SizeConditioning size = SizeConditioning.of(w.req.height(), w.req.width());
        w.added = new AddedConditioning(o.pooled()[0], size);
        w.addedUncond = w.guided ? new AddedConditioning(o.pooled()[w.prompts.negativeIndex()], size) : null;
    }

    private void imageEncoded(Work w, Outcome o) {
        w.states = o.states();
        w.extraChannels = o.extraChannels();
        w.totalEvals = w.states[0].totalEvaluations();
        publisher.stage(w, "denoise");
        w.phase = Work.Phase.DENOISE;
        w.stageWait = 0;
        w.job.setState(JobState.DENOISING);
        if (w.job.cancelRequested()) {
            end(w, JobState.CANCELLED, new ServeException(ServeException.Code.CANCELLED, "cancelled by the client"));
        }
    }

    private void denoised(Work w, Outcome o) {
        w.denoiseMillis += o.callMillis();
        int done = w.states[0].evaluation();
        w.done = done;
        publisher.step(w, done, o.callMillis());
        if (w.finishEarly && !w.states[0].done()) {
            stopDenoising(w, o.endNanos());
        }
        if (w.states[0].done()) {
            w.dropDeepCache();
            w.phase = Work.Phase.DECODE;
            w.denoiseEnd = o.endNanos();
            w.stageWait = 0;
        }
        if (w.job.cancelRequested()) {
            end(w, JobState.CANCELLED, new ServeException(ServeException.Code.CANCELLED, "cancelled by the client"));
        }
    }

    /** A full preview's decode returned: its step goes out; the request denoises on. */
    private void previewDecoded(Work w, Outcome o) {
        publisher.fullPreview(w, o.images());
        if (w.job.cancelRequested()) {
            end(w, JobState.CANCELLED, new ServeException(ServeException.Code.CANCELLED, "cancelled by the client"));
        }
    }

    private void decoded(Work w, Outcome o) {
        w.decodeEnd = o.endNanos();
        publisher.images(w, o.images());
        w.phase = Work.Phase.DONE;
        remove(w);
        stats.completed.incrementAndGet();
        publisher.completed(w, o.images());
        finished.accept(w);
    }

    // ------------------------------------------------------------------------------------------- endings

    /** Ends a job without a result. */
    void end(Work w, JobState state, ServeException error) {
        if (w.phase == Work.Phase.DONE) {
            return;
        }
        w.phase = Work.Phase.DONE;
        remove(w);
        if (state == JobState.CANCELLED) {
            stats.cancelled.incrementAndGet();
        }
        publisher.ended(w, state, error, draining.getAsBoolean());
        finished.accept(w);
    }

    private void remove(Work w) {
        w.dropDeepCache();
        works.remove(w);
        workById.remove(w.job.id());
    }
}
