package dev.sdserve.engine;

/**
 * Predicted duration of one engine call, in milliseconds.
 *
 * <p>{@code batch} counts what the engine batches: prompts for {@link Stage#ENCODE}, UNet samples for
 * {@link Stage#DENOISE} (a guided image counts twice), latents for {@link Stage#DECODE}, images for
 * {@link Stage#IMAGE_ENCODE} (an inpainting request's masked image counts as one more), latents for
 * {@link Stage#PREVIEW}. {@code shape} is the
 * latent shape (ignored for encoding; may be null there).
 */
@FunctionalInterface
public interface CostModel {
    double predictMillis(String model, Stage stage, LatentShape shape, int batch);

    /**
     * Predicted duration of a DeepCache shallow denoise call of {@code batch} UNet samples ({@link DeepCache}): by
     * default the measured ratio {@link DeepCache#SHALLOW_COST_PRIOR} of a full step's; a cost model that measures
     * shallow calls answers with what it learned.
     */
    default double predictShallowMillis(String model, LatentShape shape, int batch) {
        return DeepCache.SHALLOW_COST_PRIOR * predictMillis(model, Stage.DENOISE, shape, batch);
    }

    /**
     * What a UNet sample with token merging at {@code ratio} costs against one without ({@link TokenMerging}): by
     * default the factor measured on the CPU engine at this latent's token count; a cost model whose latents stand for
     * other sizes (the simulator's GPU table, timed at 512²) answers for the size it was measured at.
     */
    default double tokenMergingFactor(String model, LatentShape shape, double ratio) {
        return TokenMerging.costFactor(ratio, shape);
    }

    /** Every call costs nothing (the overhead benchmark). */
    CostModel ZERO = (m, s, sh, b) -> 0.0;

    /**
     * A rough prior for an unmeasured bucket: a launch-bound floor plus a term proportional to latent cells, so
     * larger images and batches are predicted to cost more. Replaced by measurements as soon as calls are made.
     */
    static CostModel proportional(double floorMillis, double millisPerMegaCell) {
        return (m, s, sh, b) -> {
            double cells = sh == null ? 4096 : sh.size();
            double perItem = switch (s) {
                case ENCODE -> 0.05;
                case DENOISE -> 1.0;
                case DECODE -> 2.0;
                case IMAGE_ENCODE -> 1.0; // the VAE encoder is about half its decoder
                case PREVIEW -> 0.1; // the decoder's trunk at latent resolution: a small part of a decode
            };
            return floorMillis + b * perItem * cells * millisPerMegaCell / 1e6;
        };
    }
}
