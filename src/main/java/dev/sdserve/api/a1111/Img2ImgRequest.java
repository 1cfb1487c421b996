package dev.sdserve.api.a1111;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.sdserve.image.ImageDecoding;

/**
 * A1111's {@code StableDiffusionImg2ImgProcessingAPI}: the txt2img fields ({@link Txt2ImgRequest}) plus the init
 * image, mask and their options, with A1111's type errors (422). What sd-serve cannot do is refused by field:
 * more than one init image, {@code inpaint_full_res} ("Only masked"), different x / y mask blurs,
 * {@code resize_mode} 3 (latent upscale), {@code initial_noise_multiplier} ≠ 1, {@code latent_mask}.
 *
 * @param base             the txt2img part (prompt, sampler, steps, size, seeds, batch, …)
 * @param initImage        the decoded base64 of {@code init_images[0]}
 * @param mask             the decoded base64 of {@code mask}, or null (img2img)
 * @param strength         {@code denoising_strength}, or null (A1111's default 0.75)
 * @param resizeMode       {@code resize_mode}, or null (0)
 * @param maskBlur         {@code mask_blur} (or {@code mask_blur_x} = {@code mask_blur_y}), or null (4)
 * @param inpaintingFill   {@code inpainting_fill}, or null (0, fill)
 * @param invertMask       {@code inpainting_mask_invert} (0/1), or null
 * @param inpaintFullRes   {@code inpaint_full_res}: absent is taken as false ("Whole picture")
 * @param includeInitImages echo {@code init_images} and {@code mask} in the response's {@code parameters}
 */
public record Img2ImgRequest(Txt2ImgRequest base, byte[] initImage, byte[] mask, Double strength, Integer resizeMode,
                             Integer maskBlur, Integer inpaintingFill, Boolean invertMask, Boolean inpaintFullRes,
                             boolean includeInitImages) {

    public static Img2ImgRequest from(JsonNode body) {
        Txt2ImgRequest base = Txt2ImgRequest.from(body);
        ObjectNode o = base.raw();
        JsonNode imgs = o.get("init_images");
        if (imgs == null || imgs.isNull()) {
            throw A1111Exception.at("field required: img2img needs init_images (a list with one base64 image)",
                    "value_error.missing", "init_images");
        }
        if (!imgs.isArray()) {
            throw A1111Exception.at("value is not a valid list", "type_error.list", "init_images");
        }
        if (imgs.isEmpty()) {
            throw A1111Exception.at("init_images is empty: give one base64 PNG, JPEG or WebP image", "value_error", "init_images");
        }
        if (imgs.size() > 1) {
            throw A1111Exception.at("sd-serve takes one init image per request, got " + imgs.size(), "value_error", "init_images");
        }
        byte[] init = image(imgs.get(0), "init_images", 0);
        byte[] mask = null;
        JsonNode m = o.get("mask");
        if (m != null && !m.isNull() && !(m.isTextual() && m.asText().isBlank())) {
            mask = image(m, "mask");
        }
        Double strength = number(o, "denoising_strength");
        Integer resize = integer(o, "resize_mode");
        Integer blur = integer(o, "mask_blur");
        Integer bx = integer(o, "mask_blur_x");
        Integer by = integer(o, "mask_blur_y");
        if (blur == null && (bx != null || by != null)) {
            int x = bx == null ? 4 : bx, y = by == null ? 4 : by;
            if (x != y) {
                throw A1111Exception.at("different mask_blur_x (" + x + ") and mask_blur_y (" + y + ") are not supported by"
                        + " sd-serve; give mask_blur", "value_error", "mask_blur_y");
            }
            blur = x;
        }
        Integer fill = integer(o, "inpainting_fill");
        Integer invert = integer(o, "inpainting_mask_invert");
        if (invert != null && invert != 0 && invert != 1) {
            throw A1111Exception.at("inpainting_mask_invert must be 0 (inpaint masked) or 1 (inpaint not masked)",
                    "value_error", "inpainting_mask_invert");
        }
        Boolean fullRes = bool(o, "inpaint_full_res");
        if (Boolean.TRUE.equals(fullRes)) {
            throw A1111Exception.at("inpaint_full_res (\"Only masked\") is not supported by sd-serve: it inpaints the whole"
                    + " picture; send inpaint_full_res: false", "value_error", "inpaint_full_res");
        }
        JsonNode noise = o.get("initial_noise_multiplier");
        if (noise != null && noise.isNumber() && noise.asDouble() != 1.0) {
            throw A1111Exception.at("initial_noise_multiplier other than 1 is not supported by sd-serve", "value_error",
                    "initial_noise_multiplier");
        }
        JsonNode latentMask = o.get("latent_mask");
        if (latentMask != null && !latentMask.isNull() && !(latentMask.isTextual() && latentMask.asText().isBlank())) {
            throw A1111Exception.at("latent_mask is not supported by sd-serve", "value_error", "latent_mask");
        }
        Boolean include = bool(o, "include_init_images");
        return new Img2ImgRequest(base, init, mask, strength, resize, blur, fill, invert == null ? null : invert == 1,
                fullRes, Boolean.TRUE.equals(include));
    }

    private static byte[] image(JsonNode n, Object... loc) {
        if (!n.isTextual()) {
            throw A1111Exception.at("str type expected", "type_error.str", loc);
        }
        try {
            return ImageDecoding.base64(n.asText());
        } catch (ImageDecoding.BadImageException e) {
            throw A1111Exception.at(e.getMessage(), "value_error", loc);
        }
    }

    private static Integer integer(ObjectNode o, String field) {
        JsonNode n = o.get(field);
        if (n == null || n.isNull()) {
            return null;
        }
        if (n.isBoolean()) {
            return n.asBoolean() ? 1 : 0;
        }
        if (n.isIntegralNumber() && n.canConvertToInt()) {
            return n.asInt();
        }
        if (n.isNumber() && n.asDouble() == Math.rint(n.asDouble()) && Math.abs(n.asDouble()) < Integer.MAX_VALUE) {
            return (int) n.asDouble();
        }
        throw A1111Exception.at("value is not a valid integer", "type_error.integer", field);
    }

    private static Double number(ObjectNode o, String field) {
        JsonNode n = o.get(field);
        if (n == null || n.isNull()) {
            return null;
        }
        if (n.isNumber()) {
            return n.asDouble();
        }
        if (n.isTextual()) {
            try {
                return Double.parseDouble(n.asText().strip());
            } catch (NumberFormatException ignored) {
                // fall through
            }
        }
        throw A1111Exception.at("value is not a valid float", "type_error.float", field);
    }

    private static Boolean bool(ObjectNode o, String field) {
        JsonNode n = o.get(field);
        if (n == null || n.isNull()) {
            return null;
        }
        if (n.isBoolean()) {
            return n.asBoolean();
        }
        if (n.isIntegralNumber() && (n.asInt() == 0 || n.asInt() == 1)) {
            return n.asInt() == 1;
        }
        throw A1111Exception.at("value could not be parsed to a boolean", "type_error.bool", field);
    }

    /** The request's fields as sent, without the images unless {@code include_init_images} (A1111's echo). */
    public ObjectNode echo() {
        ObjectNode p = base.raw().deepCopy();
        if (!includeInitImages) {
            p.putNull("init_images");
            p.putNull("mask");
        }
        return p;
    }
}
