package dev.sdserve.app;

import dev.sdserve.engine.tf.TfEngine;
import dev.sdserve.job.ServeException;
import dev.sdserve.model.ModelRegistry;
import dev.sdserve.scheduler.SchedulerService;
import dev.sdserve.train.FineTuneManager;
import dev.sdserve.train.TrainingCoordinator;

import java.util.logging.Logger;

/**
 * Fine-tuning in the server: a {@link TrainingCoordinator} installed as the scheduler's background work, and a
 * {@link FineTuneManager} whose jobs train on the engine's loaded models, write their LoRAs into the registry's
 * {@code loras/} directory, and have the registry rescanned so the LoRA is servable by name at once.
 */
final class TrainingWiring {
    private static final Logger LOG = Logger.getLogger(TrainingWiring.class.getName());

    private TrainingWiring() {
    }

    /** Coordinator policy knobs (see {@link TrainingCoordinator}). */
    static final class Policy {
        double costFactor = 1.5;
        double marginMillis = 50;
        double priorStepMillis = 1000;
        double backoffMillis = 10_000;
    }

    static FineTuneManager install(FineTuneManager.Settings s, Policy p, SchedulerService service, TfEngine engine,
                                   ModelRegistry registry, dev.sdserve.ops.ServeMetrics metrics) {
        TrainingCoordinator coordinator = new TrainingCoordinator(p.costFactor, p.marginMillis,
                () -> p.priorStepMillis, () -> System.nanoTime() / 1e6);
        coordinator.backoffAfterRefusal(p.backoffMillis);
        if (engine == null || registry == null || !s.enabled) {
            s.enabled = false;
            return new FineTuneManager(s, coordinator, n -> {
                throw new ServeException(ServeException.Code.UNAVAILABLE, "fine-tuning needs the tf engine");
            }, n -> {
            }, n -> false, f -> {
            });
        }
        s.loraDir = registry.dir().resolve(ModelRegistry.LORA_DIR);
        FineTuneManager m = new FineTuneManager(s, coordinator, engine::model, registry::resolveModel,
                n -> registry.loraFiles().containsKey(n), f -> registry.rescan());
        service.setBackgroundWork(coordinator);
        if (metrics != null) {
            var reg = metrics.registry();
            // Prometheus: sdserve_training_steps_total, sdserve_training_busy_seconds_total, sdserve_training_deferred_total
            io.micrometer.core.instrument.FunctionCounter.builder("sdserve.training.steps", coordinator,
                    TrainingCoordinator::steps).description("training steps run in the inference slack").register(reg);
            io.micrometer.core.instrument.FunctionCounter.builder("sdserve.training.busy", coordinator,
                    c -> c.busyMillis() / 1000).baseUnit("seconds").description("time spent in training steps")
                    .register(reg);
            io.micrometer.core.instrument.FunctionCounter.builder("sdserve.training.deferred", coordinator,
                    TrainingCoordinator::deferred).description("times a wanted training step did not fit the slack")
                    .register(reg);
            m.onProgress(ev -> metrics.fineTuneProgress(ev.name(), ev.step(), ev.totalSteps(), ev.loss()));
        }
        LOG.info("fine-tuning on: state in " + s.stateDir.toAbsolutePath() + ", data in " + s.dataDir.toAbsolutePath()
                + ", LoRAs to " + s.loraDir + "; " + coordinator.queued() + " job(s) to resume");
        return m;
    }
}
