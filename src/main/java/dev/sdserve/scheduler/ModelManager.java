package dev.sdserve.scheduler;

import dev.sdserve.engine.Engine;
import dev.sdserve.engine.ModelResidency;
import dev.sdserve.job.ModelService;
import dev.sdserve.job.ServeException;
import dev.sdserve.model.ModelCatalog;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.function.BooleanSupplier;

/**
 * The transports' {@link ModelService}: each model of the catalog with its residency (the engine's memory, the
 * loader's state, the scheduler's jobs for it); loads and pins through the shared {@link ModelResidency}; unloads
 * only while no admitted job uses the model (under the scheduler's lock).
 */
public final class ModelManager implements ModelService {
    private final ModelCatalog catalog;
    private final Engine engine;
    private final ModelResidency residency;
    private final SchedulerService scheduler;
    private final BooleanSupplier rescan;

    /** @param rescan re-lists the models directory; true when something changed */
    public ModelManager(ModelCatalog catalog, Engine engine, ModelResidency residency, SchedulerService scheduler,
                        BooleanSupplier rescan) {
        this.catalog = catalog;
        this.engine = engine;
        this.residency = residency;
        this.scheduler = scheduler;
        this.rescan = rescan;
    }

    @Override
    public List<ModelStatus> models() {
        List<ModelStatus> out = new ArrayList<>();
        for (ModelCatalog.ModelEntry e : catalog.models()) {
            out.add(status(e));
        }
        return out;
    }

    private ModelCatalog.ModelEntry entry(String name) {
        for (ModelCatalog.ModelEntry e : catalog.models()) {
            if (e.name().equals(name)) {
                return e;
            }
        }
        engine.describe(name); // NOT_FOUND naming the known models, or an entry the catalog does not list
        return new ModelCatalog.ModelEntry(name, engine.describe(name).architecture(), 0, "", "", false, false);
    }

    private ModelStatus status(ModelCatalog.ModelEntry e) {
        String n = e.name();
        ModelResidency.Status s = residency.status(n);
        boolean resident = engine.isResident(n);
        return new ModelStatus(n, e.architecture(), e.sizeBytes(), e.dtype(), e.shortHash(), e.isDefault(), resident,
                engine.isPinned(n), s.loading(), engine.residentBytes(n), s.breaker(), s.retryAfterMillis(), s.lastError(),
                s.lastLoadMillis(), scheduler.activeJobs(n), e.description(), e.defaults());
    }

    @Override
    public ModelStatus get(String name) {
        return status(entry(name));
    }

    @Override
    public ModelStatus load(String name, long waitMillis) {
        ModelCatalog.ModelEntry e = entry(name);
        if (!engine.isResident(name)) {
            ServeException refusal = residency.refusal(name);
            if (refusal != null) {
                throw refusal;
            }
        }
        CompletableFuture<Void> f = residency.load(name);
        if (waitMillis > 0) {
            try {
                f.get(waitMillis, TimeUnit.MILLISECONDS);
            } catch (TimeoutException te) {
                // still loading: the status says so
            } catch (ExecutionException ee) {
                if (ee.getCause() instanceof ServeException se) {
                    throw se;
                }
                throw new ServeException(ServeException.Code.INTERNAL, "loading model '" + name + "' failed: " + ee.getCause());
            } catch (InterruptedException ie) {
                Thread.currentThread().interrupt();
                throw new ServeException(ServeException.Code.UNAVAILABLE, "interrupted while waiting for model '" + name + "'");
            }
        }
        return status(e);
    }

    @Override
    public ModelStatus unload(String name) {
        ModelCatalog.ModelEntry e = entry(name);
        scheduler.unloadModel(name);
        return status(e);
    }

    @Override
    public ModelStatus pin(String name, boolean pinned) {
        ModelCatalog.ModelEntry e = entry(name);
        engine.pin(name, pinned);
        if (pinned && !engine.isResident(name)) {
            ServeException refusal = residency.refusal(name);
            if (refusal != null) {
                throw refusal;
            }
            residency.load(name);
        }
        return status(e);
    }

    @Override
    public RescanResult rescan() {
        boolean changed = rescan.getAsBoolean();
        return new RescanResult(changed, catalog.models().size(), catalog.loras().size());
    }
}
