package dev.sdserve.api.rest;

import dev.sdserve.engine.LoraWeight;
import dev.sdserve.job.GenerationRequest;
import dev.sdserve.job.ImageInput;
import dev.sdserve.job.Job;
import dev.sdserve.job.JobEvent;
import dev.sdserve.job.PreviewOptions;
import dev.sdserve.job.ResolvedRequest;
import dev.sdserve.job.ServeException;
import dev.sdserve.job.SloClass;

import java.util.ArrayList;
import java.util.Base64;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

import static dev.sdserve.api.rest.RestDtos.*;

/** JSON ↔ domain conversions for the REST transport. */
public final class RestMapper {
    private RestMapper() {
    }

    public static GenerationRequest toRequest(GenerationJson j, PreviewOptions defaultPreview, long nowMillis) {
        if (j == null) {
            throw ServeException.invalid("body", "a JSON object with at least \"prompt\" is required");
        }
        List<LoraWeight> loras = new ArrayList<>();
        if (j.loras() != null) {
            for (int i = 0; i < j.loras().size(); i++) {
                LoraJson l = j.loras().get(i);
                if (l == null || l.name() == null || l.name().isBlank()) {
                    throw ServeException.invalid("loras[" + i + "].name", "a LoRA name is required");
                }
                loras.add(new LoraWeight(l.name(), l.weight() == null ? 1.0 : l.weight()));
            }
        }
        PreviewOptions preview = defaultPreview;
        if (j.preview() != null) {
            PreviewJson p = j.preview();
            if (Boolean.TRUE.equals(p.off())) {
                preview = PreviewOptions.OFF;
            } else {
                preview = new PreviewOptions(p.everySteps() == null ? Math.max(1, defaultPreview.everySteps()) : p.everySteps(),
                        p.format() == null ? defaultPreview.format() : p.format().toLowerCase(Locale.ROOT),
                        p.maxEdge() == null ? defaultPreview.maxEdge() : p.maxEdge(),
                        p.content() == null ? defaultPreview.content() : p.content().toLowerCase(Locale.ROOT),
                        p.fullEvery() == null ? defaultPreview.fullEvery() : p.fullEvery(),
                        p.projection() == null ? defaultPreview.projection() : p.projection().toLowerCase(Locale.ROOT));
            }
        }
        SloClass slo = null;
        if (j.sloClass() != null) {
            try {
                slo = SloClass.valueOf(j.sloClass().toUpperCase(Locale.ROOT));
            } catch (IllegalArgumentException e) {
                throw ServeException.invalid("slo_class", "must be one of interactive, standard, batch (got '" + j.sloClass() + "')");
            }
        }
        if (j.deadlineMs() != null && j.deadlineMs() <= 0) {
            throw ServeException.invalid("deadline_ms", "must be a positive number of milliseconds from now");
        }
        // <lora:name:weight> tags stay in the prompt: admission reads them (and names "prompt" in its errors)
        return new GenerationRequest(j.prompt(), j.negativePrompt(), blankToNull(j.model()), loras, j.width(),
                j.height(), j.steps(), blankToNull(j.sampler()), j.guidanceScale(), j.seed(), j.clipSkip(), j.images(),
                preview, slo, j.deadlineMs() == null ? null : nowMillis + j.deadlineMs(), j.priority(),
                blankToNull(j.tenant()), j.bestEffort()).withPadCondUncond(j.padCondUncond()).withImage(image(j))
                .withGuidanceCutoff(j.guidanceCutoff()).withDeepCacheInterval(j.deepCacheInterval())
                .withTokenMerging(j.tokenMergingRatio());
    }

    private static byte[] base64(String s, String field) {
        if (s == null || s.isBlank()) {
            return null;
        }
        try {
            return dev.sdserve.image.ImageDecoding.base64(s);
        } catch (dev.sdserve.image.ImageDecoding.BadImageException e) {
            throw ServeException.invalid(field, field + ": " + e.getMessage());
        }
    }

    /** The image fields (base64 in JSON); null when none is given (txt2img). */
    private static ImageInput image(GenerationJson j) {
        if (j.initImage() == null && j.maskImage() == null && j.strength() == null && j.resizeMode() == null
                && j.maskBlur() == null && j.inpaintingFill() == null && j.inpaintingMaskInvert() == null
                && j.inpaintFullRes() == null) {
            return null;
        }
        return new ImageInput(base64(j.initImage(), "init_image"), base64(j.maskImage(), "mask_image"), j.strength(),
                j.resizeMode(), j.maskBlur(),
                j.inpaintingFill(), j.inpaintingMaskInvert(), j.inpaintFullRes(), null);
    }

    private static String blankToNull(String s) {
        return s == null || s.isBlank() ? null : s;
    }

    public static ParametersJson parameters(ResolvedRequest r) {
        List<LoraJson> loras = r.loras().stream().map(l -> new LoraJson(l.name(), l.weight())).toList();
        return new ParametersJson(r.prompt(), r.negativePrompt(), r.model(), loras, r.width(), r.height(), r.steps(),
                r.sampler(), r.guidance(), r.seed(), r.clipSkip(), r.images(), r.sloClass().name().toLowerCase(Locale.ROOT),
                r.deadlineMillis(), r.image() == null ? null : r.image().strength());
    }

    public static JobJson job(Job job, String base) {
        JobEvent.Step step = job.lastStep();
        JobEvent term = job.terminalEvent();
        String error = term instanceof JobEvent.Ended e && e.error() != null ? e.error().getMessage() : null;
        List<Long> seeds = term instanceof JobEvent.Completed c ? c.seeds() : null;
        Map<String, Double> timings = term instanceof JobEvent.Completed c ? c.timingsMillis() : null;
        Map<String, String> links = new LinkedHashMap<>();
        links.put("self", base + job.id());
        links.put("events", base + job.id() + "/events");
        links.put("image", base + job.id() + "/image");
        return new JobJson(job.id(), job.state().name().toLowerCase(Locale.ROOT), step == null ? null : step.index(),
                step == null ? null : step.total(), error, parameters(job.request()), seeds, timings, links);
    }

    public static EventJson event(JobEvent e, String base) {
        if (e instanceof JobEvent.Queued q) {
            return new EventJson("queued", q.jobId(), q.position(), q.estimatedStartMillis(), null, null, null, null,
                    null, null, null, null, null, null, null, null, null, null, null, null, null);
        }
        if (e instanceof JobEvent.Started s) {
            return new EventJson("started", s.jobId(), null, null, s.startedAtMillis(), null, null, null, null, null,
                    null, null, null, null, null, null, null, null, null, null, null);
        }
        if (e instanceof JobEvent.Step s) {
            List<StepPreviewJson> more = new ArrayList<>();
            LatentJson latent = null;
            for (JobEvent.Preview p : s.previews()) {
                if (p != s.previews().get(0)) {
                    more.add(new StepPreviewJson(p.image(), Base64.getEncoder().encodeToString(p.data()), p.format(),
                            p.content(), p.full()));
                }
                if (latent == null && p.latent() != null) {
                    JobEvent.LatentInfo li = p.latent();
                    latent = new LatentJson(List.of(li.channels(), li.height(), li.width()), "float16", "little",
                            li.weights(), li.bias(), li.projectionSource());
                }
            }
            JobEvent.Preview first = s.previews().isEmpty() ? null : s.previews().get(0);
            return new EventJson("step", s.jobId(), null, null, null, s.index(), s.total(),
                    first == null ? null : Base64.getEncoder().encodeToString(first.data()),
                    first == null ? null : first.format(), s.stepMillis(), null, null, null, null, null,
                    s.previewDropped() ? Boolean.TRUE : null, first == null ? null : first.image(),
                    first == null ? null : first.content(), first == null ? null : first.full(),
                    more.isEmpty() ? null : more, latent);
        }
        if (e instanceof JobEvent.Completed c) {
            return new EventJson("completed", c.jobId(), null, null, null, null, null, null, null, null, c.seeds(),
                    c.timingsMillis(), "completed", null, base + c.jobId() + "/image", null, null, null, null, null,
                    null);
        }
        JobEvent.Ended end = (JobEvent.Ended) e;
        return new EventJson("ended", end.jobId(), null, null, null, null, null, null, null, null, null, null,
                end.state().name().toLowerCase(Locale.ROOT), end.error() == null ? null : end.error().getMessage(), null,
                null, null, null, null, null, null);
    }

    public static ErrorEnvelope error(ServeException e) {
        return new ErrorEnvelope(new ErrorJson(e.code().name(), e.getMessage(), e.field(), e.retryAfterMillis()));
    }
}
