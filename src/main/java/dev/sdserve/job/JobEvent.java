package dev.sdserve.job;

import java.util.List;
import java.util.Map;

/** What a watcher of a job sees, in order: Queued → Started → Step×n → Completed, or Ended with an error. */
public sealed interface JobEvent {
    String jobId();

    /** Waiting; position 0 means next. */
    record Queued(String jobId, int position, long estimatedStartMillis) implements JobEvent {
    }

    record Started(String jobId, long startedAtMillis) implements JobEvent {
    }

    /**
     * A denoising step finished. {@code preview} is an encoded image (null when previews are off for this step).
     * For requests with several images, {@code index} counts steps of the slowest image.
     */
    record Step(String jobId, int index, int total, byte[] preview, String previewFormat, double stepMillis)
            implements JobEvent {
    }

    /** The result: one PNG per image, with the seed each used, and stage timings in milliseconds. */
    record Completed(String jobId, List<byte[]> images, List<Long> seeds, ResolvedRequest request,
                     Map<String, Double> timingsMillis) implements JobEvent {
    }

    /** The job ended without a result (cancelled, failed, deadline exceeded, rejected). */
    record Ended(String jobId, JobState state, ServeException error) implements JobEvent {
    }
}
