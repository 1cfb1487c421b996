package dev.sdserve.image;

import dev.sdserve.engine.InpaintingInputs;
import dev.sdserve.job.ImageOptions;
import dev.sdserve.job.ImagePreparer;
import dev.sdserve.job.PreparedImage;
import dev.sdserve.job.ServeException;

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
public final class ImageInputs implements ImagePreparer {
    /** The preparer admission uses. */
    public static final ImageInputs PREPARER = new ImageInputs();

    private ImageInputs() {
    }

    /** The size a request gets when it gives none: the image's, rounded down to a multiple of {@code multiple}. */
    public static int defaultSize(int imageSize, int multiple) {
        return imageSize - imageSize % multiple;
    }

    @Override
    public Decoded decode(byte[] bytes, String field, long maxPixels) {
        try {
            return ImageDecoding.decode(bytes, maxPixels);
        } catch (ImageDecoding.BadImageException e) {
            throw ServeException.invalid(field, field + " " + e.getMessage());
        }
    }

    @Override
    public PreparedImage prepare(Decoded init, Decoded mask, int width, int height, int vaeScale, ImageOptions o) {
        return prepare((Image8) init, (Image8) mask, width, height, vaeScale, o);
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
    public static PreparedImage prepare(Image8 init, Image8 mask, int width, int height, int vaeScale, ImageOptions o) {
        if (width % vaeScale != 0 || height % vaeScale != 0) {
            throw new IllegalArgumentException("size " + width + "x" + height + " is not a multiple of " + vaeScale);
        }
        Image8 image = Resize.apply(o.resizeMode(), init.toRgb(o.background()), width, height);
        if (mask == null) {
            return new PreparedImage(width, height, image.toFloats(), image.data(), null, null, null, null);
        }
        if (mask.width() != init.width() || mask.height() != init.height()) {
            throw ServeException.invalid("mask_image", "the mask is " + mask.width() + "x" + mask.height()
                    + ", the init image " + init.width() + "x" + init.height() + ": they must be the same size");
        }
        Image8 m = Masks.fromImage(mask);
        if (o.invertMask()) {
            m = Masks.invert(m);
        }
        m = Masks.blur(m, o.maskBlur());
        m = Resize.apply(o.resizeMode(), m, width, height);
        Image8 encoded = o.inpaintingFill() == ImageOptions.ORIGINAL ? image : PilCompose.fill(image, m);
        float[] pixels = encoded.toFloats();
        float[] binary = InpaintingInputs.binarize(Masks.toUnit(m));
        float[] latent = InpaintingInputs.latentMask(binary, width, height, width / vaeScale, height / vaeScale);
        return new PreparedImage(width, height, pixels, image.data(), binary, PilCompose.overlayMask(m).data(), latent,
                InpaintingInputs.maskedImage(pixels, binary));
    }

    /**
     * The picture the client gets from the decoded one (HWC RGB in [0, 1]): for inpainting with the overlay, the
     * original pasted back outside the mask (A1111's overlay; its 8-bit result in [0, 1]); else the decoded picture.
     */
    public static float[] finish(PreparedImage p, boolean overlay, float[] decoded) {
        if (!p.inpainting() || !overlay) {
            return decoded;
        }
        Image8 gen = Image8.fromFloats(decoded, p.width(), p.height(), 3);
        Image8 original = new Image8(p.width(), p.height(), 3, p.originalRgb());
        Image8 ovl = new Image8(p.width(), p.height(), 1, p.overlayMask());
        return PilCompose.overlay(gen, original, ovl).toFloats();
    }
}
