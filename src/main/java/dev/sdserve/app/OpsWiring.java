package dev.sdserve.app;

import dev.sdserve.config.SdServeConfig;
import dev.sdserve.ops.HugePages;
import dev.sdserve.ops.ReadinessState;
import dev.sdserve.ops.ServeMetrics;
import dev.sdserve.job.Drainable;
import dev.sdserve.job.Job;
import dev.sdserve.job.JobState;
import dev.sdserve.job.SloClass;
import dev.sdserve.scheduler.SchedulerService;
import dev.sdserve.scheduler.SchedulerStats;
import io.micrometer.core.instrument.FunctionCounter;
import io.micrometer.core.instrument.MeterRegistry;
import io.quarkus.runtime.StartupEvent;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.enterprise.event.Observes;
import jakarta.enterprise.inject.Produces;
import jakarta.inject.Inject;
import jakarta.inject.Singleton;
import org.jboss.logging.Logger;

import java.time.Duration;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Connects the ops side to the assembled service (the lead's {@link ServiceProducer}) without changing it: the
 * scheduler as a {@link Drainable}, readiness once the default model is known to the engine, and the gauges and
 * counters that can be read from outside the scheduler (queue depth per SLO class, running jobs, engine and
 * scheduler counters).
 */
@ApplicationScoped
public class OpsWiring {
    private static final Logger LOG = Logger.getLogger(OpsWiring.class);

    @Inject
    ServiceProducer producer;
    @Inject
    SdServeConfig config;
    @Inject
    ReadinessState readiness;
    @Inject
    ServeMetrics metrics;

    @Produces
    @Singleton
    Drainable drainable() {
        SchedulerService s = producer.assembly().service();
        return new Drainable() {
            @Override
            public void drain(Duration timeout) {
                int cancelled = s.drain(timeout.toMillis());
                LOG.infof("drain: %d job(s) did not finish within %s and were ended with UNAVAILABLE", cancelled, timeout);
            }

            @Override
            public boolean draining() {
                return s.draining();
            }
        };
    }

    void onStart(@Observes StartupEvent ev) {
        SchedulerService s = producer.assembly().service();
        HugePages.serverNote(System.getenv(), HugePages.thpMode(), System.getProperty("sdserve.hugePages"))
                .ifPresent(LOG::warn);
        registerMetrics(metrics, s);
        metrics.registerMemoryBudget(config.memoryBudgetMb() << 20);
        // Readiness: the default model resolves in the engine. Off the start-up thread: a real checkpoint's
        // config is read from disk and the embedded model may be created on first use.
        Thread t = new Thread(() -> {
            String model = config.defaultModel();
            try {
                producer.assembly().engine().describe(model);
                readiness.defaultModelLoaded(model);
                LOG.infof("ready: default model '%s' is available", model);
            } catch (RuntimeException e) {
                readiness.defaultModelFailed(e.getMessage() == null ? e.toString() : e.getMessage());
                LOG.errorf("default model '%s' could not be loaded: %s; staying not ready", model, e.getMessage());
            }
        }, "sdserve-readiness");
        t.setDaemon(true);
        t.start();
    }

    /** Gauges and counters read from the scheduler's own state and counters. */
    static void registerMetrics(ServeMetrics metrics, SchedulerService s) {
        for (SloClass c : SloClass.values()) {
            metrics.registerQueueDepth(c, () -> count(s, c, true));
        }
        metrics.registerRunning(() -> s.jobs().stream().filter(j -> running(j.state())).count());
        metrics.registerEngineStats(s.engine().stats());
        MeterRegistry r = metrics.registry();
        SchedulerStats st = s.stats();
        fc(r, "sdserve.scheduler.admitted", st.admitted, "Jobs the scheduler admitted");
        fc(r, "sdserve.scheduler.admitted.probe", st.admittedProbe, "Jobs admitted as probes: idle server, deadline check refused on stale cost figures");
        fc(r, "sdserve.scheduler.rejected", st.rejectedQueueFull, "Submissions the scheduler refused, by reason", "reason", "queue_full");
        fc(r, "sdserve.scheduler.rejected", st.rejectedDeadline, "Submissions the scheduler refused, by reason", "reason", "deadline");
        fc(r, "sdserve.scheduler.rejected", st.rejectedDraining, "Submissions the scheduler refused, by reason", "reason", "draining");
        fc(r, "sdserve.scheduler.completed", st.completed, "Jobs completed");
        fc(r, "sdserve.scheduler.cancelled", st.cancelled, "Jobs cancelled");
        fc(r, "sdserve.scheduler.failed", st.failed, "Jobs failed");
        fc(r, "sdserve.scheduler.deadline.exceeded", st.deadlineExceeded, "Jobs ended past their deadline");
        fc(r, "sdserve.scheduler.iterations", st.iterations, "Scheduler iterations");
        registerTextCache(r, st);
    }

    /** The text-embedding cache: prompts found and encoded, entries evicted, its bytes and entries now. */
    private static void registerTextCache(MeterRegistry r, SchedulerStats st) {
        fc(r, "sdserve.text.cache.lookups", st.textCacheHits, "Text-embedding cache lookups, by result", "result", "hit");
        fc(r, "sdserve.text.cache.lookups", st.textCacheMisses, "Text-embedding cache lookups, by result", "result", "miss");
        fc(r, "sdserve.text.cache.evictions", st.textCacheEvictions, "Text-embedding cache entries evicted (least recently used)");
        io.micrometer.core.instrument.Gauge.builder("sdserve.text.cache.bytes", st.textCacheBytes, AtomicLong::get)
                .description("Bytes held by the text-embedding cache").register(r);
        io.micrometer.core.instrument.Gauge.builder("sdserve.text.cache.entries", st.textCacheEntries, AtomicLong::get)
                .description("Entries in the text-embedding cache").register(r);
    }

    private static void fc(MeterRegistry r, String name, AtomicLong v, String desc, String... tags) {
        FunctionCounter.builder(name, v, AtomicLong::get).description(desc).tags(tags).register(r);
    }

    private static double count(SchedulerService s, SloClass c, boolean queued) {
        long n = 0;
        for (Job j : s.jobs()) {
            if (j.request().sloClass() == c && (queued ? j.state() == JobState.QUEUED : running(j.state()))) {
                n++;
            }
        }
        return n;
    }

    private static boolean running(JobState st) {
        return st == JobState.ENCODING || st == JobState.DENOISING || st == JobState.DECODING;
    }
}
