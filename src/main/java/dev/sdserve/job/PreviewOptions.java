package dev.sdserve.job;

/**
 * How step previews are sent.
 *
 * @param everySteps send a preview every N denoising steps (0 = off)
 * @param format     "png" or "jpeg"
 * @param maxEdge    longest edge of the preview image in pixels
 */
public record PreviewOptions(int everySteps, String format, int maxEdge) {
    public static final PreviewOptions OFF = new PreviewOptions(0, "png", 0);

    public boolean enabled() {
        return everySteps > 0;
    }
}
