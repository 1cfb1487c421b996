package dev.sdserve.ops;

import io.opentelemetry.api.trace.StatusCode;
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

class TracingTest {
    @Test
    void stagesAreChildrenOfTheRequestSpan() throws Exception {
        SpanCollector out = new SpanCollector();
        try (SdkTracerProvider tp = SdkTracerProvider.builder().addSpanProcessor(SimpleSpanProcessor.create(out)).build()) {
            Tracing t = new Tracing(OpenTelemetrySdk.builder().setTracerProvider(tp).build());
            Tracing.RequestSpan r = t.request("job-1", "embedded", "interactive");
            try (Tracing.StageSpan q = r.stage("queue")) {
                q.attribute("sdserve.position", 2);
            }
            // another request interleaves on the same thread: its spans must not nest into job-1's
            Tracing.RequestSpan other = t.request("job-2", "embedded", "batch");
            try (Tracing.StageSpan d = r.stage("denoise")) {
                d.fail(new IllegalStateException("engine oom"));
            }
            r.fail("FAILED: engine oom");
            other.end();

            assertEquals(4, out.spans.size());
            SpanData root = find(out, "sdserve.request", "job-1");
            SpanData queue = out.spans.stream().filter(s -> s.getName().equals("sdserve.queue")).findFirst().orElseThrow();
            SpanData denoise = out.spans.stream().filter(s -> s.getName().equals("sdserve.denoise")).findFirst().orElseThrow();
            SpanData root2 = find(out, "sdserve.request", "job-2");
            assertEquals(root.getSpanContext().getSpanId(), queue.getParentSpanId());
            assertEquals(root.getSpanContext().getSpanId(), denoise.getParentSpanId());
            assertEquals(root.getTraceId(), denoise.getTraceId());
            assertNotEquals(root.getTraceId(), root2.getTraceId(), "independent requests are separate traces");
            assertEquals(2L, queue.getAttributes().get(io.opentelemetry.api.common.AttributeKey.longKey("sdserve.position")));
            assertEquals(StatusCode.ERROR, denoise.getStatus().getStatusCode());
            assertEquals(StatusCode.ERROR, root.getStatus().getStatusCode());
            assertEquals("FAILED: engine oom", root.getStatus().getDescription());
        }
    }

    private static SpanData find(SpanCollector c, String name, String job) {
        return c.spans.stream().filter(s -> s.getName().equals(name) && job.equals(s.getAttributes().get(Tracing.JOB_ID)))
                .findFirst().orElseThrow();
    }

    @Test
    void noopRecordsNothingAndCostsLittle() {
        Tracing t = Tracing.noop();
        Tracing.RequestSpan r = t.request("j", null, null);
        assertFalse(r.span().isRecording());
        try (Tracing.StageSpan s = r.stage("encode")) {
            assertFalse(s.span().isRecording());
        }
        r.end();
    }
}
