package dev.sdserve.scheduler;

import dev.sdserve.job.Job;
import dev.sdserve.ops.ServeMetrics;
import dev.sdserve.ops.Tracing;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import io.opentelemetry.sdk.OpenTelemetrySdk;
import io.opentelemetry.sdk.common.CompletableResultCode;
import io.opentelemetry.sdk.trace.SdkTracerProvider;
import io.opentelemetry.sdk.trace.data.SpanData;
import io.opentelemetry.sdk.trace.export.SimpleSpanProcessor;
import io.opentelemetry.sdk.trace.export.SpanExporter;
import dev.sdserve.testutil.SpanCollector;
import org.junit.jupiter.api.Test;

import java.util.Collection;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;

import static org.junit.jupiter.api.Assertions.*;

/** The scheduler reports each request as a trace (a span per stage) and feeds the metrics facade. */
class TracingAndMetricsTest {
    @Test
    void aCompletedRequestIsOneTraceWithAStageSpanPerStageAndCountsInTheMetrics() {
        SpanCollector out = new SpanCollector();
        SimpleMeterRegistry registry = new SimpleMeterRegistry();
        try (SdkTracerProvider tp = SdkTracerProvider.builder().addSpanProcessor(SimpleSpanProcessor.create(out)).build()) {
            Harness h = new Harness();
            h.config.tracing = new Tracing(OpenTelemetrySdk.builder().setTracerProvider(tp).build());
            h.config.metrics = new ServeMetrics(registry);
            SchedulerService s = h.build();
            Job ok = s.submit(Harness.req("traced", 1, 4), false);
            Job gone = s.submit(Harness.req("cancelled", 2, 50), false);
            h.runOnce3();
            s.cancel(gone.id());
            h.runAll();
            assertNotNull(Harness.completed(ok));

            SpanData root = out.spans.stream().filter(sp -> sp.getParentSpanContext().isValid() == false
                    && sp.getTraceId().equals(traceOf(out, ok.id()))).findFirst().orElseThrow();
            List<String> stages = out.spans.stream()
                    .filter(sp -> sp.getParentSpanId().equals(root.getSpanId()))
                    .map(SpanData::getName).toList();
            assertEquals(4, stages.size(), stages.toString());
            for (String st : List.of("queue", "encode", "denoise", "decode")) {
                assertTrue(stages.stream().anyMatch(n -> n.contains(st)), st + " in " + stages);
            }
            SpanData cancelledRoot = out.spans.stream().filter(sp -> sp.getTraceId().equals(traceOf(out, gone.id()))
                    && !sp.getParentSpanContext().isValid()).findFirst().orElseThrow();
            assertEquals(io.opentelemetry.api.trace.StatusCode.ERROR, cancelledRoot.getStatus().getStatusCode());

            // Micrometer names (dots); Prometheus renders them as sdserve_requests_admitted_total etc.
            assertEquals(2.0, registry.get("sdserve.requests.admitted").counter().count());
            assertEquals(1.0, registry.get("sdserve.requests.completed").counter().count());
            assertEquals(1.0, registry.get("sdserve.requests.cancelled").counter().count());
            assertTrue(registry.get("sdserve.step.duration").timer().count() >= 4);
        }
    }

    private static String traceOf(SpanCollector out, String jobId) {
        return out.spans.stream()
                .filter(sp -> jobId.equals(sp.getAttributes().asMap().entrySet().stream()
                        .filter(e -> e.getKey().getKey().contains("job")).map(e -> String.valueOf(e.getValue()))
                        .findFirst().orElse(null)))
                .map(SpanData::getTraceId).findFirst().orElseThrow(() -> new AssertionError("no span for " + jobId));
    }
}
