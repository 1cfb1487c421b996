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
     * A denoising step finished. Every watcher gets every step, 1 … total, in order; only the preview payloads may be
     * left out when a watcher lags ({@code previewDropped}). For requests with several images, {@code index} counts
     * steps of the slowest image and {@code previews} holds one preview per image that has one at this step.
     *
     * @param previews       the previews of this step (empty when none was due or all were dropped)
     * @param previewDropped a preview was due at this step but was not delivered to this watcher: it lagged, and a
     *                       newer preview replaced it (or the service skipped it under overload)
     */
    record Step(String jobId, int index, int total, List<Preview> previews, double stepMillis, boolean previewDropped)
            implements JobEvent {
        public Step {
            previews = previews == null ? List.of() : List.copyOf(previews);
        }

        /** A step with at most one preview (of image 0). */
        public Step(String jobId, int index, int total, byte[] preview, String previewFormat, double stepMillis) {
            this(jobId, index, total, preview == null ? List.of() : List.of(Preview.image(0, preview, previewFormat)),
                    stepMillis, false);
        }

        /** The first preview's bytes, or null when the step has none. */
        public byte[] preview() {
            return previews.isEmpty() ? null : previews.get(0).data();
        }

        /** The first preview's format, or null. */
        public String previewFormat() {
            return previews.isEmpty() ? null : previews.get(0).format();
        }

        /** The same step without its previews, marked dropped if it had any. */
        public Step withoutPreviews() {
            return previews.isEmpty() ? this : new Step(jobId, index, total, List.of(), stepMillis, true);
        }
    }

    /**
     * One image's preview at a step.
     *
     * @param image   which image of the request (0-based)
     * @param data    PNG or JPEG bytes, or for "latent" the latent as little-endian float16, channels × height × width
     * @param format  "png", "jpeg" or "latent"
     * @param content "denoised" (x̂0) or "noisy" (x_t)
     * @param full    a VAE decode of the latent, not the projection
     * @param latent  shape and the model's projection (format "latent" only, else null)
     */
    record Preview(int image, byte[] data, String format, String content, boolean full, LatentInfo latent) {
        public static Preview image(int image, byte[] data, String format) {
            return new Preview(image, data, format, PreviewOptions.DENOISED, false, null);
        }
    }

    /**
     * What a client needs to render a latent preview: its shape, and the model's affine map to RGB in [0, 1]
     * ({@code rgb[r] = bias[r] + Σ_c latent[c]·weights[c][r]}, then clamp).
     */
    record LatentInfo(int channels, int height, int width, float[][] weights, float[] bias, String projectionSource) {
    }

    /** The result: one PNG per image, with the seed each used, and stage timings in milliseconds. */
    record Completed(String jobId, List<byte[]> images, List<Long> seeds, ResolvedRequest request,
                     Map<String, Double> timingsMillis) implements JobEvent {
    }

    /** The job ended without a result (cancelled, failed, deadline exceeded, rejected). */
    record Ended(String jobId, JobState state, ServeException error) implements JobEvent {
    }
}
