package dev.sdserve.scheduler;

import dev.sdserve.admission.Pending;
import dev.sdserve.engine.DeepCache;
import dev.sdserve.engine.LatentShape;
import dev.sdserve.engine.TokenMerging;
import dev.sdserve.engine.ModelInfo;
import dev.sdserve.job.Job;
import dev.sdserve.job.ResolvedImage;
import dev.sdserve.job.ResolvedRequest;
import dev.sdserve.sampler.Sampler;
import dev.sdserve.sampler.SamplerState;

import java.util.ArrayList;
import java.util.List;

/**
 * The scheduler's state machine for one job: QUEUED → ENCODE (waiting for / in a text-encode batch) → IMAGE
 * (img2img / inpainting: waiting for / in a VAE-encode batch) → DENOISE (evaluation k of n, all images of the job
 * together; fewer evaluations at a strength below 1) → DECODE → DONE; or ENDED (cancelled, failed, late).
 * Owned by the {@link Planner}; mutated only under the scheduler's lock. Admission's prediction sees it as a
 * {@link Pending}.
 */
final class Work implements Pending {
    enum Phase { ENCODE, IMAGE, DENOISE, DECODE, DONE }

    final Job job;
    final ResolvedRequest req;
    /** The prepared init image and mask (img2img, inpainting); null for txt2img. */
    final ResolvedImage image;
    /** An inpainting UNet's extra input channels, one per image, after image encoding; null otherwise. */
    float[][] extraChannels;
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
    /**
     * A full preview waiting for its VAE decode (the step's event waits with it; the work does not denoise until the
     * planner has decoded or skipped it), or null.
     */
    FullPreview fullPreview;

    /**
     * Step {@code index}'s latents to decode for its full preview (one per image) and that step's duration; with a
     * {@code readout}, a decoder preview (the decoder's trunk and that readout) instead of a VAE decode.
     */
    record FullPreview(int index, double stepMillis, List<float[]> latents,
                       dev.sdserve.engine.projection.LatentProjection readout) {
        FullPreview(int index, double stepMillis, List<float[]> latents) {
            this(index, stepMillis, latents, null);
        }
    }

    /**
     * Whether the request's image previews go through the model's decoder readout (set at admission from the model's
     * fit and the request's choice, updated at each preview): what admission counts as decoder previews ahead.
     */
    volatile boolean decoderPreviews;
    final double weight;
    final JobPublisher publisher;

    Phase phase = Phase.ENCODE;
    boolean inFlight;
    float[] cond;
    float[] uncond;
    /** SDXL's added conditioning of the prompt and the negative side (null for SD 1.x / 2.x). */
    dev.sdserve.engine.AddedConditioning added, addedUncond;
    /** The prompt's and negative prompt's schedules: what to encode, the conditioning of each evaluation. */
    final PromptConditioning prompts;
    /** Encodings already computed: {@link #encodeItems} counts only the others (null: none, every item counts). */
    TextEmbeddingCache textCache;
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
    /** Asked to finish early (A1111 interrupt/skip): stop denoising after the step in flight, decode x̂0. */
    boolean finishEarly;
    /** Model evaluations done when denoising stopped early, or −1 (denoised to the end). */
    int stoppedAt = -1;

    long encodeStart = -1, encodeEnd = -1, denoiseStart = -1, denoiseEnd = -1, decodeStart = -1, decodeEnd = -1;
    double denoiseMillis;
    final List<Long> seeds = new ArrayList<>();
    /**
     * DeepCache: one cache per image, holding the deep features of its last full step (the prompt's and the
     * negative's rows) while the request denoises; null when the request's interval is 1 (off).
     */
    final DeepCache.Slot[] deepCache;

    Work(Job job, ModelInfo info, LatentShape shape, Sampler sampler, long admittedNanos, long deadlineNanos,
         double weight, JobPublisher publisher) {
        this.job = job;
        this.req = job.request();
        this.info = info;
        this.shape = shape;
        this.sampler = sampler;
        this.bucket = bucketOf(req.model(), shape) + TokenMerging.bucketSuffix(tokenMerging()); // SDXL: none
        this.guided = req.guidance() > 1.0;
        this.admittedNanos = admittedNanos;
        this.deadlineNanos = deadlineNanos;
        this.weight = weight;
        this.publisher = publisher;
        this.image = req.image();
        this.totalEvals = image == null ? sampler.evaluations(req.steps())
                : sampler.strengthCut(req.steps(), image.strength()).evaluations();
        this.prompts = new PromptConditioning(req, guided, totalEvals);
        for (int i = 0; i < req.images(); i++) {
            seeds.add(req.seedOf(i));
        }
        this.deepCache = req.deepCacheInterval() > 1 ? new DeepCache.Slot[req.images()] : null;
        for (int i = 0; deepCache != null && i < deepCache.length; i++) {
            deepCache[i] = new DeepCache.Slot();
        }
    }

    /**
     * What one of this work's UNet samples costs against a sample without token merging (1 without it, or for a
     * model without self-attention at full latent resolution: SDXL).
     */
    @Override
    public double tokenMerging() {
        return "sdxl".equals(info.architecture()) ? 0 : req.tokenMerging();
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
    public boolean toEncodeImage() {
        return image != null && (phase == Phase.ENCODE || phase == Phase.IMAGE);
    }

    /** The init image per image (unless an inpainting UNet starts from noise at strength 1), the masked image for one. */
    @Override
    public int imageEncodeItems() {
        if (image == null) {
            return 0;
        }
        boolean unet9 = info.inpainting();
        int perImage = (unet9 && image.strength() == 1.0 ? 0 : 1) + (unet9 ? 1 : 0);
        return req.images() * perImage;
    }

    @Override
    public boolean toDenoise() {
        return phase == Phase.ENCODE || phase == Phase.IMAGE || phase == Phase.DENOISE;
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

    @Override
    public boolean shallowAtEval(int s) {
        return shallowAt(done + s - 1);
    }

    /**
     * Evaluation {@code k} (0-based) is a DeepCache shallow step: the request's interval says so and (from the first
     * step on) a full step fills the cache before it.
     */
    boolean shallowAt(int k) {
        return deepCache != null && DeepCache.shallowAt(req.deepCacheInterval(), k);
    }

    /** The next evaluation runs the shallow path: scheduled so, and every image's cache holds what it needs. */
    boolean shallowNext() {
        if (!shallowAt(done)) {
            return false;
        }
        int rows = guidedAt(done) ? 2 : 1;
        for (DeepCache.Slot s : deepCache) {
            if (!s.covers(rows)) {
                return false;
            }
        }
        return true;
    }

    /** The next evaluation's DeepCache step per image (null: the request runs without DeepCache). */
    DeepCache.Step[] deepCacheSteps() {
        if (deepCache == null) {
            return null;
        }
        boolean shallow = shallowNext();
        DeepCache.Step[] s = new DeepCache.Step[deepCache.length];
        for (int i = 0; i < s.length; i++) {
            s[i] = new DeepCache.Step(deepCache[i], shallow);
        }
        return s;
    }

    /** Frees the DeepCache features (denoising over: finished, stopped, failed or cancelled). */
    void dropDeepCache() {
        if (deepCache != null) {
            for (DeepCache.Slot s : deepCache) {
                s.clear();
            }
        }
    }

    /** Evaluation {@code k} (0-based) runs classifier-free guidance (false after the guidance cutoff). */
    boolean guidedAt(int k) {
        return guided && k < req.guidedEvals(totalEvals);
    }

    @Override
    public int remainingEvals() {
        return totalEvals - evalsDone();
    }

    /**
     * Prompts this work encodes: the prompt, then the negative prompt when guided; a schedule's each distinct text
     * ({@code [from:to:when]}, {@code [a|b]}); the empty prompt when pad_cond_uncond pads. Those the text-embedding
     * cache holds are not counted: the engine does not encode them (0: a free encoding).
     */
    @Override
    public int encodeItems() {
        return textCache == null ? prompts.items().size() : textCache.misses(req.model(), prompts.items());
    }

    @Override
    public int images() {
        return req.images();
    }

    /** Full-preview decodes still ahead (each decodes {@link #images()} latents), the pending one included. */
    @Override
    public int previewDecodes() {
        return (fullPreview != null && fullPreview.readout() == null ? 1 : 0)
                + PreviewPlan.fullAhead(req.preview(), evalsDone(), totalEvals);
    }

    /** Decoder previews still ahead (each of {@link #images()} latents), the pending one included. */
    @Override
    public int decoderPreviews() {
        return (fullPreview != null && fullPreview.readout() != null ? 1 : 0)
                + (decoderPreviews ? PreviewPlan.projectedAhead(req.preview(), evalsDone(), totalEvals) : 0);
    }
}
