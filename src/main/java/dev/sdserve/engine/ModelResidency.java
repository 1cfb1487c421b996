package dev.sdserve.engine;

import dev.sdserve.job.ServeException;

import java.util.concurrent.CompletableFuture;
import java.util.function.BiConsumer;

/**
 * Which models are in memory, and getting them there, as the scheduler and the model service see it: whether a
 * model is resident, an asynchronous load that callers share, a fast refusal while a model's loads are suspended,
 * and the predicted load time admission counts against a deadline. {@link ModelLoader} implements it over an
 * {@link Engine} (loads off the caller's thread, timeout, per-model circuit breaker).
 */
public interface ModelResidency {
    /** What the residency side knows about a model. */
    record Status(String model, boolean resident, boolean loading, String breaker, Long retryAfterMillis,
                  String lastError, Double lastLoadMillis, int loads, int failures) {
    }

    /** Whether the model's weights are loaded (cheap, non-blocking). */
    boolean isResident(String model);

    /**
     * Starts loading the model unless it is resident or already loading (then joins that load); the future
     * completes when it is resident or fails with a {@link ServeException}.
     */
    CompletableFuture<Void> load(String model);

    /** A fast refusal (UNAVAILABLE with a retry hint) while the model's loads are suspended, or null. */
    ServeException refusal(String model);

    /** Whether a load of the model is in progress. */
    boolean loading(String model);

    /** Predicted time to load a model that is not resident, ms. */
    double predictLoadMillis(String model);

    Status status(String model);

    /**
     * The one listener told of every finished load: (model, null) after a success, (model, error) after a failure;
     * called on the loader's thread before the load stops counting as in progress.
     */
    void listener(BiConsumer<String, ServeException> listener);
}
