package dev.sdserve.ops;

import jakarta.enterprise.context.ApplicationScoped;
import jakarta.enterprise.inject.Produces;
import jakarta.inject.Inject;
import org.eclipse.microprofile.health.HealthCheck;
import org.eclipse.microprofile.health.HealthCheckResponse;
import org.eclipse.microprofile.health.HealthCheckResponseBuilder;
import org.eclipse.microprofile.health.Liveness;
import org.eclipse.microprofile.health.Readiness;
import org.eclipse.microprofile.health.Startup;

/**
 * The probes Kubernetes calls: {@code /q/health/live} (the process works), {@code /q/health/ready} (default model
 * loaded and not draining) and {@code /q/health/started} (the default model finished loading, or failed to).
 */
@ApplicationScoped
public class HealthChecks {
    @Inject
    ReadinessState state;

    @Produces
    @Liveness
    @ApplicationScoped
    HealthCheck live() {
        return () -> {
            HealthCheckResponseBuilder b = HealthCheckResponse.named("sdserve").status(state.alive());
            if (!state.alive()) {
                b.withData("fatal", state.fatalReason());
            }
            return b.build();
        };
    }

    @Produces
    @Readiness
    @ApplicationScoped
    HealthCheck ready() {
        return () -> {
            HealthCheckResponseBuilder b = HealthCheckResponse.named("sdserve").status(state.ready())
                    .withData("draining", state.isDraining());
            if (state.loadedModel() != null) {
                b.withData("default_model", state.loadedModel());
            } else {
                b.withData("default_model", state.loadError() == null ? "loading" : "failed: " + state.loadError());
            }
            return b.build();
        };
    }

    @Produces
    @Startup
    @ApplicationScoped
    HealthCheck started() {
        return () -> HealthCheckResponse.named("sdserve").status(state.started())
                .withData("default_model", state.loadedModel() != null ? state.loadedModel()
                        : state.loadError() == null ? "loading" : "failed: " + state.loadError())
                .build();
    }
}
