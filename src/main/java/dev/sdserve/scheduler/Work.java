package dev.sdserve.scheduler;

import dev.sdserve.admission.Pending;
import dev.sdserve.engine.LatentShape;
import dev.sdserve.engine.ModelInfo;
import dev.sdserve.job.Job;
import dev.sdserve.job.ResolvedRequest;
import dev.sdserve.sampler.Sampler;
import dev.sdserve.sampler.SamplerState;

import java.util.ArrayList;
import java.util.List;

/**
 * The scheduler's state machine for one job: QUEUED → ENCODE (waiting for / in a text-encode batch) → DENOISE
 * (evaluation k of n, all images of the job together) → DECODE → DONE; or ENDED (cancelled, failed, late).
 * Owned by the {@link Planner}; mutated only under the scheduler's lock. Admission's prediction sees it as a
 * {@link Pending}.
 */
final class Work implements Pending {
    enum Phase { ENCODE, DENOISE, DECODE, DONE }

    final Job job;
    final ResolvedRequest req;
    final ModelInfo info;
    final LatentShape shape;
    final Sampler sampler;
    final String bucket;
    final boolean guided;
    final long admittedNanos;
    final long deadlineNanos;
    /** The request's trace span and the span of its current stage (queue, encode, denoise, decode). */
    dev.sdserve.ops.Tracing.RequestSpan span;
    dev.sdserve.ops.Tracing.StageSpan stageSpan;

    /** Closes the current stage span and opens the next one (null: none, at the end). */
    void enterStage(String stage) {
        if (stageSpan != null) {
            stageSpan.close();
            stageSpan = null;
        }
        if (stage != null && span != null) {
            stageSpan = span.stage(stage);
        }
    }

    /** A preview image has been published (for the time-to-first-preview metric). */
    boolean previewSent;
    final double weight;
    final JobPublisher publisher;

    Phase phase = Phase.ENCODE;
    boolean inFlight;
    float[] cond;
    float[] uncond;
    SamplerState[] states;
    int totalEvals;
    /** Model evaluations done (mirrors the sampler state; readable under the scheduler lock). */
    int done;
    /** Denoise iterations this work has waited in its current encode/decode phase. */
    int stageWait;
    /** Best-effort work: times it was left out of a denoise batch it would have fitted, for urgent work. */
    int pauses;
    boolean wasInLastBatch;
    boolean failedAlone;

    long encodeStart = -1, encodeEnd = -1, denoiseStart = -1, denoiseEnd = -1, decodeStart = -1, decodeEnd = -1;
    double denoiseMillis;
    final List<Long> seeds = new ArrayList<>();

    Work(Job job, ModelInfo info, LatentShape shape, Sampler sampler, long admittedNanos, long deadlineNanos,
         double weight, JobPublisher publisher) {
        this.job = job;
        this.req = job.request();
        this.info = info;
        this.shape = shape;
        this.sampler = sampler;
        this.bucket = bucketOf(req.model(), shape);
        this.guided = req.guidance() > 1.0;
        this.admittedNanos = admittedNanos;
        this.deadlineNanos = deadlineNanos;
        this.weight = weight;
        this.publisher = publisher;
        this.totalEvals = sampler.evaluations(req.steps());
        for (int i = 0; i < req.images(); i++) {
            seeds.add(req.seedOf(i));
        }
    }

    static String bucketOf(String model, LatentShape shape) {
        return model + "@" + shape.channels() + "x" + shape.height() + "x" + shape.width();
    }

    int evalsDone() {
        return done;
    }

    // ------------------------------------------------------------------------------------ Pending (admission)

    @Override
    public String model() {
        return req.model();
    }

    @Override
    public LatentShape shape() {
        return shape;
    }

    @Override
    public String bucket() {
        return bucket;
    }

    @Override
    public boolean toEncode() {
        return phase == Phase.ENCODE;
    }

    @Override
    public boolean toDenoise() {
        return phase == Phase.ENCODE || phase == Phase.DENOISE;
    }

    @Override
    public boolean finished() {
        return phase == Phase.DONE;
    }

    @Override
    public String tenant() {
        return req.tenant();
    }

    @Override
    public double weight() {
        return weight;
    }

    @Override
    public boolean bestEffort() {
        return req.bestEffort();
    }

    @Override
    public long deadlineNanos() {
        return deadlineNanos;
    }

    /**
     * UNet samples of the next denoise step (images, doubled under classifier-free guidance while the request's
     * guidance lasts: see {@link ResolvedRequest#guidedEvals}).
     */
    @Override
    public int latentPerStep() {
        return latentsAtEval(1);
    }

    @Override
    public int latentsAtEval(int s) {
        return req.images() * (guidedAt(done + s - 1) ? 2 : 1);
    }

    /** Evaluation {@code k} (0-based) runs classifier-free guidance (false after the guidance cutoff). */
    boolean guidedAt(int k) {
        return guided && k < req.guidedEvals(totalEvals);
    }

    @Override
    public int remainingEvals() {
        return totalEvals - evalsDone();
    }

    /** Prompts this work encodes (prompt, then the negative prompt when guided). */
    @Override
    public int encodeItems() {
        return guided ? 2 : 1;
    }

    @Override
    public int images() {
        return req.images();
    }
}
