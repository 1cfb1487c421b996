package dev.sdserve.api.grpc;

import dev.sdserve.api.ErrorMessages;
import dev.sdserve.api.grpc.v1.FineTuneEvent;
import dev.sdserve.api.grpc.v1.FineTuneInfo;
import dev.sdserve.api.grpc.v1.FineTuneRef;
import dev.sdserve.api.grpc.v1.FineTuneRequest;
import dev.sdserve.api.grpc.v1.FineTuneState;
import dev.sdserve.api.grpc.v1.FineTuning;
import dev.sdserve.api.grpc.v1.ListFineTunesRequest;
import dev.sdserve.api.grpc.v1.ListFineTunesResponse;
import dev.sdserve.train.FineTuneJob;
import dev.sdserve.train.FineTuneManager;
import io.quarkus.grpc.GrpcService;
import io.smallrye.common.annotation.Blocking;
import io.smallrye.mutiny.Multi;
import io.smallrye.mutiny.Uni;
import jakarta.inject.Inject;


/** gRPC transport of fine-tune jobs ({@code sdserve_train.proto}): maps messages, nothing else. */
@GrpcService
public class FineTuningGrpcService implements FineTuning {
    @Inject
    FineTuneManager manager;

    @Override
    @Blocking
    public Uni<FineTuneRef> submit(FineTuneRequest r) {
        return ProtoMapper.unary(() -> FineTuneRef.newBuilder().setId(manager.submit(request(r)).id()).build());
    }

    @Override
    public Multi<FineTuneEvent> watch(FineTuneRef ref) {
        return dev.sdserve.api.EventStreams.fineTuneEvents(manager, ref.getId()).map(FineTuningGrpcService::event)
                .onFailure(RuntimeException.class).transform(e -> ProtoMapper.toStatus(ErrorMessages.toServe(e)));
    }

    @Override
    @Blocking
    public Uni<FineTuneEvent> cancel(FineTuneRef ref) {
        return ProtoMapper.unary(() -> event(manager.cancel(ref.getId())));
    }

    @Override
    @Blocking
    public Uni<FineTuneEvent> pause(FineTuneRef ref) {
        return ProtoMapper.unary(() -> event(manager.pause(ref.getId())));
    }

    @Override
    @Blocking
    public Uni<FineTuneEvent> resume(FineTuneRef ref) {
        return ProtoMapper.unary(() -> event(manager.resume(ref.getId())));
    }

    @Override
    public Uni<FineTuneInfo> get(FineTuneRef ref) {
        return ProtoMapper.unary(() -> info(manager.get(ref.getId())));
    }

    @Override
    public Uni<ListFineTunesResponse> list(ListFineTunesRequest request) {
        return ProtoMapper.unary(() -> ListFineTunesResponse.newBuilder()
                .addAllJobs(manager.list().stream().map(FineTuningGrpcService::info).toList()).build());
    }

    // ------------------------------------------------------------------------------------------------ mapping

    static FineTuneManager.Request request(FineTuneRequest r) {
        return new FineTuneManager.Request(r.getName(), r.getBaseModel(), r.getDataFolder(),
                r.getImagesList().stream().map(i -> new FineTuneManager.Upload(i.getImage().toByteArray(),
                        i.getCaption())).toList(),
                r.getRank(), r.getAlpha(), r.getTargetModulesList(), r.getSteps(), r.getLearningRate(),
                r.getBatchSize(), r.getSeed(), r.getResolution());
    }

    static FineTuneEvent event(FineTuneManager.Event e) {
        FineTuneEvent.Builder b = FineTuneEvent.newBuilder().setId(e.id()).setName(e.name()).setState(state(e.state()))
                .setStep(e.step()).setTotal(e.totalSteps()).setLoss(e.loss()).setEtaMs(e.etaMillis());
        if (e.lora() != null) {
            b.setLora(e.lora());
        }
        if (e.detail() != null) {
            b.setDetail(e.detail());
        }
        return b.build();
    }

    static FineTuneState state(FineTuneManager.State s) {
        return switch (s) {
            case QUEUED -> FineTuneState.FINE_TUNE_QUEUED;
            case PREPARING -> FineTuneState.FINE_TUNE_PREPARING;
            case RUNNING -> FineTuneState.FINE_TUNE_RUNNING;
            case PAUSED -> FineTuneState.FINE_TUNE_PAUSED;
            case SUCCEEDED -> FineTuneState.FINE_TUNE_SUCCEEDED;
            case FAILED -> FineTuneState.FINE_TUNE_FAILED;
            case CANCELLED -> FineTuneState.FINE_TUNE_CANCELLED;
        };
    }

    static FineTuneInfo info(FineTuneManager.Info i) {
        FineTuneJob.Spec s = i.spec();
        FineTuneRequest.Builder r = FineTuneRequest.newBuilder().setName(s.name()).setBaseModel(s.baseModel())
                .setRank(s.rank()).setAlpha(s.alpha()).addAllTargetModules(s.targets()).setSteps(s.steps())
                .setLearningRate(s.learningRate()).setBatchSize(s.batchSize()).setSeed(s.seed())
                .setResolution(s.resolution());
        if (s.dataFolder() != null) {
            r.setDataFolder(s.dataFolder());
        }
        return FineTuneInfo.newBuilder().setStatus(event(i.status())).setRequest(r).addAllLossSteps(i.lossSteps())
                .addAllLossValues(i.losses()).setCreatedMs(i.createdMillis()).build();
    }
}
