package dev.sdserve.api.rest;

import dev.sdserve.admission.Limits;
import dev.sdserve.sampler.Samplers;
import io.quarkus.smallrye.openapi.OpenApiFilter;
import org.eclipse.microprofile.openapi.OASFilter;
import org.eclipse.microprofile.openapi.models.OpenAPI;
import org.eclipse.microprofile.openapi.models.media.Schema;

import java.math.BigDecimal;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * Writes the request limits into the OpenAPI document (minimum, maximum, multipleOf, maxLength, maxItems, enums),
 * read from {@link Limits} and the sampler registry, so that a client generated from {@code /q/openapi} checks a
 * request the way admission will. Runs at build time: the limits are constants.
 */
@OpenApiFilter(OpenApiFilter.RunStage.BUILD)
public class OpenApiLimits implements OASFilter {
    /** Every sampler id and A1111 display name admission accepts (it matches case-insensitively). */
    static List<Object> samplerNames() {
        List<Object> names = new ArrayList<>();
        for (Samplers.Info s : Samplers.list()) {
            names.add(s.id());
            if (!s.displayName().equals(s.id())) {
                names.add(s.displayName());
            }
        }
        return names;
    }

    @Override
    public void filterOpenAPI(OpenAPI api) {
        if (api.getComponents() == null || api.getComponents().getSchemas() == null) {
            return;
        }
        Map<String, Schema> schemas = api.getComponents().getSchemas();
        Schema g = schemas.get("GenerationJson");
        if (g != null) {
            g.description("A generation request. Every field may be left out (the server's default is used), except"
                    + " that a useful request has a prompt. <lora:name:weight> tags in the prompt count as LoRAs.");
            text(g, "prompt", Limits.MAX_PROMPT_CHARS, "Prompt, <lora:name:weight> tags included");
            text(g, "negative_prompt", Limits.MAX_PROMPT_CHARS, null);
            text(g, "model", Limits.MAX_NAME_CHARS, "A model name from GET /v1/models; empty or absent: the server default");
            prop(g, "loras").maxItems(Limits.MAX_LORAS)
                    .description("At most " + Limits.MAX_LORAS + ", together with the prompt's <lora:…> tags");
            for (String edge : List.of("width", "height")) {
                range(g, edge, Limits.MIN_IMAGE_SIZE, Limits.MAX_IMAGE_SIZE).multipleOf(BigDecimal.valueOf(Limits.SIZE_MULTIPLE))
                        .description("Pixels; absent or 0: the model's default size");
            }
            range(g, "steps", 1, Limits.MAX_STEPS);
            prop(g, "sampler").enumeration(samplerNames()).description("A sampler id or A1111 name (GET /v1/samplers)");
            range(g, "guidance_scale", 0, Limits.MAX_GUIDANCE);
            range(g, "seed", 0, Limits.MAX_SEED).description("Absent: random (the seed used is reported); seed + images - 1"
                    + " must not exceed " + Limits.MAX_SEED);
            range(g, "clip_skip", 1, Limits.MAX_CLIP_SKIP);
            range(g, "images", 1, Limits.MAX_IMAGES);
            prop(g, "slo_class").enumeration(List.of("interactive", "standard", "batch"));
            range(g, "deadline_ms", 1, Limits.MAX_DEADLINE_MILLIS).description("Relative deadline in milliseconds from now");
            range(g, "priority", -Limits.MAX_PRIORITY, Limits.MAX_PRIORITY);
            prop(g, "guidance_cutoff").exclusiveMinimum(java.math.BigDecimal.ZERO).maximum(java.math.BigDecimal.ONE)
                    .description("Guidance truncation: the fraction of the model evaluations, from the start, that "
                            + "keep classifier-free guidance (the rest run the prompt's half only); absent: the "
                            + "server's default (sdserve.guidance-cutoff, 1 = off)");
            range(g, "deep_cache_interval", 0, Limits.MAX_DEEP_CACHE_INTERVAL).description("DeepCache: a full UNet "
                    + "step every this many model evaluations, the shallow path on the cached deep feature between "
                    + "(0 or 1 = off); absent: the server's default (sdserve.deep-cache-interval)");
            prop(g, "token_merging_ratio").minimum(java.math.BigDecimal.ZERO)
                    .maximum(java.math.BigDecimal.valueOf(dev.sdserve.engine.TokenMerging.MAX_RATIO))
                    .description("Token merging (ToMe for SD): the share of the tokens merged before the self-attention "
                            + "at full latent resolution, in steps of 0.05; absent: the server's default "
                            + "(sdserve.token-merging-ratio, 0 = off)");
            text(g, "tenant", Limits.MAX_TENANT_CHARS, "Replaced by the API key's tenant when auth is on");
            imageFields(g);
        }
        Schema lora = schemas.get("LoraJson");
        if (lora != null) {
            text(lora, "name", Limits.MAX_NAME_CHARS, "A LoRA name from GET /v1/loras");
            lora.required(List.of("name"));
            range(lora, "weight", -Limits.MAX_LORA_WEIGHT, Limits.MAX_LORA_WEIGHT).description("Absent: 1");
        }
        Schema preview = schemas.get("PreviewJson");
        if (preview != null) {
            range(preview, "every_steps", 0, Limits.MAX_STEPS).description("0: no previews");
            range(preview, "max_edge", Limits.MIN_PREVIEW_EDGE, Limits.MAX_PREVIEW_EDGE);
            prop(preview, "format").enumeration(List.of("png", "jpeg", "jpg"));
        }
        Schema a1111 = schemas.get("Txt2ImgJson");
        if (a1111 != null) {
            text(a1111, "prompt", Limits.MAX_PROMPT_CHARS, "Prompt, <lora:name:weight> tags included");
            text(a1111, "negative_prompt", Limits.MAX_PROMPT_CHARS, null);
            range(a1111, "steps", 1, Limits.MAX_STEPS);
            range(a1111, "cfg_scale", 0, Limits.MAX_GUIDANCE);
            for (String edge : List.of("width", "height")) {
                range(a1111, edge, Limits.MIN_IMAGE_SIZE, Limits.MAX_IMAGE_SIZE).multipleOf(BigDecimal.valueOf(Limits.SIZE_MULTIPLE));
            }
            range(a1111, "seed", -1, Limits.MAX_SEED).description("-1: random");
            range(a1111, "batch_size", 1, Limits.MAX_IMAGES);
            range(a1111, "n_iter", 1, Limits.MAX_N_ITER);
            prop(a1111, "sampler_name").enumeration(samplerNames());
            prop(a1111, "sampler_index").enumeration(samplerNames());
        }
    }

    /** img2img / inpainting fields of the generation request. */
    private static void imageFields(Schema g) {
        prop(g, "init_image").description("img2img / inpainting: base64 PNG, JPEG or WebP (a data URL works too), at most "
                + Limits.MAX_INIT_IMAGE_BYTES + " bytes and " + Limits.MAX_INIT_IMAGE_PIXELS + " pixels; width and"
                + " height absent or 0: its size rounded down to a multiple of " + Limits.SIZE_MULTIPLE);
        prop(g, "mask_image").description("Inpainting: base64 image of the init image's size; white (or opaque) ="
                + " repaint");
        range(g, "strength", 0.0, 1.0).exclusiveMinimum(BigDecimal.ZERO)
                .description("Denoising strength in (0, 1]; absent: 0.75. Runs int(steps * strength) steps");
        range(g, "resize_mode", 0, 2).description("0 just resize, 1 crop and resize, 2 resize and fill");
        range(g, "mask_blur", 0, Limits.MAX_MASK_BLUR).description("Mask blur in pixels; absent: 4");
        range(g, "inpainting_fill", 0, 3).description("Masked content: 0 fill, 1 original, 2 latent noise, 3 latent nothing");
        prop(g, "inpaint_full_res").description("A1111's \"Only masked\": not supported, true is refused");
    }

    private static Schema prop(Schema s, String name) {
        Schema p = s.getProperties() == null ? null : s.getProperties().get(name);
        if (p == null) {
            throw new IllegalStateException("OpenAPI schema has no property '" + name + "': OpenApiLimits is out of date");
        }
        return p;
    }

    private static Schema range(Schema s, String name, double min, double max) {
        return prop(s, name).minimum(BigDecimal.valueOf(min).stripTrailingZeros()).maximum(BigDecimal.valueOf(max).stripTrailingZeros());
    }

    private static Schema range(Schema s, String name, long min, long max) {
        return prop(s, name).minimum(BigDecimal.valueOf(min)).maximum(BigDecimal.valueOf(max));
    }

    private static void text(Schema s, String name, int maxLength, String description) {
        Schema p = prop(s, name).maxLength(maxLength);
        if (description != null) {
            p.description(description);
        }
    }
}
