package dev.sdserve.ops;

import dev.sdserve.config.SdServeConfig;
import dev.sdserve.job.Drainable;
import dev.sdserve.job.GenerationService;
import dev.sdserve.job.Job;
import io.quarkus.arc.ClientProxy;
import io.quarkus.runtime.ShutdownDelayInitiatedEvent;
import io.quarkus.runtime.ShutdownEvent;
import io.quarkus.runtime.StartupEvent;
import jakarta.annotation.Priority;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.enterprise.event.Observes;
import jakarta.enterprise.inject.Instance;
import jakarta.inject.Inject;
import org.jboss.logging.Logger;

import java.time.Duration;
import java.util.Collection;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * Graceful shutdown. On SIGTERM, in Quarkus' pre-shutdown phase ({@link ShutdownDelayInitiatedEvent}, fired because
 * {@code quarkus.shutdown.delay-enabled=true}, while the HTTP and gRPC servers still serve normally): readiness goes
 * DOWN, the generation service stops admitting (UNAVAILABLE / 503) and drains for {@code sdserve.drain-timeout},
 * every job still unfinished then ends with a clear status (UNAVAILABLE "the server is shutting down…"), and the
 * observer waits (briefly) until the watchers have taken their last events, so no accepted job's client is left
 * without an ending when the servers close. {@link ShutdownEvent} is a fallback (it comes after the HTTP server has
 * closed) for shutdowns that skip the pre-shutdown phase.
 */
@ApplicationScoped
public class DrainCoordinator {
    private static final Logger LOG = Logger.getLogger(DrainCoordinator.class);
    /** How long to wait, after the drain, for watchers to take the final events before the servers close. */
    static final Duration FLUSH = Duration.ofSeconds(3);

    @Inject
    ReadinessState readiness;
    @Inject
    SdServeConfig config;
    @Inject
    Instance<GenerationService> services;
    @Inject
    Instance<Drainable> drainables;
    @Inject
    Instance<ServeMetrics> metrics;

    private final AtomicBoolean drained = new AtomicBoolean();

    void onStart(@Observes StartupEvent ev) {
        // ImageIO's disk cache streams are closed by a JVM shutdown hook that runs concurrently with the drain, so
        // PNG encoding during the drain would fail; the in-memory cache has no such hook (and is faster).
        javax.imageio.ImageIO.setUseCache(false);
        if (metrics.isResolvable()) {
            metrics.get().registerDraining(readiness::isDraining);
        }
    }

    void onPreShutdown(@Observes @Priority(1) ShutdownDelayInitiatedEvent ev) {
        drainOnce("signal, pre-shutdown");
    }

    void onShutdown(@Observes @Priority(1) ShutdownEvent ev) {
        drainOnce(ev.isStandardShutdown() ? "standard exit" : "signal");
    }

    private synchronized void drainOnce(String reason) {
        if (drained.getAndSet(true)) {
            return;
        }
        javax.imageio.ImageIO.setUseCache(false);
        Duration timeout = config.drainTimeout();
        readiness.draining(true);
        if (!services.isResolvable()) {
            LOG.warn("drain: no GenerationService bean; nothing to drain");
            return;
        }
        GenerationService service = services.get();
        Drainable d = drainable(service);
        long t0 = System.nanoTime();
        int open = unfinished(service.jobs());
        LOG.infof("drain: shutting down (%s); readiness DOWN, admission stopped; %d job(s) unfinished, waiting up to %s",
                reason, open, timeout);
        if (d != null) {
            d.drain(timeout);
        } else {
            LOG.warn("drain: the GenerationService does not implement Drainable; waiting for jobs without stopping admission");
            awaitThenCancel(service, timeout);
        }
        flush(service.jobs());
        int left = unfinished(service.jobs());
        LOG.infof("drain: done in %d ms; %d job(s) still unfinished", (System.nanoTime() - t0) / 1_000_000, left);
    }

    /** The Drainable behind the service (the CDI client proxy of an @ApplicationScoped bean hides it), or a Drainable bean. */
    static Drainable drainable(GenerationService service, Instance<Drainable> beans) {
        Object target = ClientProxy.unwrap(service);
        if (target instanceof Drainable d) {
            return d;
        }
        return beans != null && beans.isResolvable() ? beans.get() : null;
    }

    private Drainable drainable(GenerationService service) {
        return drainable(service, drainables);
    }

    /** Fallback for a service that cannot be drained: wait for its jobs, then cancel what is left. */
    static void awaitThenCancel(GenerationService service, Duration timeout) {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (unfinished(service.jobs()) > 0 && System.nanoTime() < deadline) {
            sleep(50);
        }
        for (Job j : service.jobs()) {
            if (!j.state().terminal()) {
                service.cancel(j.id());
            }
        }
    }

    /**
     * Waits until every job has published its terminal event and its watchers have taken their events (or
     * {@link #FLUSH} passes): events are published asynchronously, so a job ended by the drain may still be on its
     * way to its client.
     */
    static void flush(Collection<Job> jobs) {
        long deadline = System.nanoTime() + FLUSH.toNanos();
        while (System.nanoTime() < deadline) {
            long now = System.nanoTime();
            if (jobs.stream().allMatch(j -> j.state().terminal() && j.maxStalledNanos(now) == 0)) {
                return;
            }
            sleep(20);
        }
    }

    static int unfinished(Collection<Job> jobs) {
        return (int) jobs.stream().filter(j -> !j.state().terminal()).count();
    }

    private static void sleep(long ms) {
        try {
            Thread.sleep(ms);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
