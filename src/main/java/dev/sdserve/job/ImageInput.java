package dev.sdserve.job;

/**
 * The image part of a request as a transport received it (img2img and inpainting), before validation: the init
 * image and mask as encoded bytes (PNG, JPEG or WebP), and the options, null when not given. Validation decodes
 * and checks it ({@code admission}), producing a {@link ResolvedImage}.
 *
 * @param initImage      encoded init image; null or empty for none (txt2img)
 * @param maskImage      encoded mask (white / opaque = repaint); null or empty for img2img
 * @param strength       denoising strength in (0, 1]; null: the default (0.75)
 * @param resizeMode     0 just resize, 1 crop and resize, 2 resize and fill; null: 0
 * @param maskBlur       mask blur σ in pixels; null: 4
 * @param inpaintingFill 0 fill, 1 original, 2 latent noise, 3 latent nothing; null: 0
 * @param invertMask     repaint what the mask leaves out; null: false
 * @param inpaintFullRes A1111's "only masked" inpainting, which sd-serve does not do: true is refused
 * @param overlay        paste the original back outside the mask after decoding; null: true
 */
public record ImageInput(byte[] initImage, byte[] maskImage, Double strength, Integer resizeMode, Integer maskBlur,
                         Integer inpaintingFill, Boolean invertMask, Boolean inpaintFullRes, Boolean overlay) {

    /** Whether the request has an init image (img2img or inpainting). */
    public boolean present() {
        return initImage != null && initImage.length > 0;
    }

    /** Whether the request has a mask (inpainting). */
    public boolean hasMask() {
        return maskImage != null && maskImage.length > 0;
    }
}
