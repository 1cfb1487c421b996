package dev.sdserve.ops;

import jakarta.enterprise.context.ApplicationScoped;

/**
 * What readiness depends on, set by whoever knows: the engine producer reports when the default model is loaded
 * (or failed to load), the drain coordinator reports draining. Readiness = default model loaded and not draining;
 * startup = default model loaded (or failed, so the startup probe stops waiting and liveness decides).
 */
@ApplicationScoped
public class ReadinessState {
    private volatile String loadedModel;
    private volatile String loadError;
    private volatile boolean draining;
    private volatile String fatal;

    /** The default model is loaded and the engine can serve. */
    public void defaultModelLoaded(String model) {
        loadedModel = model;
        loadError = null;
    }

    /** The default model could not be loaded (the server stays not-ready; the message shows in /q/health/ready). */
    public void defaultModelFailed(String message) {
        loadError = message;
    }

    public void draining(boolean d) {
        draining = d;
    }

    /** A fatal, unrecoverable state (e.g. the scheduler loop died): liveness goes DOWN so the pod restarts. */
    public void fatal(String reason) {
        fatal = reason;
    }

    public boolean ready() {
        return loadedModel != null && !draining;
    }

    public boolean started() {
        return loadedModel != null || loadError != null;
    }

    public boolean alive() {
        return fatal == null;
    }

    public String loadedModel() {
        return loadedModel;
    }

    public String loadError() {
        return loadError;
    }

    public boolean isDraining() {
        return draining;
    }

    public String fatalReason() {
        return fatal;
    }
}
