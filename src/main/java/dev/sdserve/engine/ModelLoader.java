package dev.sdserve.engine;

import dev.sdserve.job.ServeException;
import io.smallrye.faulttolerance.api.CircuitBreakerState;
import io.smallrye.faulttolerance.api.TypedGuard;
import jakarta.enterprise.util.TypeLiteral;
import org.eclipse.microprofile.faulttolerance.exceptions.CircuitBreakerOpenException;
import org.eclipse.microprofile.faulttolerance.exceptions.TimeoutException;

import java.time.temporal.ChronoUnit;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.function.BiConsumer;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * Loads models off the scheduler thread. Each load runs {@link Engine#ensureLoaded} on the loader executor, guarded
 * by SmallRye Fault Tolerance (programmatic {@link TypedGuard}, one per model): a timeout ({@code loadTimeoutMillis})
 * and a circuit breaker that opens after {@code breakerFailures} failed loads in a row and stays open for
 * {@code breakerDelayMillis}; while it is open, requests for the model are refused at once with a retry hint, then
 * the next load is the half-open trial. Concurrent requests for one model share one load.
 *
 * <p>Timeouts and the breaker run on real time (SmallRye's timer), not on the scheduler's clock. A load that
 * times out keeps running on its thread (weights loading cannot be interrupted midway); if it finishes, the model
 * is resident and usable, but the jobs that waited for it have already ended with UNAVAILABLE.
 */
public final class ModelLoader implements ModelResidency, AutoCloseable {
    private static final Logger LOG = Logger.getLogger(ModelLoader.class.getName());

    /**
     * @param loadTimeoutMillis      a load that takes longer fails with UNAVAILABLE (real ms)
     * @param loadBreakerFailures    failed loads of a model in a row that open its circuit breaker
     * @param loadBreakerDelayMillis how long an open breaker refuses before a trial load (real ms)
     */
    public record Settings(long loadTimeoutMillis, int loadBreakerFailures, long loadBreakerDelayMillis) {
    }

    private final Engine engine;
    private final Settings config;
    private final ExecutorService executor;
    private final Map<String, Entry> entries = new ConcurrentHashMap<>();
    /** Called with (model, null) after a successful load, (model, error) after a failed one. */
    private volatile BiConsumer<String, ServeException> listener = (m, e) -> {
    };

    private final class Entry {
        final String model;
        final TypedGuard<CompletionStage<Void>> guard;
        volatile CircuitBreakerState state = CircuitBreakerState.CLOSED;
        volatile long openedAtMillis;
        volatile CompletableFuture<Void> inFlight;
        volatile String lastError;
        volatile Double lastLoadMillis;
        volatile int loads;
        volatile int failures;

        Entry(String model) {
            this.model = model;
            this.guard = TypedGuard.create(new TypeLiteral<CompletionStage<Void>>() {
                    })
                    .withDescription("load of model '" + model + "'")
                    .withTimeout().duration(config.loadTimeoutMillis(), ChronoUnit.MILLIS).done()
                    .withCircuitBreaker()
                    .requestVolumeThreshold(Math.max(1, config.loadBreakerFailures()))
                    .failureRatio(1.0)
                    .delay(config.loadBreakerDelayMillis(), ChronoUnit.MILLIS)
                    .successThreshold(1)
                    .onStateChange(s -> {
                        if (s == CircuitBreakerState.OPEN) {
                            openedAtMillis = System.currentTimeMillis();
                        }
                        state = s;
                        LOG.info("model '" + model + "': load circuit breaker " + s.name().toLowerCase());
                    })
                    .done()
                    .build();
        }

        /** Milliseconds until the open breaker lets a trial load through, or null when it is not open. */
        Long retryAfter() {
            if (state != CircuitBreakerState.OPEN) {
                return null;
            }
            long left = openedAtMillis + config.loadBreakerDelayMillis() - System.currentTimeMillis();
            return left > 0 ? left : null;
        }
    }

    public ModelLoader(Engine engine, Settings settings) {
        this.engine = engine;
        this.config = settings;
        this.executor = Executors.newCachedThreadPool(r -> {
            Thread t = new Thread(r, "sdserve-model-loader");
            t.setDaemon(true);
            return t;
        });
    }

    @Override
    public void listener(BiConsumer<String, ServeException> l) {
        this.listener = l;
    }

    private Entry entry(String model) {
        return entries.computeIfAbsent(model, Entry::new);
    }

    /**
     * Starts loading the model unless it is resident or already loading; the future completes when it is resident
     * or fails with a {@link ServeException} (FAILED_PRECONDITION from the engine naming file and reason,
     * UNAVAILABLE on timeout or while the breaker is open).
     */
    @Override
    public CompletableFuture<Void> load(String model) {
        engine.describe(model); // NOT_FOUND for an unknown name, before any breaker bookkeeping
        Entry e = entry(model);
        synchronized (e) {
            CompletableFuture<Void> f = e.inFlight;
            if (f != null) {
                return f;
            }
            if (engine.isResident(model)) {
                return CompletableFuture.completedFuture(null);
            }
            CompletableFuture<Void> result = new CompletableFuture<>();
            e.inFlight = result;
            long t0 = System.nanoTime();
            e.loads++;
            CompletionStage<Void> stage;
            try {
                stage = e.guard.call(() -> CompletableFuture.runAsync(() -> engine.ensureLoaded(model), executor));
            } catch (Exception ex) {
                stage = CompletableFuture.failedFuture(ex);
            }
            stage.whenComplete((v, err) -> finish(e, result, t0, err));
            return result;
        }
    }

    private void finish(Entry e, CompletableFuture<Void> result, long t0, Throwable err) {
        ServeException se = null;
        if (err != null) {
            se = toServe(e, unwrap(err));
        }
        synchronized (e) {
            if (se == null) {
                e.lastLoadMillis = (System.nanoTime() - t0) / 1e6;
                e.lastError = null;
            } else {
                e.failures++;
                e.lastError = se.getMessage();
            }
        }
        if (se != null) {
            LOG.log(Level.WARNING, se.getMessage());
        }
        try {
            // before the load stops being "in flight": a request meanwhile joins this outcome rather than starting
            // another load (which an open breaker would refuse with a less telling error)
            listener.accept(e.model, se);
        } catch (RuntimeException ex) {
            LOG.log(Level.SEVERE, "model load listener failed", ex);
        }
        synchronized (e) {
            e.inFlight = null;
        }
        if (se == null) {
            result.complete(null);
        } else {
            result.completeExceptionally(se);
        }
    }

    private static Throwable unwrap(Throwable t) {
        while ((t instanceof CompletionException || t instanceof java.util.concurrent.ExecutionException) && t.getCause() != null) {
            t = t.getCause();
        }
        return t;
    }

    private ServeException toServe(Entry e, Throwable t) {
        if (t instanceof ServeException se) {
            return se;
        }
        if (t instanceof TimeoutException) {
            return new ServeException(ServeException.Code.UNAVAILABLE, null, "model '" + e.model + "' did not load within "
                    + config.loadTimeoutMillis() + " ms (sdserve.models.load-timeout)", null);
        }
        if (t instanceof CircuitBreakerOpenException) {
            return breakerOpen(e);
        }
        return new ServeException(ServeException.Code.FAILED_PRECONDITION, "model '" + e.model + "' cannot be loaded: " + t);
    }

    private ServeException breakerOpen(Entry e) {
        Long after = e.retryAfter();
        long retry = after == null ? 1000 : after;
        return new ServeException(ServeException.Code.UNAVAILABLE, null, "model '" + e.model + "' is not available: its "
                + "recent load(s) failed" + (e.lastError == null ? "" : " (" + e.lastError + ")") + "; loads are "
                + "suspended for another " + retry + " ms", retry);
    }

    /**
     * A fast refusal for a model that is not resident while its breaker is open (UNAVAILABLE with a retry hint), or
     * null when a request for it may wait for a load.
     */
    @Override
    public ServeException refusal(String model) {
        Entry e = entries.get(model);
        if (e == null || e.retryAfter() == null || engine.isResident(model)) {
            return null;
        }
        return breakerOpen(e);
    }

    /** Whether a load of the model is in progress. */
    @Override
    public boolean loading(String model) {
        Entry e = entries.get(model);
        return e != null && e.inFlight != null;
    }

    /** Predicted load time of a model that is not resident: its last measured load, else the engine's guess. */
    @Override
    public double predictLoadMillis(String model) {
        Entry e = entries.get(model);
        Double measured = e == null ? null : e.lastLoadMillis;
        return measured != null ? measured : engine.predictLoadMillis(model);
    }

    @Override
    public Status status(String model) {
        Entry e = entries.get(model);
        boolean resident = engine.isResident(model);
        if (e == null) {
            return new Status(model, resident, false, "closed", null, null, null, 0, 0);
        }
        Long retry = e.retryAfter();
        String breaker = retry != null ? "open" : e.state == CircuitBreakerState.CLOSED ? "closed"
                : "half_open"; // open past its delay: the next load is the trial
        return new Status(model, resident, e.inFlight != null, breaker, retry, e.lastError, e.lastLoadMillis, e.loads, e.failures);
    }

    @Override
    public boolean isResident(String model) {
        return engine.isResident(model);
    }

    @Override
    public void close() {
        executor.shutdownNow();
    }
}
