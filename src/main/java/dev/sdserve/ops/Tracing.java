package dev.sdserve.ops;

import io.opentelemetry.api.OpenTelemetry;
import io.opentelemetry.api.common.AttributeKey;
import io.opentelemetry.api.trace.Span;
import io.opentelemetry.api.trace.SpanKind;
import io.opentelemetry.api.trace.StatusCode;
import io.opentelemetry.api.trace.Tracer;
import io.opentelemetry.context.Context;

/**
 * OpenTelemetry spans for a request's stages, for the scheduler. A request gets one root span from admission to its
 * end ({@link #request}); each stage it passes through (queue, encode, denoise, decode) is a child span
 * ({@link RequestSpan#stage}). Parents are passed explicitly, not through thread-locals, because a request's stages
 * run on the scheduler thread interleaved with other requests'.
 *
 * <p>With the SDK disabled (the default, {@code quarkus.otel.sdk.disabled=true}) or {@link #noop()} every span is a
 * non-recording no-op: calls cost a few allocations and export nothing.
 */
public final class Tracing {
    public static final String INSTRUMENTATION = "dev.sdserve";
    static final AttributeKey<String> JOB_ID = AttributeKey.stringKey("sdserve.job_id");

    private final Tracer tracer;

    public Tracing(OpenTelemetry otel) {
        this(otel.getTracer(INSTRUMENTATION));
    }

    public Tracing(Tracer tracer) {
        this.tracer = tracer;
    }

    public static Tracing noop() {
        return new Tracing(OpenTelemetry.noop());
    }

    /** Starts the root span of a request (name "sdserve.request"), parented to the caller's current span if any. */
    public RequestSpan request(String jobId, String model, String sloClass) {
        Span span = tracer.spanBuilder("sdserve.request").setSpanKind(SpanKind.INTERNAL)
                .setParent(Context.current())
                .setAttribute(JOB_ID, jobId)
                .setAttribute("sdserve.model", model == null ? "" : model)
                .setAttribute("sdserve.slo_class", sloClass == null ? "" : sloClass)
                .startSpan();
        return new RequestSpan(span);
    }

    /** A request's root span. End it exactly once with {@link #end()} or {@link #fail}. */
    public final class RequestSpan {
        private final Span span;

        RequestSpan(Span span) {
            this.span = span;
        }

        /** Starts a child span "sdserve.&lt;stage&gt;" (e.g. queue, encode, denoise, decode). */
        public StageSpan stage(String stage) {
            Span s = tracer.spanBuilder("sdserve." + stage).setParent(Context.root().with(span)).startSpan();
            return new StageSpan(s);
        }

        /** An event on the request span (e.g. "step" with its index). */
        public void event(String name, String key, long value) {
            span.addEvent(name, io.opentelemetry.api.common.Attributes.of(AttributeKey.longKey(key), value));
        }

        public void attribute(String key, String value) {
            span.setAttribute(key, value);
        }

        public void end() {
            span.end();
        }

        /** Ends the span marked as an error with a short public description (e.g. "CANCELLED: drain timeout"). */
        public void fail(String description) {
            span.setStatus(StatusCode.ERROR, description);
            span.end();
        }

        public Span span() {
            return span;
        }
    }

    /** One stage of a request; closing ends it (use try-with-resources or call {@link #close()}). */
    public static final class StageSpan implements AutoCloseable {
        private final Span span;

        StageSpan(Span span) {
            this.span = span;
        }

        public StageSpan attribute(String key, long value) {
            span.setAttribute(key, value);
            return this;
        }

        public void fail(Throwable t) {
            span.recordException(t);
            span.setStatus(StatusCode.ERROR, t.getMessage() == null ? t.getClass().getSimpleName() : t.getMessage());
        }

        @Override
        public void close() {
            span.end();
        }

        public Span span() {
            return span;
        }
    }
}
