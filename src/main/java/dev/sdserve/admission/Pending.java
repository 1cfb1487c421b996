package dev.sdserve.admission;

import dev.sdserve.engine.LatentShape;

/**
 * An admitted (or candidate) request as completion prediction sees it: which stages are still ahead, how much work
 * they hold, and its deadline. The scheduler's per-request state implements it; admission never sees more.
 */
public interface Pending {
    String model();

    LatentShape shape();

    /** Requests of one bucket (model and latent shape) share denoise batches. */
    String bucket();

    /** Text encoding is still ahead. */
    boolean toEncode();

    /** img2img / inpainting: encoding the init image with the VAE is still ahead. */
    default boolean toEncodeImage() {
        return false;
    }

    /** Images the VAE encoder takes for this request (the init image per image, plus the masked image when used). */
    default int imageEncodeItems() {
        return 0;
    }

    /** Denoising is still ahead (text encoding may be too). */
    boolean toDenoise();

    /** Ended (completed, cancelled or failed): nothing is ahead. */
    boolean finished();

    /** Model evaluations (denoise steps) still to run. */
    int remainingEvals();

    /** UNet samples per denoise step (images, doubled under classifier-free guidance). */
    int latentPerStep();

    /**
     * UNet samples of the {@code s}-th model evaluation from now (1: the next one): {@link #latentPerStep} unless
     * the request drops guidance part-way (guidance truncation), when the later evaluations count one per image.
     */
    default int latentsAtEval(int s) {
        return latentPerStep();
    }

    /** Whether the {@code s}-th model evaluation from now is a DeepCache shallow step (cheaper: see {@link dev.sdserve.engine.DeepCache}). */
    default boolean shallowAtEval(int s) {
        return false;
    }

    /** UNet samples of the remaining evaluations that are DeepCache shallow steps. */
    default int remainingShallowLatents() {
        int n = 0;
        for (int s = 1; s <= remainingEvals(); s++) {
            n += shallowAtEval(s) ? latentsAtEval(s) : 0;
        }
        return n;
    }

    /**
     * The token merging ratio this work's UNet samples run at (0: none, also for a model without self-attention at
     * full latent resolution); what a sample then costs is the cost model's
     * {@link dev.sdserve.engine.CostModel#tokenMergingFactor}. Works with different ratios are in different buckets
     * ({@link #bucket}): they run in different UNet calls.
     */
    default double tokenMerging() {
        return 0;
    }

    /** UNet samples over every remaining evaluation (what the denoising still costs). */
    default int remainingLatents() {
        int n = 0;
        for (int s = 1; s <= remainingEvals(); s++) {
            n += latentsAtEval(s);
        }
        return n;
    }

    /** Prompts the text encoding holds. */
    int encodeItems();

    /** Images the decoding holds. */
    int images();

    /** VAE decodes of {@link #images()} latents still ahead for full previews ({@code full_every}); 0 by default. */
    default int previewDecodes() {
        return 0;
    }

    /**
     * Decoder previews of {@link #images()} latents still ahead (the VAE decoder's trunk and a fitted readout per
     * preview, {@link dev.sdserve.engine.Stage#PREVIEW}); 0 by default.
     */
    default int decoderPreviews() {
        return 0;
    }

    String tenant();

    /** The tenant's fairness weight. */
    double weight();

    boolean bestEffort();

    /** Deadline on the scheduler clock's nanosecond scale. */
    long deadlineNanos();
}
