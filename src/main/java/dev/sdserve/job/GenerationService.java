package dev.sdserve.job;

import java.util.Collection;
import java.util.Optional;

/**
 * What the transports (gRPC, REST, CLI, A1111 routes) call. Implemented by the admission + scheduler rooms.
 * Every method throws {@link ServeException} for a public failure.
 */
public interface GenerationService {
    /**
     * Validates and admits a request, or refuses it (INVALID_ARGUMENT, NOT_FOUND, RESOURCE_EXHAUSTED with a retry
     * hint, UNAVAILABLE while draining).
     *
     * @param detached true for the asynchronous Submit form (no watcher owns the job)
     */
    Job submit(GenerationRequest request, boolean detached);

    Optional<Job> find(String jobId);

    /** Cancels a job; returns false when it had already ended. Throws NOT_FOUND for an unknown id. */
    boolean cancel(String jobId);

    Collection<Job> jobs();

    /**
     * Stops a job's denoising where it stands and completes it with what it has: the model's denoised estimate x̂0
     * of its latest step, decoded, as AUTOMATIC1111's interrupt and skip do. A job that has not done a step yet is
     * cancelled (there is nothing to decode); one already decoding completes as usual. Returns false when it had
     * already ended. Throws NOT_FOUND for an unknown id. A service that cannot stop early cancels.
     */
    default boolean finishEarly(String jobId) {
        return cancel(jobId);
    }
}
