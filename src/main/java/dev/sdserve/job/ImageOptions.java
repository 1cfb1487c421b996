package dev.sdserve.job;

/**
 * How an init image and mask are prepared (AUTOMATIC1111's img2img options).
 *
 * @param resizeMode     0 just resize, 1 crop and resize, 2 resize and fill
 * @param maskBlur       Gaussian σ in pixels (A1111's default 4; 0 = none)
 * @param invertMask     repaint what the mask leaves out
 * @param inpaintingFill 0 fill, 1 original, 2 latent noise, 3 latent nothing
 * @param background     colour (0xRRGGBB) transparent init pixels are flattened onto (A1111: white)
 */
public record ImageOptions(int resizeMode, int maskBlur, boolean invertMask, int inpaintingFill, int background) {
    public static final int JUST_RESIZE = 0;
    public static final int CROP_AND_RESIZE = 1;
    public static final int RESIZE_AND_FILL = 2;
    public static final int FILL = 0;
    public static final int ORIGINAL = 1;
    public static final int LATENT_NOISE = 2;
    public static final int LATENT_NOTHING = 3;
    /** A1111's defaults: just resize, mask blur 4, fill, not inverted, white background. */
    public static final ImageOptions DEFAULTS = new ImageOptions(JUST_RESIZE, 4, false, FILL, 0xffffff);

    public ImageOptions {
        resizeModeName(resizeMode);
        if (maskBlur < 0) {
            throw new IllegalArgumentException("mask_blur must be ≥ 0, got " + maskBlur);
        }
        fillName(inpaintingFill);
    }

    /** The name A1111 shows for a resize mode. */
    public static String resizeModeName(int mode) {
        return switch (mode) {
            case JUST_RESIZE -> "Just resize";
            case CROP_AND_RESIZE -> "Crop and resize";
            case RESIZE_AND_FILL -> "Resize and fill";
            default -> throw new IllegalArgumentException("resize_mode must be 0 (just resize), 1 (crop and resize) or"
                    + " 2 (resize and fill), got " + mode);
        };
    }

    /** The name A1111 shows for an inpainting fill. */
    public static String fillName(int fill) {
        return switch (fill) {
            case FILL -> "fill";
            case ORIGINAL -> "original";
            case LATENT_NOISE -> "latent noise";
            case LATENT_NOTHING -> "latent nothing";
            default -> throw new IllegalArgumentException("inpainting_fill must be 0 (fill), 1 (original), 2 (latent"
                    + " noise) or 3 (latent nothing), got " + fill);
        };
    }
}
