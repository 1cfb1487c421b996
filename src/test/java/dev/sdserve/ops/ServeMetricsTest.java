package dev.sdserve.ops;

import dev.sdserve.engine.EngineStats;
import dev.sdserve.job.ServeException;
import dev.sdserve.job.SloClass;
import io.micrometer.prometheus.PrometheusConfig;
import io.micrometer.prometheus.PrometheusMeterRegistry;
import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.Map;
import java.util.concurrent.atomic.AtomicInteger;

import static org.junit.jupiter.api.Assertions.*;

/** The exported Prometheus text, checked line by line against hand-computed values. */
class ServeMetricsTest {
    private final PrometheusMeterRegistry prom = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
    private final ServeMetrics m = new ServeMetrics(prom);

    /** The value of the sample whose name+labels start with {@code prefix}, e.g. {@code foo_total{code="X",}}. */
    private double sample(String name, String... labels) {
        String text = prom.scrape();
        for (String line : text.split("\n")) {
            if (line.startsWith("#") || !line.startsWith(name)) {
                continue;
            }
            String head = line.substring(0, line.lastIndexOf(' '));
            String rest = head.substring(name.length());
            if (!rest.isEmpty() && !rest.startsWith("{")) {
                continue; // a longer metric name with the same prefix
            }
            if (Arrays.stream(labels).allMatch(rest::contains)) {
                return Double.parseDouble(line.substring(line.lastIndexOf(' ') + 1));
            }
        }
        fail("no sample " + name + " " + Arrays.toString(labels) + " in:\n" + text);
        return 0;
    }

    @Test
    void countersByClassAndCode() {
        m.admitted(SloClass.INTERACTIVE);
        m.admitted(SloClass.INTERACTIVE);
        m.admitted(SloClass.BATCH);
        m.refused(ServeException.Code.RESOURCE_EXHAUSTED);
        m.refused(ServeException.Code.RESOURCE_EXHAUSTED);
        m.refused(ServeException.Code.UNAVAILABLE);
        m.cancelled(SloClass.STANDARD, "drain");
        m.failed(SloClass.BATCH, ServeException.Code.INTERNAL);
        m.completed(SloClass.INTERACTIVE);
        assertEquals(2, sample("sdserve_requests_admitted_total", "slo_class=\"interactive\""));
        assertEquals(1, sample("sdserve_requests_admitted_total", "slo_class=\"batch\""));
        assertEquals(2, sample(ServeMetrics.REFUSED, "code=\"RESOURCE_EXHAUSTED\""));
        assertEquals(1, sample(ServeMetrics.REFUSED, "code=\"UNAVAILABLE\""));
        assertEquals(1, sample(ServeMetrics.CANCELLED, "reason=\"drain\"", "slo_class=\"standard\""));
        assertEquals(1, sample(ServeMetrics.FAILED, "code=\"INTERNAL\"", "slo_class=\"batch\""));
        assertEquals(1, sample(ServeMetrics.COMPLETED, "slo_class=\"interactive\""));
    }

    @Test
    void queueDepthFollowsItsSupplier() {
        AtomicInteger depth = new AtomicInteger(3);
        m.registerQueueDepth(SloClass.INTERACTIVE, depth::get);
        m.registerQueueDepth(SloClass.BATCH, () -> 11);
        assertEquals(3, sample(ServeMetrics.QUEUE_DEPTH, "slo_class=\"interactive\""));
        depth.set(7);
        System.gc(); // the gauge must hold its supplier strongly
        assertEquals(7, sample(ServeMetrics.QUEUE_DEPTH, "slo_class=\"interactive\""));
        assertEquals(11, sample(ServeMetrics.QUEUE_DEPTH, "slo_class=\"batch\""));
    }

    @Test
    void batchSizeHistogramPerStage() {
        for (int s : new int[]{1, 3, 3, 8, 20}) {
            m.batch(ServeMetrics.STAGE_DENOISE, s);
        }
        m.batch(ServeMetrics.STAGE_DECODE, 2);
        String d = "stage=\"denoise\"";
        assertEquals(5, sample("sdserve_batch_size_count", d));
        assertEquals(35, sample("sdserve_batch_size_sum", d));
        // cumulative buckets: <=1: {1}; <=2: {1}; <=4: {1,3,3}; <=8: +8; <=16: same; <=32: +20
        assertEquals(1, sample("sdserve_batch_size_bucket", d, "le=\"1.0\""));
        assertEquals(1, sample("sdserve_batch_size_bucket", d, "le=\"2.0\""));
        assertEquals(3, sample("sdserve_batch_size_bucket", d, "le=\"4.0\""));
        assertEquals(4, sample("sdserve_batch_size_bucket", d, "le=\"8.0\""));
        assertEquals(4, sample("sdserve_batch_size_bucket", d, "le=\"16.0\""));
        assertEquals(5, sample("sdserve_batch_size_bucket", d, "le=\"32.0\""));
        assertEquals(1, sample("sdserve_batch_size_count", "stage=\"decode\""));
    }

    @Test
    void latenciesInSeconds() {
        m.step("64x64", 30_000_000L);   // 0.03 s
        m.step("64x64", 70_000_000L);   // 0.07 s
        assertEquals(2, sample("sdserve_step_duration_seconds_count", "bucket=\"64x64\""));
        assertEquals(0.1, sample("sdserve_step_duration_seconds_sum", "bucket=\"64x64\""), 1e-9);
        assertEquals(0, sample("sdserve_step_duration_seconds_bucket", "bucket=\"64x64\"", "le=\"0.025\""));
        assertEquals(1, sample("sdserve_step_duration_seconds_bucket", "bucket=\"64x64\"", "le=\"0.05\""));
        assertEquals(2, sample("sdserve_step_duration_seconds_bucket", "bucket=\"64x64\"", "le=\"0.1\""));

        m.firstPreview(SloClass.INTERACTIVE, 400_000_000L);
        assertEquals(0.4, sample("sdserve_time_to_first_preview_seconds_sum", "slo_class=\"interactive\""), 1e-9);
        m.finished(SloClass.STANDARD, "completed", 2_500_000_000L, true);
        assertEquals(2.5, sample("sdserve_request_duration_seconds_sum", "slo_class=\"standard\"", "outcome=\"completed\""), 1e-9);
    }

    @Test
    void sloAttainmentIsMetOverFinished() {
        assertTrue(Double.isNaN(sample(ServeMetrics.SLO_ATTAINMENT, "slo_class=\"interactive\"")), "no data yet: NaN");
        m.finished(SloClass.INTERACTIVE, "completed", 1_000_000L, true);
        m.finished(SloClass.INTERACTIVE, "completed", 1_000_000L, true);
        m.finished(SloClass.INTERACTIVE, "completed", 1_000_000L, true);
        m.finished(SloClass.INTERACTIVE, "completed", 1_000_000L, false);
        m.finished(SloClass.INTERACTIVE, "cancelled", 1_000_000L, false); // not counted in attainment
        assertEquals(0.75, sample(ServeMetrics.SLO_ATTAINMENT, "slo_class=\"interactive\""), 1e-12);
        assertEquals(3, sample(ServeMetrics.SLO_REQUESTS, "slo_class=\"interactive\"", "met=\"true\""));
        assertEquals(1, sample(ServeMetrics.SLO_REQUESTS, "slo_class=\"interactive\"", "met=\"false\""));
    }

    @Test
    void residentModelsReplaceTheirRows() {
        m.residentModels(Map.of("embedded", 1000L, "sd15", 2_000_000_000L));
        assertEquals(2, sample(ServeMetrics.MODELS_RESIDENT));
        assertEquals(2e9, sample(ServeMetrics.MODEL_MEMORY, "model=\"sd15\""));
        m.residentModels(Map.of("embedded", 1000L));
        assertEquals(1, sample(ServeMetrics.MODELS_RESIDENT));
        assertFalse(prom.scrape().contains("model=\"sd15\""), "evicted model's row is gone");
        m.registerMemoryBudget(8192L << 20);
        assertEquals(8192.0 * 1024 * 1024, sample(ServeMetrics.MODEL_MEMORY_BUDGET));
    }

    @Test
    void loraEngineAndFineTune() {
        m.loraCache(true);
        m.loraCache(true);
        m.loraCache(false);
        assertEquals(2, sample(ServeMetrics.LORA_CACHE_HITS));
        assertEquals(1, sample(ServeMetrics.LORA_CACHE_MISSES));

        EngineStats st = new EngineStats();
        m.registerEngineStats(st);
        st.recordEncode(3);
        st.recordDecode(2);
        st.recordDecode(1);
        assertEquals(1, sample(ServeMetrics.ENGINE_CALLS, "stage=\"encode\""));
        assertEquals(3, sample(ServeMetrics.ENGINE_ITEMS, "stage=\"encode\""));
        assertEquals(2, sample(ServeMetrics.ENGINE_CALLS, "stage=\"decode\""));

        m.fineTuneProgress("pets", 10, 200, 0.25);
        m.fineTuneProgress("pets", 20, 200, 0.125);
        assertEquals(20, sample(ServeMetrics.FINETUNE_STEP, "run=\"pets\""));
        assertEquals(200, sample(ServeMetrics.FINETUNE_TOTAL_STEPS, "run=\"pets\""));
        assertEquals(0.125, sample(ServeMetrics.FINETUNE_LOSS, "run=\"pets\""));
    }

    @Test
    void noopAcceptsEverything() {
        ServeMetrics n = ServeMetrics.noop();
        n.admitted(SloClass.BATCH);
        n.batch("denoise", 4);
        n.step("x", 1);
        n.finished(SloClass.BATCH, "completed", 1, true);
        n.residentModels(Map.of("a", 1L));
    }
}
