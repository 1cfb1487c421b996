package dev.sdserve.api.grpc;

import dev.sdserve.api.ErrorMessages;
import dev.sdserve.api.EventStreams;
import dev.sdserve.api.grpc.v1.*;
import dev.sdserve.config.SdServeConfig;
import dev.sdserve.auth.AuthGrpcInterceptor;
import dev.sdserve.job.GenerationRequest;
import dev.sdserve.job.GenerationService;
import dev.sdserve.job.Job;
import dev.sdserve.job.JobEvent;
import dev.sdserve.job.ServeException;
import dev.sdserve.model.ModelCatalog;
import dev.sdserve.sampler.Samplers;
import io.grpc.Context;
import io.grpc.Deadline;
import io.quarkus.grpc.GrpcService;
import io.smallrye.common.annotation.Blocking;
import io.smallrye.mutiny.Multi;
import io.smallrye.mutiny.Uni;
import jakarta.inject.Inject;

import java.util.concurrent.TimeUnit;

/** gRPC transport: maps messages, nothing else. */
@GrpcService
public class GenerationGrpcService implements Generation {
    @Inject
    GenerationService service;
    @Inject
    ModelCatalog catalog;
    @Inject
    SdServeConfig config;

    private dev.sdserve.job.PreviewOptions defaultPreview() {
        return new dev.sdserve.job.PreviewOptions(config.preview().everySteps(), config.preview().format(),
                config.preview().maxEdge());
    }

    private GenerationRequest request(GenerateRequest p) {
        long now = System.currentTimeMillis();
        Deadline d = Context.current().getDeadline();
        Long deadline = d == null ? null : now + d.timeRemaining(TimeUnit.MILLISECONDS);
        return ProtoMapper.toRequest(p, defaultPreview(), deadline, now);
    }

    private static Multi<GenerateEvent> stream(Job job) {
        return EventStreams.events(job).map(e -> {
            if (e instanceof JobEvent.Ended end) {
                throw ProtoMapper.toStatus(end.error() != null ? end.error()
                        : new ServeException(ServeException.Code.CANCELLED, "job " + job.id() + " ended: " + end.state()));
            }
            return ProtoMapper.event(e);
        });
    }

    @Override
    public Multi<GenerateEvent> generate(GenerateRequest request) {
        Job job;
        try {
            job = service.submit(request(request), false);
            AuthGrpcInterceptor.currentPermit().holdUntilEnd(job);
        } catch (RuntimeException e) {
            return Multi.createFrom().failure(ProtoMapper.toStatus(ErrorMessages.toServe(e)));
        }
        return stream(job).onCancellation().invoke(() -> {
            org.jboss.logging.Logger.getLogger(GenerationGrpcService.class).debugf("client cancelled the stream of %s", job.id());
            service.cancel(job.id());
        });
    }

    @Override
    public Uni<JobRef> submit(GenerateRequest request) {
        // the key's concurrency slot stays taken until the job ends, not just until this call returns
        dev.sdserve.auth.Auth.Permit permit = AuthGrpcInterceptor.currentPermit();
        return ProtoMapper.unary(() -> {
            Job job = service.submit(request(request), true);
            permit.holdUntilEnd(job);
            return JobRef.newBuilder().setJobId(job.id()).build();
        });
    }

    private Job find(JobRef ref) {
        return service.find(ref.getJobId()).orElseThrow(() -> ServeException.notFound("no job with id '" + ref.getJobId() + "'"));
    }

    @Override
    public Multi<GenerateEvent> watch(JobRef request) {
        try {
            return stream(find(request));
        } catch (RuntimeException e) {
            return Multi.createFrom().failure(ProtoMapper.toStatus(ErrorMessages.toServe(e)));
        }
    }

    @Override
    public Uni<JobStatus> cancel(JobRef request) {
        return ProtoMapper.unary(() -> {
            Job job = find(request);
            service.cancel(job.id());
            return ProtoMapper.status(job);
        });
    }

    @Override
    public Uni<JobStatus> getJob(JobRef request) {
        return ProtoMapper.unary(() -> ProtoMapper.status(find(request)));
    }

    @Override
    @Blocking
    public Uni<ListModelsResponse> listModels(ListModelsRequest request) {
        return ProtoMapper.unary(() -> {
            ListModelsResponse.Builder b = ListModelsResponse.newBuilder();
            for (ModelCatalog.ModelEntry m : catalog.models()) {
                b.addModels(ModelDescription.newBuilder().setName(m.name()).setArchitecture(m.architecture())
                        .setSizeBytes(m.sizeBytes()).setDtype(m.dtype()).setShortHash(m.shortHash())
                        .setResident(m.resident()).setIsDefault(m.isDefault()).setDescription(m.description())
                        .setRecommended(ProtoMapper.recommended(m.defaults())));
            }
            return b.build();
        });
    }

    @Override
    @Blocking
    public Uni<ListLorasResponse> listLoras(ListLorasRequest request) {
        return ProtoMapper.unary(() -> {
            ListLorasResponse.Builder b = ListLorasResponse.newBuilder();
            for (ModelCatalog.LoraEntry l : catalog.loras()) {
                b.addLoras(LoraDescription.newBuilder().setName(l.name()).setSizeBytes(l.sizeBytes())
                        .setShortHash(l.shortHash()).setRank(l.rank()));
            }
            return b.build();
        });
    }

    @Override
    public Uni<ListSamplersResponse> listSamplers(ListSamplersRequest request) {
        return ProtoMapper.unary(() -> {
            ListSamplersResponse.Builder b = ListSamplersResponse.newBuilder();
            for (Samplers.Info s : Samplers.list()) {
                b.addSamplers(SamplerDescription.newBuilder().setId(s.id()).setDisplayName(s.displayName())
                        .setStochastic(s.stochastic()));
            }
            return b.build();
        });
    }
}
