package dev.sdserve.job;

/**
 * How step previews are sent.
 *
 * @param everySteps send a preview every N denoising steps (0 = off)
 * @param format     "png" or "jpeg" (an image through the model's fitted latent → RGB projection, or a VAE decode
 *                   for full previews), or "latent" (the latent itself as float16, with its shape and the model's
 *                   projection, for clients that render it)
 * @param maxEdge    longest edge of the preview image in pixels
 * @param content    what the preview shows: {@link #DENOISED} (the model's estimate x̂0 of the clean image at that
 *                   step: the composition from the first steps; the default) or {@link #NOISY} (the current noisy
 *                   sample x_t, as AUTOMATIC1111's "live preview content: noisy")
 * @param fullEvery  every N steps the preview is a VAE decode of x̂0 instead of the projection (0 = never)
 * @param projection how an image preview maps the latent to colours: {@link #AUTO} (the default: the decoder readout
 *                   for a model whose fit prefers it, else the affine map), {@link #AFFINE} (the per-cell affine map:
 *                   free, on the CPU) or {@link #DECODER} (the VAE decoder's trunk at latent resolution and a fitted
 *                   readout: the model's colours from the first steps, one small engine call per preview)
 */
public record PreviewOptions(int everySteps, String format, int maxEdge, String content, int fullEvery,
                             String projection) {
    public static final String AUTO = "auto";
    public static final String AFFINE = "affine";
    public static final String DECODER = "decoder";
    /** Every projection choice. */
    public static final java.util.List<String> PROJECTIONS = java.util.List.of(AUTO, AFFINE, DECODER);
    public static final String DENOISED = "denoised";
    public static final String NOISY = "noisy";
    public static final String LATENT = "latent";
    public static final PreviewOptions OFF = new PreviewOptions(0, "png", 0);

    public PreviewOptions {
        content = content == null || content.isBlank() ? DENOISED : content;
        projection = projection == null || projection.isBlank() ? AUTO : projection;
    }

    /** With the default projection choice ({@link #AUTO}). */
    public PreviewOptions(int everySteps, String format, int maxEdge, String content, int fullEvery) {
        this(everySteps, format, maxEdge, content, fullEvery, AUTO);
    }

    /** Denoised-estimate previews through the projection. */
    public PreviewOptions(int everySteps, String format, int maxEdge) {
        this(everySteps, format, maxEdge, DENOISED, 0);
    }

    public boolean enabled() {
        return everySteps > 0;
    }

    /** Whether previews are raw latents. */
    public boolean latent() {
        return LATENT.equals(format);
    }

    /** Whether the preview at 1-based step {@code index} is a full (VAE) preview. */
    public boolean fullAt(int index) {
        return fullEvery > 0 && index % fullEvery == 0;
    }
}
