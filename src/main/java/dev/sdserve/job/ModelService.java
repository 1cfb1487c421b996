package dev.sdserve.job;

import java.util.List;

/**
 * Model residency as the transports manage it: list with state, load, unload, pin, rescan. Errors are
 * {@link ServeException}s (NOT_FOUND for an unknown name; FAILED_PRECONDITION naming the file and the reason for a
 * model that cannot be loaded, or for unloading a model that admitted jobs still use; UNAVAILABLE with a retry hint
 * on a load timeout or while the model's load circuit breaker is open).
 */
public interface ModelService {

    /**
     * One checkpoint and its residency.
     *
     * @param breaker          the load circuit breaker: closed, open (loads refused for {@code retryAfterMillis}) or
     *                         half_open (the next load is a trial)
     * @param memoryBytes      bytes of weights held while resident
     * @param lastLoadMillis   duration of the last successful load, or null
     * @param activeJobs       admitted, unfinished jobs for this model
     * @param description      what the model is for, in one line ("" when unknown)
     * @param recommended      settings applied when a request leaves them unset (sampler, steps, guidance_scale,
     *                         width, height, clip_skip; absent members: the server's defaults)
     */
    record ModelStatus(String name, String architecture, long sizeBytes, String dtype, String shortHash,
                       boolean isDefault, boolean resident, boolean pinned, boolean loading, long memoryBytes,
                       String breaker, Long retryAfterMillis, String lastError, Double lastLoadMillis, int activeJobs,
                       String description, dev.sdserve.model.ModelDefaults recommended) {
    }

    /** Result of re-listing the models directory. */
    record RescanResult(boolean changed, int models, int loras) {
    }

    List<ModelStatus> models();

    ModelStatus get(String name);

    /**
     * Loads a model (or joins its load in progress) and waits up to {@code waitMillis} for it (0: returns at once,
     * with {@code loading} true). Throws the load's error if it fails within the wait.
     */
    ModelStatus load(String name, long waitMillis);

    /** Unloads a resident model (and unpins it); refuses while admitted jobs use it. */
    ModelStatus unload(String name);

    /** Pins a model (never evicted; a load starts if it is not resident) or unpins it. */
    ModelStatus pin(String name, boolean pinned);

    /** Re-lists the models directory (files added or removed while running). */
    RescanResult rescan();
}
