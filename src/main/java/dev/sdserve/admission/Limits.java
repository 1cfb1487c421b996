package dev.sdserve.admission;

/**
 * The request limits the server enforces, as constants: {@link AdmissionConfig}'s defaults, the OpenAPI schema's
 * minimum / maximum / maxLength / maxItems ({@code api/rest/OpenApiLimits}) and the README's table all read them
 * here, so the documented limits cannot drift from the enforced ones.
 */
public final class Limits {
    private Limits() {
    }

    /** Longest prompt / negative prompt, in characters (LoRA tags included). */
    public static final int MAX_PROMPT_CHARS = 4000;
    /** Image edges in pixels: within MIN..MAX and a multiple of {@link #SIZE_MULTIPLE} (or the model's VAE factor if larger). */
    public static final int MIN_IMAGE_SIZE = 64;
    public static final int MAX_IMAGE_SIZE = 2048;
    public static final int SIZE_MULTIPLE = 8;
    public static final int MAX_STEPS = 150;
    /** Classifier-free guidance scale: finite within 0..MAX (≤ 1 turns guidance off). */
    public static final double MAX_GUIDANCE = 30;
    public static final int MAX_CLIP_SKIP = 12;
    /** Images per request (one job; A1111's batch_size). */
    public static final int MAX_IMAGES = 8;
    /** A1111's n_iter: jobs per txt2img call, run one after the other. */
    public static final int MAX_N_ITER = 64;
    /** LoRAs per request, listed and from {@code <lora:…>} tags together. */
    public static final int MAX_LORAS = 8;
    /** LoRA weights: finite within ±this. */
    public static final double MAX_LORA_WEIGHT = 10;
    /** Longest model or LoRA name, in characters. */
    public static final int MAX_NAME_CHARS = 256;
    /** Seeds: 0..MAX_SEED (32 bits, as A1111); seed + images − 1 must stay within it too. */
    public static final long MAX_SEED = 0xFFFF_FFFFL;
    /** Previews: every_steps 0 (off) .. MAX_STEPS; longest preview edge MIN..MAX pixels. */
    public static final int MIN_PREVIEW_EDGE = 16;
    public static final int MAX_PREVIEW_EDGE = 1024;
    public static final int MAX_TENANT_CHARS = 128;
    /** Priorities: within ±this. */
    public static final int MAX_PRIORITY = 1000;
    /** DeepCache's largest interval (a full UNet step every this many evaluations). */
    public static final int MAX_DEEP_CACHE_INTERVAL = 20;
    /** Relative deadlines: at most this many milliseconds from now (7 days). */
    public static final long MAX_DEADLINE_MILLIS = 7L * 24 * 3600 * 1000;
    /** img2img / inpainting: encoded bytes of the init image and of the mask, each (PNG, JPEG or WebP). */
    public static final int MAX_INIT_IMAGE_BYTES = 32 * 1024 * 1024;
    /** img2img / inpainting: pixels of a decoded init image or mask (read from the header before decoding). */
    public static final long MAX_INIT_IMAGE_PIXELS = 4096L * 4096;
    /** Mask blur (A1111's mask_blur, Gaussian σ in pixels): within 0..this. */
    public static final int MAX_MASK_BLUR = 64;
}
