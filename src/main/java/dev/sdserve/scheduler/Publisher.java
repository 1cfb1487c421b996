package dev.sdserve.scheduler;

import dev.sdserve.clock.Clock;
import dev.sdserve.engine.LatentShape;
import dev.sdserve.image.InfoText;
import dev.sdserve.image.PngText;
import dev.sdserve.job.JobEvent;
import dev.sdserve.job.JobState;
import dev.sdserve.job.PreviewOptions;
import dev.sdserve.job.ResolvedRequest;
import dev.sdserve.job.ServeException;
import dev.sdserve.ops.ServeMetrics;
import dev.sdserve.preview.Png;
import dev.sdserve.engine.projection.LatentProjection;
import dev.sdserve.engine.projection.PreviewProjections;
import dev.sdserve.scheduler.StepResult.EngineCall;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * Turns what happens to requests into what clients and operators see: the event stream of each job (queued,
 * started, a step with its preview, completed with the PNGs, ended), the Prometheus metrics and the trace spans.
 * Called by the planner under the scheduler's lock; anything slow (preview images, PNG encoding with the
 * {@code parameters} text) is rendered later on the publish executor, through each job's {@link JobPublisher}, whose
 * step events conflate when a consumer falls behind (backpressure never reaches the scheduler).
 */
final class Publisher {
    private static final Logger LOG = Logger.getLogger(Publisher.class.getName());

    private final ServiceConfig config;
    private final Clock clock;

    Publisher(ServiceConfig config, Clock clock) {
        this.config = config;
        this.clock = clock;
    }

    // ------------------------------------------------------------------------------------------- progress

    /** The request's trace opens with its queue stage; the client hears where it stands. */
    void queued(Work w, int position, long estimatedStartMillis) {
        w.span = config.tracing.request(w.job.id(), w.req.model(), w.req.sloClass().name().toLowerCase(Locale.ROOT));
        w.enterStage("queue");
        w.publisher.event(new JobEvent.Queued(w.job.id(), position, estimatedStartMillis));
    }

    /** A stage of the request begins (a trace span per stage). */
    void stage(Work w, String stage) {
        w.enterStage(stage);
    }

    void started(Work w) {
        w.publisher.event(new JobEvent.Started(w.job.id(), clock.currentTimeMillis()));
    }

    /** An engine call returned: batch sizes and step durations. */
    void engineCall(EngineCall call, int vaeScale) {
        switch (call.stage()) {
            case ENCODE -> config.metrics.batch(ServeMetrics.STAGE_ENCODE, call.batch());
            case DENOISE -> {
                config.metrics.batch(ServeMetrics.STAGE_DENOISE, call.batch());
                config.metrics.step(call.shape().width() * vaeScale + "x" + call.shape().height() * vaeScale,
                        (long) (call.millis() * 1e6));
            }
            case DECODE -> config.metrics.batch(ServeMetrics.STAGE_DECODE, call.batch());
            case IMAGE_ENCODE -> config.metrics.batch(ServeMetrics.STAGE_IMAGE_ENCODE, call.batch());
        }
    }

    /**
     * A denoising step of the request is done: a step event, with a preview of every image when one is due. The
     * preview shows the sampler's denoised estimate x̂0 (or the noisy sample x_t, {@code content=noisy}) through the
     * model's fitted projection (the SD 1.x factors until the fit is ready), or sends the latent itself. When a full
     * preview (a VAE decode) is due, nothing is published yet: the work keeps x̂0 in {@link Work#fullPreview} and the
     * planner decodes it (or skips it under overload), then {@link #fullPreview} or {@link #fullPreviewSkipped}
     * publishes the step.
     */
    void step(Work w, int index, double stepMs) {
        PreviewOptions p = w.req.preview();
        boolean due = config.renderImages && PreviewPlan.due(p, index, w.totalEvals);
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
        List<float[]> latents = PreviewPlan.latents(w.states, p);
        if (PreviewPlan.full(p, index, total)) {
            w.fullPreview = new Work.FullPreview(index, stepMs, latents);
            return;
        }
        LatentProjection readout = p.latent() ? null : decoderReadout(w.req);
        w.decoderPreviews = readout != null;
        if (readout != null) { // the planner runs the decoder's trunk (or skips it under overload)
            w.fullPreview = new Work.FullPreview(index, stepMs, latents, readout);
            return;
        }
        publishProjected(w, index, stepMs, latents, false);
    }

    /** The decoder readout a request's image previews go through now, or null (the affine projection). */
    LatentProjection decoderReadout(ResolvedRequest r) {
        PreviewProjections pp = config.previewProjections;
        return pp == null || !config.renderImages || !r.preview().enabled() || r.preview().latent() ? null
                : pp.decoderReadout(r.model(), r.preview().projection());
    }

    /** Publishes a step with its projected (or latent) previews of every image. */
    private void publishProjected(Work w, int index, double stepMs, List<float[]> latents, boolean fullSkipped) {
        PreviewOptions p = w.req.preview();
        String id = w.job.id();
        int total = w.totalEvals;
        LatentShape shape = w.shape;
        ResolvedRequest r = w.req;
        LatentProjection projection = projection(r.model());
        w.publisher.step(new JobEvent.Step(id, index, total, List.of(), stepMs, true),
                () -> new JobEvent.Step(id, index, total, PreviewPlan.project(latents, shape, projection, r, p), stepMs,
                        fullSkipped));
    }

    /**
     * The full preview the planner decoded: the step event with one VAE-decoded preview per image (or, for a decoder
     * preview, the readout's colours per latent cell).
     */
    void fullPreview(Work w, List<float[]> images) {
        Work.FullPreview f = w.fullPreview;
        w.fullPreview = null;
        PreviewOptions p = w.req.preview();
        String id = w.job.id();
        int total = w.totalEvals;
        ResolvedRequest r = w.req;
        LatentShape shape = w.shape;
        w.publisher.step(new JobEvent.Step(id, f.index(), total, List.of(), f.stepMillis(), true),
                () -> new JobEvent.Step(id, f.index(), total, f.readout() != null ? PreviewPlan.readout(images, shape, r, p)
                        : PreviewPlan.decoded(images, r, p), f.stepMillis(), false));
    }

    /**
     * A full preview skipped under overload: the step goes out with the projected preview instead (each marked not
     * full) and {@code previewDropped} set, so a client can tell.
     */
    void fullPreviewSkipped(Work w) {
        Work.FullPreview f = w.fullPreview;
        w.fullPreview = null;
        publishProjected(w, f.index(), f.stepMillis(), f.latents(), true);
    }

    /** The model's preview projection now (never blocks): its fit, or the SD 1.x factors while it is fitted. */
    private LatentProjection projection(String model) {
        PreviewProjections pp = config.previewProjections;
        if (pp == null) {
            return LatentProjection.SD1_CHEAP;
        }
        pp.fitInBackground(model); // lazily, for a model loaded before the fit was wired (no-op once known)
        return pp.get(model);
    }

    // ------------------------------------------------------------------------------------------- endings

    /** The decoded images, at float precision, for the configured listener (tests), before PNG encoding. */
    void images(Work w, List<float[]> images) {
        if (config.imageListener != null) {
            try {
                config.imageListener.accept(w.job, images);
            } catch (RuntimeException e) {
                LOG.log(Level.WARNING, "image listener failed for job " + w.job.id(), e);
            }
        }
    }

    /** The request completed: metrics, the trace, and the result event (PNGs rendered off the scheduler thread). */
    void completed(Work w, List<float[]> images) {
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
        String stepsDone = stepsDone(w);
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
                    String text = InfoText.format(r, seeds.get(i), modelHash, loraHashes);
                    pngs.add(PngText.withText(png, InfoText.KEYWORD,
                            stepsDone == null ? text : InfoText.withParameter(text, InfoText.STEPS_DONE, stepsDone)));
                }
            }
            return new JobEvent.Completed(id, pngs, seeds, r, timings);
        });
    }

    /**
     * For work that stopped denoising early (A1111 interrupt/skip): "k/n", the step events' index and total when it
     * stopped; null for work denoised to the end.
     */
    private static String stepsDone(Work w) {
        return w.stoppedAt < 0 ? null : w.stoppedAt + "/" + w.totalEvals;
    }

    /** The request ended without a result (cancelled, failed, late, drained). */
    void ended(Work w, JobState state, ServeException error, boolean draining) {
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
    }
}
