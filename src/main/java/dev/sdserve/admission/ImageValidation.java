package dev.sdserve.admission;

import dev.sdserve.engine.ModelInfo;
import dev.sdserve.job.ImageInput;
import dev.sdserve.job.ImageOptions;
import dev.sdserve.job.ImagePreparer;
import dev.sdserve.job.PreparedImage;
import dev.sdserve.job.ResolvedImage;
import dev.sdserve.job.ServeException;
import dev.sdserve.sampler.Sampler;

/**
 * The image part of {@link Validation}: an img2img or inpainting request's init image and mask are decoded (size
 * checked from the header first), its options checked, and the pixels prepared (resize mode, mask blur / invert /
 * fill) before a job exists, so a bad image is a 400 naming its field and the scheduler gets pixels ready for the
 * VAE. Fields as the transports name them: {@code init_image}, {@code mask_image}, {@code strength},
 * {@code resize_mode}, {@code mask_blur}, {@code inpainting_fill}, {@code inpaint_full_res}.
 */
final class ImageValidation {
    /** A1111's default denoising strength. */
    static final double DEFAULT_STRENGTH = 0.75;

    private final AdmissionConfig config;
    private final ImagePreparer preparer;

    ImageValidation(AdmissionConfig config, ImagePreparer preparer) {
        this.config = config;
        this.preparer = preparer;
    }

    /** The decoded init image and mask (null mask for img2img). */
    record Decoded(ImagePreparer.Decoded init, ImagePreparer.Decoded mask) {
        /** The request's width when it gives none: the image's, rounded down to the size multiple. */
        int width(int multiple) {
            return init.width() - init.width() % multiple;
        }

        int height(int multiple) {
            return init.height() - init.height() % multiple;
        }
    }

    /**
     * Decodes the request's images; null for txt2img. Refuses image options without an init image, images over
     * the byte or pixel limit, bytes that are no PNG/JPEG/WebP, and {@code inpaint_full_res}.
     */
    Decoded decode(ImageInput in, ModelInfo info) {
        if (in == null || !in.present()) {
            if (in != null && in.hasMask()) {
                throw ServeException.invalid("init_image", "mask_image was given without an init image: inpainting needs"
                        + " init_image too");
            }
            if (in != null && in.strength() != null) {
                throw ServeException.invalid("strength", "strength applies to img2img and inpainting only: give"
                        + " init_image, or leave strength out");
            }
            if (info.inpainting()) {
                throw ServeException.invalid("mask_image", "model '" + info.name() + "' is an inpainting model (its UNet"
                        + " takes " + info.unetInChannels() + " input channels): give init_image and mask_image");
            }
            return null;
        }
        if (preparer == null) {
            throw ServeException.invalid("init_image", "this server does not take init images");
        }
        if (Boolean.TRUE.equals(in.inpaintFullRes())) {
            throw ServeException.invalid("inpaint_full_res", "inpaint_full_res (A1111's \"Only masked\") is not"
                    + " supported: sd-serve inpaints the whole picture; leave it false");
        }
        checkBytes("init_image", in.initImage());
        ImagePreparer.Decoded init = preparer.decode(in.initImage(), "init_image", config.maxInitImagePixels);
        ImagePreparer.Decoded mask = null;
        if (in.hasMask()) {
            checkBytes("mask_image", in.maskImage());
            mask = preparer.decode(in.maskImage(), "mask_image", config.maxInitImagePixels);
            if (mask.width() != init.width() || mask.height() != init.height()) {
                throw ServeException.invalid("mask_image", "the mask is " + mask.width() + "x" + mask.height()
                        + ", the init image " + init.width() + "x" + init.height() + ": they must be the same size");
            }
        } else if (info.inpainting()) {
            throw ServeException.invalid("mask_image", "model '" + info.name() + "' is an inpainting model (its UNet"
                    + " takes " + info.unetInChannels() + " input channels): give mask_image");
        }
        return new Decoded(init, mask);
    }

    /**
     * The edge a request without {@code width} / {@code height} gets from its init image, refused naming
     * {@code init_image} when it falls outside the size range (a given edge is checked by {@link Validation}).
     */
    int edgeFromImage(Integer given, Decoded d, int multiple, boolean width) {
        int v = width ? d.width(multiple) : d.height(multiple);
        if ((given == null || given == 0) && (v < config.minImageSize || v > config.maxImageSize)) {
            throw ServeException.invalid("init_image", "the init image is " + d.init().width() + "x" + d.init().height()
                    + ": the size taken from it (" + (width ? "width " : "height ") + v + ") must be within "
                    + config.minImageSize + ".." + config.maxImageSize + "; give width and height to resize it");
        }
        return v;
    }

    /** Checks the options and prepares the pixels at the request's size; null for txt2img. */
    ResolvedImage resolve(ImageInput in, Decoded d, ModelInfo info, Sampler sampler, int steps, int width, int height) {
        if (d == null) {
            return null;
        }
        double strength = in.strength() == null ? DEFAULT_STRENGTH : in.strength();
        if (!Double.isFinite(strength) || strength <= 0 || strength > 1) {
            throw ServeException.invalid("strength", "must be within (0, 1] (the denoising strength: 1 repaints"
                    + " everything), got " + strength);
        }
        try {
            sampler.strengthCut(steps, strength);
        } catch (IllegalArgumentException e) {
            throw ServeException.invalid("strength", "strength " + strength + " keeps no step of " + steps + " ("
                    + e.getMessage() + "); raise strength or steps");
        }
        int resize = in.resizeMode() == null ? ImageOptions.DEFAULTS.resizeMode() : in.resizeMode();
        if (resize < 0 || resize > 2) {
            throw ServeException.invalid("resize_mode", "must be 0 (just resize), 1 (crop and resize) or 2 (resize"
                    + " and fill), got " + resize);
        }
        int blur = in.maskBlur() == null ? ImageOptions.DEFAULTS.maskBlur() : in.maskBlur();
        if (blur < 0 || blur > config.maxMaskBlur) {
            throw ServeException.invalid("mask_blur", "must be within 0.." + config.maxMaskBlur + " pixels, got " + blur);
        }
        int fill = in.inpaintingFill() == null ? ImageOptions.DEFAULTS.inpaintingFill() : in.inpaintingFill();
        if (fill < 0 || fill > 3) {
            throw ServeException.invalid("inpainting_fill", "must be 0 (fill), 1 (original), 2 (latent noise) or 3"
                    + " (latent nothing), got " + fill);
        }
        ImageOptions options = new ImageOptions(resize, blur, Boolean.TRUE.equals(in.invertMask()), fill,
                ImageOptions.DEFAULTS.background());
        PreparedImage prepared;
        try {
            prepared = preparer.prepare(d.init(), d.mask(), width, height, info.vaeScale(), options);
        } catch (IllegalArgumentException e) {
            throw ServeException.invalid("init_image", "cannot prepare the init image: " + e.getMessage());
        }
        return new ResolvedImage(strength, options, !Boolean.FALSE.equals(in.overlay()), prepared,
                d.init().width(), d.init().height());
    }

    private void checkBytes(String field, byte[] bytes) {
        if (bytes.length > config.maxInitImageBytes) {
            throw ServeException.invalid(field, "at most " + config.maxInitImageBytes + " bytes, got " + bytes.length);
        }
    }
}
