package dev.sdserve.api.grpc;

import dev.sdserve.api.grpc.v1.ListModelStatesRequest;
import dev.sdserve.api.grpc.v1.ListModelStatesResponse;
import dev.sdserve.api.grpc.v1.LoadModelRequest;
import dev.sdserve.api.grpc.v1.ModelRef;
import dev.sdserve.api.grpc.v1.ModelState;
import dev.sdserve.api.grpc.v1.Models;
import dev.sdserve.api.grpc.v1.RescanModelsRequest;
import dev.sdserve.api.grpc.v1.RescanModelsResponse;
import dev.sdserve.config.SdServeConfig;
import dev.sdserve.job.ModelService;
import io.quarkus.grpc.GrpcService;
import io.smallrye.common.annotation.Blocking;
import io.smallrye.mutiny.Uni;
import jakarta.inject.Inject;


/** gRPC transport of model residency (sdserve_models.proto): maps messages, nothing else. */
@GrpcService
public class ModelsGrpcService implements Models {
    @Inject
    ModelService models;
    @Inject
    SdServeConfig config;

    static ModelState state(ModelService.ModelStatus s) {
        ModelState.Builder b = ModelState.newBuilder().setName(s.name()).setArchitecture(s.architecture())
                .setSizeBytes(Math.max(0, s.sizeBytes())).setDtype(s.dtype()).setShortHash(s.shortHash())
                .setIsDefault(s.isDefault()).setResident(s.resident()).setPinned(s.pinned()).setLoading(s.loading())
                .setMemoryBytes(s.memoryBytes()).setBreaker(s.breaker()).setActiveJobs(s.activeJobs());
        if (s.retryAfterMillis() != null) {
            b.setRetryAfterMs(s.retryAfterMillis());
        }
        if (s.lastError() != null) {
            b.setLastError(s.lastError());
        }
        if (s.lastLoadMillis() != null) {
            b.setLastLoadMs(s.lastLoadMillis());
        }
        return b.build();
    }

    @Override
    @Blocking
    public Uni<ListModelStatesResponse> listModelStates(ListModelStatesRequest request) {
        return ProtoMapper.unary(() -> {
            ListModelStatesResponse.Builder b = ListModelStatesResponse.newBuilder();
            models.models().forEach(s -> b.addModels(state(s)));
            return b.build();
        });
    }

    @Override
    @Blocking
    public Uni<ModelState> getModel(ModelRef request) {
        return ProtoMapper.unary(() -> state(models.get(request.getName())));
    }

    @Override
    @Blocking
    public Uni<ModelState> loadModel(LoadModelRequest request) {
        long wait = request.getNoWait() ? 0 : request.getWaitMs() > 0 ? request.getWaitMs()
                : config.models().loadTimeout().toMillis();
        return ProtoMapper.unary(() -> state(models.load(request.getName(), wait)));
    }

    @Override
    @Blocking
    public Uni<ModelState> unloadModel(ModelRef request) {
        return ProtoMapper.unary(() -> state(models.unload(request.getName())));
    }

    @Override
    @Blocking
    public Uni<ModelState> pinModel(ModelRef request) {
        return ProtoMapper.unary(() -> state(models.pin(request.getName(), true)));
    }

    @Override
    @Blocking
    public Uni<ModelState> unpinModel(ModelRef request) {
        return ProtoMapper.unary(() -> state(models.pin(request.getName(), false)));
    }

    @Override
    @Blocking
    public Uni<RescanModelsResponse> rescanModels(RescanModelsRequest request) {
        return ProtoMapper.unary(() -> {
            ModelService.RescanResult r = models.rescan();
            return RescanModelsResponse.newBuilder().setChanged(r.changed()).setModels(r.models()).setLoras(r.loras()).build();
        });
    }
}
