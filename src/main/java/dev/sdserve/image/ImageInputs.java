package dev.sdserve.image;

/**
 * The pixel side of an img2img or inpainting request, as AUTOMATIC1111 prepares it ({@code processing.py}
 * {@code StableDiffusionProcessingImg2Img.init}) with diffusers' mask conventions where the two differ:
 * <ol>
 *   <li>the init image is flattened onto white (alpha) and resized to the target size with the resize mode;</li>
 *   <li>the mask (alpha &gt; 128 of a transparent image, else its grey value; 255 = repaint) is inverted if asked,
 *       blurred by {@code mask_blur}, and resized with the same mode;</li>
 *   <li>the image the VAE encodes has the region to repaint filled from its surroundings unless
 *       {@code inpainting_fill} is 1 ("original");</li>
 *   <li>the mask binarised at 0.5 gives diffusers' masked image and, nearest-neighbour on the latent grid, the
 *       latent mask (blend and inpainting-UNet channel);</li>
 *   <li>after decoding, the original is pasted back outside the doubled mask ({@link #finish}).</li>
 * </ol>
 * The latent side ({@code inpainting_fill} 2 "latent noise" and 3 "latent nothing") is the caller's: it needs the
 * latent noise and the encoded latent.
 */
public final class ImageInputs {
    public static final int FILL = 0;
    public static final int ORIGINAL = 1;
    public static final int LATENT_NOISE = 2;
    public static final int LATENT_NOTHING = 3;

    /**
     * @param resizeMode     0 just resize, 1 crop and resize, 2 resize and fill
     * @param maskBlur       Gaussian σ in pixels (A1111's default 4; 0 = none)
     * @param invertMask     repaint what the mask leaves out
     * @param inpaintingFill 0 fill, 1 original, 2 latent noise, 3 latent nothing
     * @param background     colour (0xRRGGBB) transparent init pixels are flattened onto (A1111: white)
     */
    public record Options(int resizeMode, int maskBlur, boolean invertMask, int inpaintingFill, int background) {
        public static final Options DEFAULTS = new Options(0, 4, false, FILL, 0xffffff);

        public Options {
            Resize.modeName(resizeMode);
            if (maskBlur < 0) {
                throw new IllegalArgumentException("mask_blur must be ≥ 0, got " + maskBlur);
            }
            if (inpaintingFill < 0 || inpaintingFill > 3) {
                throw new IllegalArgumentException("inpainting_fill must be 0 (fill), 1 (original), 2 (latent noise) or"
                        + " 3 (latent nothing), got " + inpaintingFill);
            }
        }

        public static String fillName(int fill) {
            return switch (fill) {
                case FILL -> "fill";
                case ORIGINAL -> "original";
                case LATENT_NOISE -> "latent noise";
                case LATENT_NOTHING -> "latent nothing";
                default -> throw new IllegalArgumentException("inpainting_fill " + fill);
            };
        }
    }

    /**
     * @param width       target width (pixels)
     * @param height      target height
     * @param pixels      what the VAE encodes: HWC RGB in [0, 1] (resized, filled)
     * @param original    the resized init image, for the overlay
     * @param mask        null (img2img), or the binarised full-size mask, 1 = repaint, row-major
     * @param overlayMask null, or A1111's mask for the overlay (the resized mask doubled)
     * @param maskLatent  null, or the mask on the latent grid (one value per latent cell)
     * @param maskedPixels null, or diffusers' masked image (repaint region 0.5), HWC in [0, 1]
     */
    public record Prepared(int width, int height, float[] pixels, Image8 original, float[] mask, Image8 overlayMask,
                           float[] maskLatent, float[] maskedPixels) {
        public boolean inpainting() {
            return mask != null;
        }
    }

    private ImageInputs() {
    }

    /** The size a request gets when it gives none: the image's, rounded down to a multiple of {@code multiple}. */
    public static int defaultSize(int imageSize, int multiple) {
        return imageSize - imageSize % multiple;
    }

    /**
     * Prepares the pixels of a request.
     *
     * @param init     the decoded init image
     * @param mask     the decoded mask image (the init image's size), or null for img2img
     * @param width    target width, a multiple of {@code vaeScale}
     * @param height   target height, a multiple of {@code vaeScale}
     * @param vaeScale pixels per latent cell
     */
    public static Prepared prepare(Image8 init, Image8 mask, int width, int height, int vaeScale, Options o) {
        if (width % vaeScale != 0 || height % vaeScale != 0) {
            throw new IllegalArgumentException("size " + width + "x" + height + " is not a multiple of " + vaeScale);
        }
        Image8 image = Resize.apply(o.resizeMode(), init.toRgb(o.background()), width, height);
        if (mask == null) {
            return new Prepared(width, height, image.toFloats(), image, null, null, null, null);
        }
        if (mask.width() != init.width() || mask.height() != init.height()) {
            throw new IllegalArgumentException("mask is " + mask.width() + "x" + mask.height() + ", the init image "
                    + init.width() + "x" + init.height() + ": they must be the same size");
        }
        Image8 m = Masks.fromImage(mask);
        if (o.invertMask()) {
            m = Masks.invert(m);
        }
        m = Masks.blur(m, o.maskBlur());
        m = Resize.apply(o.resizeMode(), m, width, height);
        Image8 encoded = o.inpaintingFill() == ORIGINAL ? image : PilCompose.fill(image, m);
        float[] pixels = encoded.toFloats();
        float[] binary = Masks.binarize(Masks.toUnit(m));
        float[] latent = Masks.toLatentGrid(binary, width, height, width / vaeScale, height / vaeScale);
        return new Prepared(width, height, pixels, image, binary, PilCompose.overlayMask(m), latent,
                Masks.maskedImage(pixels, binary));
    }

    /**
     * The picture the client gets from the decoded one (HWC RGB in [0, 1]): for inpainting the original pasted back
     * outside the mask (A1111's overlay; its 8-bit result in [0, 1]), for img2img the decoded picture itself.
     */
    public static float[] finish(Prepared p, float[] decoded) {
        if (!p.inpainting()) {
            return decoded;
        }
        Image8 gen = Image8.fromFloats(decoded, p.width(), p.height(), 3);
        return PilCompose.overlay(gen, p.original(), p.overlayMask()).toFloats();
    }
}
