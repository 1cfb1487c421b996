package dev.sdserve.app;

import dev.sdserve.config.SdServeConfig;
import dev.sdserve.job.GenerationService;
import dev.sdserve.model.ModelCatalog;
import io.quarkus.runtime.Startup;
import jakarta.annotation.PreDestroy;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.enterprise.inject.Produces;
import jakarta.inject.Singleton;

import java.nio.file.Path;
import java.util.Arrays;

/** CDI wiring of the server: one Assembly per process, built from application.properties. */
@ApplicationScoped
public class ServiceProducer {
    private final Assembly assembly;

    public ServiceProducer(SdServeConfig config, dev.sdserve.ops.ServeMetrics metrics, dev.sdserve.ops.Tracing tracing) {
        Assembly.Settings s = new Assembly.Settings();
        s.engine = config.engine();
        s.modelsDir = Path.of(config.modelsDir());
        s.defaultModel = config.defaultModel();
        s.threads = config.threads();
        s.computeDtype = config.computeDtype();
        s.memoryBudgetMb = config.memoryBudgetMb();
        s.fakeStepMillis = config.fakeStepMillis();
        config.fakeModels().ifPresent(m -> s.fakeModels.addAll(Arrays.stream(m.split(",")).map(String::trim)
                .filter(x -> !x.isEmpty()).toList()));
        config.fakeColdModels().ifPresent(m -> s.fakeColdModels.addAll(Arrays.stream(m.split(",")).map(String::trim)
                .filter(x -> !x.isEmpty()).toList()));
        s.service.loadTimeoutMillis = config.models().loadTimeout().toMillis();
        s.service.loadBreakerFailures = config.models().breakerFailures();
        s.service.loadBreakerDelayMillis = config.models().breakerDelay().toMillis();
        s.service.admission.defaultPreviewEvery = config.preview().everySteps();
        s.service.admission.defaultGuidanceCutoff = config.guidanceCutoff();
        s.service.textCacheBytes = config.textCacheMb() << 20;
        s.service.admission.defaultDeepCacheInterval = config.deepCacheInterval();
        s.service.admission.defaultTokenMerging = config.tokenMergingRatio();
        s.service.admission.defaultPreviewMaxEdge = config.preview().maxEdge();
        s.service.admission.defaultPreviewFormat = config.preview().format();
        s.service.metrics = metrics;
        s.service.tracing = tracing;
        s.train.enabled = config.train().enabled();
        s.train.stateDir = Path.of(config.train().stateDir());
        s.train.dataDir = Path.of(config.train().dataDir());
        s.train.maxUploadBytes = config.train().maxUploadMb() << 20;
        s.train.checkpointEvery = config.train().checkpointEvery();
        s.trainCostFactor = config.train().costFactor();
        s.trainMarginMillis = config.train().marginMs();
        s.trainBackoffMillis = config.train().backoffMs();
        this.assembly = Assembly.create(s);
    }

    @Produces
    @Singleton
    GenerationService generationService() {
        return assembly.service();
    }

    @Produces
    @Singleton
    ModelCatalog catalog() {
        return assembly.catalog();
    }

    @Produces
    @Singleton
    dev.sdserve.job.ModelService modelService() {
        return assembly.models();
    }

    @Produces
    @Singleton
    dev.sdserve.train.FineTuneManager fineTunes() {
        return assembly.fineTunes();
    }

    public Assembly assembly() {
        return assembly;
    }

    @PreDestroy
    void close() {
        assembly.close();
    }

    /** Builds the assembly at start-up (so the first request does not pay for it). */
    @Startup
    void init() {
        // constructor did the work
    }
}
