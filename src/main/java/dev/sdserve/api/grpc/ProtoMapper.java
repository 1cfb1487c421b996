package dev.sdserve.api.grpc;

import com.google.protobuf.ByteString;
import dev.sdserve.api.grpc.v1.*;
import dev.sdserve.engine.LoraWeight;
import dev.sdserve.job.GenerationRequest;
import dev.sdserve.job.ImageInput;
import dev.sdserve.job.Job;
import dev.sdserve.job.JobEvent;
import dev.sdserve.job.ResolvedRequest;
import dev.sdserve.job.ServeException;
import io.grpc.Metadata;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.smallrye.mutiny.Uni;

import java.util.ArrayList;
import java.util.List;
import java.util.function.Supplier;

/** Proto ↔ domain conversions; no logic beyond field mapping ("0 / empty = not given"). */
public final class ProtoMapper {
    public static final Metadata.Key<String> RETRY_AFTER_MS = Metadata.Key.of("retry-after-ms", Metadata.ASCII_STRING_MARSHALLER);
    public static final Metadata.Key<String> FIELD = Metadata.Key.of("field", Metadata.ASCII_STRING_MARSHALLER);

    private ProtoMapper() {
    }

    /**
     * @param defaultPreview preview options used when the request gives none
     * @param grpcDeadlineMillis absolute deadline of the call, or null
     */
    public static GenerationRequest toRequest(GenerateRequest p, dev.sdserve.job.PreviewOptions defaultPreview,
                                              Long grpcDeadlineMillis, long nowMillis) {
        List<LoraWeight> loras = new ArrayList<>();
        for (LoraRef r : p.getLorasList()) {
            loras.add(new LoraWeight(r.getName(), r.getWeight() == 0 ? 1.0 : r.getWeight()));
        }
        dev.sdserve.job.PreviewOptions preview = defaultPreview;
        if (p.hasPreview()) {
            PreviewOptions po = p.getPreview();
            if (po.getOff()) {
                preview = dev.sdserve.job.PreviewOptions.OFF;
            } else {
                preview = new dev.sdserve.job.PreviewOptions(
                        po.getEverySteps() == 0 ? Math.max(1, defaultPreview.everySteps()) : po.getEverySteps(),
                        po.getFormat() == PreviewFormat.PREVIEW_FORMAT_UNSPECIFIED ? defaultPreview.format()
                                : format(po.getFormat()),
                        po.getMaxEdge() == 0 ? defaultPreview.maxEdge() : po.getMaxEdge(),
                        switch (po.getContent()) {
                            case PREVIEW_CONTENT_NOISY -> dev.sdserve.job.PreviewOptions.NOISY;
                            case PREVIEW_CONTENT_DENOISED -> dev.sdserve.job.PreviewOptions.DENOISED;
                            default -> defaultPreview.content();
                        },
                        po.getFullEvery() == 0 ? defaultPreview.fullEvery() : po.getFullEvery(),
                        switch (po.getProjection()) {
                            case PREVIEW_PROJECTION_AFFINE -> dev.sdserve.job.PreviewOptions.AFFINE;
                            case PREVIEW_PROJECTION_DECODER -> dev.sdserve.job.PreviewOptions.DECODER;
                            default -> defaultPreview.projection();
                        });
            }
        }
        // Boxed on both sides: a long/Long conditional would unbox a null gRPC deadline (NPE).
        long relDeadline = Integer.toUnsignedLong(p.getDeadlineMs()); // uint32 on the wire
        Long deadline = relDeadline > 0 ? Long.valueOf(nowMillis + relDeadline) : grpcDeadlineMillis;
        // <lora:name:weight> tags stay in the prompt: admission reads them (and names "prompt" in its errors)
        return new GenerationRequest(
                p.getPrompt(), // as written: the engine drops the tags, the PNG text keeps them in place
                p.getNegativePrompt(),
                p.getModel().isEmpty() ? null : p.getModel(),
                loras,
                p.getWidth() == 0 ? null : p.getWidth(),
                p.getHeight() == 0 ? null : p.getHeight(),
                p.getSteps() == 0 ? null : p.getSteps(),
                p.getSampler().isEmpty() ? null : p.getSampler(),
                p.hasGuidanceScale() ? p.getGuidanceScale() : null,
                p.hasSeed() ? p.getSeed() : null,
                p.getClipSkip() == 0 ? null : p.getClipSkip(),
                p.getImages() == 0 ? null : p.getImages(),
                preview,
                sloClass(p.getSloClass()),
                deadline,
                p.getPriority(),
                p.getTenant().isEmpty() ? null : p.getTenant(),
                p.getBestEffort())
                .withPadCondUncond(p.getPadCondUncond() ? Boolean.TRUE : null)
                .withImage(image(p))
                .withGuidanceCutoff(p.hasGuidanceCutoff() ? p.getGuidanceCutoff() : null)
                .withDeepCacheInterval(p.hasDeepCacheInterval() ? p.getDeepCacheInterval() : null)
                .withTokenMerging(p.hasTokenMergingRatio() ? p.getTokenMergingRatio() : null);
    }

    /** The image fields (20–27); null when none is set (txt2img). */
    static ImageInput image(GenerateRequest p) {
        if (p.getInitImage().isEmpty() && !p.hasStrength() && p.getMaskImage().isEmpty() && p.getResizeMode() == 0
                && !p.hasMaskBlur() && p.getInpaintingFill() == 0 && !p.getInpaintingMaskInvert()
                && !p.getInpaintFullRes()) {
            return null;
        }
        return new ImageInput(p.getInitImage().toByteArray(), p.getMaskImage().toByteArray(),
                p.hasStrength() ? p.getStrength() : null, p.getResizeMode(),
                p.hasMaskBlur() ? p.getMaskBlur() : null, p.getInpaintingFill(), p.getInpaintingMaskInvert(),
                p.getInpaintFullRes(), null);
    }

    static dev.sdserve.job.SloClass sloClass(SloClass c) {
        return switch (c) {
            case SLO_CLASS_INTERACTIVE -> dev.sdserve.job.SloClass.INTERACTIVE;
            case SLO_CLASS_BATCH -> dev.sdserve.job.SloClass.BATCH;
            case SLO_CLASS_STANDARD -> dev.sdserve.job.SloClass.STANDARD;
            default -> null;
        };
    }

    static SloClass sloClass(dev.sdserve.job.SloClass c) {
        return switch (c) {
            case INTERACTIVE -> SloClass.SLO_CLASS_INTERACTIVE;
            case STANDARD -> SloClass.SLO_CLASS_STANDARD;
            case BATCH -> SloClass.SLO_CLASS_BATCH;
        };
    }

    public static ResolvedParameters parameters(ResolvedRequest r) {
        ResolvedParameters.Builder b = ResolvedParameters.newBuilder()
                .setPrompt(r.prompt()).setNegativePrompt(r.negativePrompt()).setModel(r.model())
                .setWidth(r.width()).setHeight(r.height()).setSteps(r.steps()).setSampler(r.sampler())
                .setGuidanceScale(r.guidance()).setSeed(r.seed()).setClipSkip(r.clipSkip()).setImages(r.images())
                .setSloClass(sloClass(r.sloClass())).setDeadlineMs(r.deadlineMillis());
        if (r.image() != null) {
            b.setStrength(r.image().strength());
        }
        for (LoraWeight l : r.loras()) {
            b.addLoras(LoraRef.newBuilder().setName(l.name()).setWeight(l.weight()));
        }
        return b.build();
    }

    static PreviewFormat format(String f) {
        return switch (f == null ? "png" : f) {
            case "jpeg", "jpg" -> PreviewFormat.PREVIEW_FORMAT_JPEG;
            case dev.sdserve.job.PreviewOptions.LATENT -> PreviewFormat.PREVIEW_FORMAT_LATENT;
            default -> PreviewFormat.PREVIEW_FORMAT_PNG;
        };
    }

    static String format(PreviewFormat f) {
        return switch (f) {
            case PREVIEW_FORMAT_JPEG -> "jpeg";
            case PREVIEW_FORMAT_LATENT -> dev.sdserve.job.PreviewOptions.LATENT;
            default -> "png";
        };
    }

    public static GenerateEvent event(JobEvent e) {
        GenerateEvent.Builder b = GenerateEvent.newBuilder().setJobId(e.jobId());
        if (e instanceof JobEvent.Queued q) {
            b.setQueued(Queued.newBuilder().setPosition(q.position()).setEstimatedStartMs(q.estimatedStartMillis()));
        } else if (e instanceof JobEvent.Started s) {
            b.setStarted(Started.newBuilder().setStartedAtMs(s.startedAtMillis()));
        } else if (e instanceof JobEvent.Step s) {
            Step.Builder sb = Step.newBuilder().setIndex(s.index()).setTotal(s.total()).setStepMs(s.stepMillis())
                    .setPreviewDropped(s.previewDropped());
            for (JobEvent.Preview p : s.previews()) {
                ByteString data = ByteString.copyFrom(p.data());
                PreviewContent content = dev.sdserve.job.PreviewOptions.NOISY.equals(p.content())
                        ? PreviewContent.PREVIEW_CONTENT_NOISY : PreviewContent.PREVIEW_CONTENT_DENOISED;
                if (sb.getPreview().isEmpty()) {
                    sb.setPreview(data).setPreviewFormat(format(p.format())).setPreviewImage(p.image())
                            .setPreviewContent(content).setPreviewFull(p.full());
                } else {
                    sb.addMorePreviews(Preview.newBuilder().setImage(p.image()).setData(data).setFormat(format(p.format()))
                            .setContent(content).setFull(p.full()));
                }
                if (p.latent() != null && !sb.hasLatent()) {
                    JobEvent.LatentInfo li = p.latent();
                    LatentInfo.Builder lb = LatentInfo.newBuilder().setChannels(li.channels()).setHeight(li.height())
                            .setWidth(li.width()).setProjection(li.projectionSource());
                    for (float[] row : li.weights()) {
                        for (float v : row) {
                            lb.addWeights(v);
                        }
                    }
                    for (float v : li.bias()) {
                        lb.addBias(v);
                    }
                    sb.setLatent(lb);
                }
            }
            b.setStep(sb);
        } else if (e instanceof JobEvent.Completed c) {
            Completed.Builder cb = Completed.newBuilder().setParameters(parameters(c.request()));
            for (int i = 0; i < c.images().size(); i++) {
                cb.addImages(Image.newBuilder().setPng(ByteString.copyFrom(c.images().get(i))).setSeed(c.seeds().get(i)));
            }
            cb.putAllTimingsMs(c.timingsMillis());
            b.setCompleted(cb);
        } else {
            throw new IllegalArgumentException("not a stream event: " + e);
        }
        return b.build();
    }

    public static JobStatus status(Job job) {
        JobStatus.Builder b = JobStatus.newBuilder().setJobId(job.id()).setState(state(job.state()))
                .setParameters(parameters(job.request()));
        JobEvent.Step last = job.lastStep();
        if (last != null) {
            b.setStep(last.index()).setTotalSteps(last.total());
        }
        if (job.terminalEvent() instanceof JobEvent.Ended end && end.error() != null) {
            b.setError(end.error().getMessage());
        }
        return b.build();
    }

    static JobState state(dev.sdserve.job.JobState s) {
        return switch (s) {
            case QUEUED -> JobState.JOB_STATE_QUEUED;
            case ENCODING -> JobState.JOB_STATE_ENCODING;
            case DENOISING -> JobState.JOB_STATE_DENOISING;
            case DECODING -> JobState.JOB_STATE_DECODING;
            case COMPLETED -> JobState.JOB_STATE_COMPLETED;
            case CANCELLED -> JobState.JOB_STATE_CANCELLED;
            case FAILED -> JobState.JOB_STATE_FAILED;
            case REJECTED -> JobState.JOB_STATE_REJECTED;
        };
    }

    /** A unary call's body, its failures (ServeException or any other) turned into the matching gRPC status. */
    public static <T> Uni<T> unary(Supplier<T> body) {
        return Uni.createFrom().item(() -> {
            try {
                return body.get();
            } catch (RuntimeException e) {
                throw toStatus(dev.sdserve.api.ErrorMessages.toServe(e));
            }
        });
    }

    public static StatusRuntimeException toStatus(ServeException e) {
        Status s = switch (e.code()) {
            case INVALID_ARGUMENT -> Status.INVALID_ARGUMENT;
            case NOT_FOUND -> Status.NOT_FOUND;
            case RESOURCE_EXHAUSTED -> Status.RESOURCE_EXHAUSTED;
            case DEADLINE_EXCEEDED -> Status.DEADLINE_EXCEEDED;
            case CANCELLED -> Status.CANCELLED;
            case UNAVAILABLE -> Status.UNAVAILABLE;
            case FAILED_PRECONDITION -> Status.FAILED_PRECONDITION;
            case INTERNAL -> Status.INTERNAL;
            case UNAUTHENTICATED -> Status.UNAUTHENTICATED;
        };
        Metadata md = new Metadata();
        if (e.retryAfterMillis() != null) {
            md.put(RETRY_AFTER_MS, Long.toString(e.retryAfterMillis()));
        }
        if (e.field() != null) {
            md.put(FIELD, e.field());
        }
        return new StatusRuntimeException(s.withDescription(e.getMessage()), md);
    }

    /** A model's recommended settings (0 / empty / absent: none). */
    static dev.sdserve.api.grpc.v1.RecommendedSettings recommended(dev.sdserve.model.ModelDefaults d) {
        var b = dev.sdserve.api.grpc.v1.RecommendedSettings.newBuilder();
        if (d.sampler() != null) {
            b.setSampler(d.sampler());
        }
        if (d.steps() != null) {
            b.setSteps(d.steps());
        }
        if (d.guidanceScale() != null) {
            b.setGuidanceScale(d.guidanceScale());
        }
        if (d.width() != null) {
            b.setWidth(d.width());
        }
        if (d.height() != null) {
            b.setHeight(d.height());
        }
        if (d.clipSkip() != null) {
            b.setClipSkip(d.clipSkip());
        }
        return b.build();
    }
}
