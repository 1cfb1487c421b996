package dev.sdserve.ops;

import io.micrometer.core.instrument.MeterRegistry;
import io.opentelemetry.api.OpenTelemetry;
import jakarta.enterprise.inject.Instance;
import jakarta.enterprise.inject.Produces;
import jakarta.inject.Singleton;

/** Server-side instances of the ops facades (plain classes, so the scheduler can also be built without Quarkus). */
public class OpsProducers {
    @Produces
    @Singleton
    ServeMetrics serveMetrics(MeterRegistry registry) {
        return new ServeMetrics(registry);
    }

    @Produces
    @Singleton
    Tracing tracing(Instance<OpenTelemetry> otel) {
        return otel.isResolvable() ? new Tracing(otel.get()) : Tracing.noop();
    }
}
