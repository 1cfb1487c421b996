package dev.sdserve.engine;

import java.util.List;

/**
 * The boundary between the scheduler and the tensors. Every call works on a batch, so the scheduler can merge
 * requests that sit at different steps, with different samplers and guidance scales, into one engine call.
 *
 * <p>All arrays are float32, one per sample, in NCHW order without the batch dimension. Implementations must be
 * safe to call from one scheduler thread; they need not be re-entrant.
 */
public interface Engine extends AutoCloseable {

    /**
     * What the model expects: latent channels, the VAE downscale factor, text-encoder width and scaling factor.
     * Throws {@link dev.sdserve.job.ServeException} with code NOT_FOUND for a model the engine does not know.
     */
    ModelInfo describe(String model);

    /**
     * Text-encodes a batch of prompts (tokenisation included). Returns one conditioning per item, each
     * {@code tokens × dim} floats row-major.
     */
    float[][] encode(String model, List<EncodeItem> items);

    /**
     * Text-encodes a batch of prompts into their whole conditioning: the context and, for SDXL, the pooled embedding
     * the UNet's added conditioning takes ({@link DenoiseItem#added}). The default wraps {@link #encode} (no pooled
     * embedding: SD 1.x/2.x engines).
     */
    default List<Conditioning> encodeConditioning(String model, List<EncodeItem> items) {
        return java.util.Arrays.stream(encode(model, items)).map(Conditioning::of).toList();
    }

    /**
     * One UNet evaluation for every item of the batch. Items share the model and latent shape but may differ in
     * timestep, conditioning, guidance scale and LoRA set. With an unconditional embedding and guidance ≠ 1 the
     * engine doubles the sample (classifier-free guidance) and returns the guided prediction
     * {@code eps_u + g·(eps_c − eps_u)}; without one it returns the conditional prediction.
     */
    float[][] denoise(DenoiseBatch batch);

    /**
     * As {@link #denoise(DenoiseBatch)} with DeepCache ({@link DeepCache}): per item a step (null: plain) that
     * either runs the whole UNet and refills its slot, or runs the shallow path from the slot. The default, for
     * engines without DeepCache, computes every step whole (what interval 1 computes) and caches nothing.
     */
    default float[][] denoise(DenoiseBatch batch, List<DeepCache.Step> steps) {
        return denoise(batch);
    }

    /**
     * Decodes latents (already divided by nothing: pass the sampler's latents as they are; the engine applies the
     * model's scaling factor) into RGB images in [0, 1], each {@code height × width × 3} floats, row-major HWC.
     */
    float[][] decode(String model, LatentShape shape, List<float[]> latents);

    /**
     * The features of the VAE decoder's trunk at latent resolution (its input convolutions and middle block, whose
     * attention sees the whole latent), {@code F × h × w} floats NCHW per latent: what a decoder preview's readout is
     * fitted on. Null when the engine has no such trunk (then previews stay affine projections).
     */
    default float[][] decoderFeatures(String model, LatentShape shape, List<float[]> latents) {
        return null;
    }

    /**
     * Decoder previews: each latent through the decoder's trunk ({@link #decoderFeatures}) and a fitted per-cell
     * readout (a {@link dev.sdserve.engine.projection.LatentProjection} over the F features), as RGB in [0, 1] per
     * latent cell, {@code h × w × 3} floats HWC. Costs the trunk (a small part of a decode), not the VAE's upsampling.
     */
    default float[][] decoderPreview(String model, LatentShape shape, List<float[]> latents,
                                     dev.sdserve.engine.projection.LatentProjection readout) {
        throw new UnsupportedOperationException("this engine has no decoder previews");
    }

    /** Encodes RGB images (HWC floats in [0, 1]) into scaled latent means. */
    default float[][] encodeImage(String model, LatentShape shape, List<float[]> images) {
        throw new UnsupportedOperationException("this engine does not encode images");
    }

    /**
     * Encodes RGB images (HWC floats in [0, 1], at the latent shape's pixel size) into latents as img2img and
     * inpainting use them: a sample of the VAE's posterior, (mean + std·noise)·scaling factor (diffusers'
     * {@code latent_dist.sample()}), with {@code noise} the request's standard-normal draw of the latent's size (a
     * null entry gives the mean).
     */
    default float[][] encodeImage(String model, LatentShape shape, List<float[]> images, List<float[]> noise) {
        throw new UnsupportedOperationException("this engine does not encode images");
    }

    // ------------------------------------------------------------------ residency (defaults: always resident)

    /**
     * Whether the model's weights are loaded, so a call for it starts computing at once. The scheduler plans work
     * only for resident models and loads the others off its thread ({@link #ensureLoaded}). Cheap and non-blocking.
     */
    default boolean isResident(String model) {
        return true;
    }

    /**
     * Loads the model's weights if they are not resident (blocking; called on a loader thread, never the scheduler's).
     * Throws {@link dev.sdserve.job.ServeException} NOT_FOUND for an unknown model, FAILED_PRECONDITION naming the
     * file and the reason when the file cannot be loaded. Concurrent calls for one model load it once.
     */
    default void ensureLoaded(String model) {
    }

    /** Drops a resident model's weights; false if it was not resident. A pinned model is unpinned first. */
    default boolean unload(String model) {
        return false;
    }

    /** Pins (never evicted) or unpins a model; pinning does not load it. */
    default void pin(String model, boolean pinned) {
    }

    default boolean isPinned(String model) {
        return false;
    }

    /** Bytes held by a resident model's weights (0 when not resident or unknown). */
    default long residentBytes(String model) {
        return 0;
    }

    /** Predicted time to load a model that is not resident, ms (before any load was measured). */
    default double predictLoadMillis(String model) {
        return 0;
    }

    /** Counters the scheduler and tests read: calls and samples per stage. */
    EngineStats stats();

    @Override
    default void close() {
    }
}
