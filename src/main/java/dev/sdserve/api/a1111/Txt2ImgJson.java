package dev.sdserve.api.a1111;

import com.fasterxml.jackson.annotation.JsonProperty;
import org.eclipse.microprofile.openapi.annotations.media.Schema;

import java.util.List;
import java.util.Map;

/**
 * The OpenAPI description of {@code POST /sdapi/v1/txt2img}'s body: the A1111 fields sd-serve honours, with their
 * limits (added by {@code OpenApiLimits}). Documentation only: the route reads the body itself
 * ({@link Txt2ImgRequest}) to answer with A1111's own 422 shapes. Other A1111 fields are accepted and ignored, except
 * those that would change the picture in ways sd-serve cannot (they must stay off).
 */
@Schema(name = "Txt2ImgJson", description = "AUTOMATIC1111's txt2img request (the fields sd-serve honours)")
public record Txt2ImgJson(
        String prompt,
        @JsonProperty("negative_prompt") String negativePrompt,
        Long seed,
        @JsonProperty("sampler_name") String samplerName,
        @JsonProperty("sampler_index") @Schema(description = "Older name of sampler_name") String samplerIndex,
        @Schema(description = "A1111 >= 1.9: Automatic, Uniform, Karras, Exponential (combined with sampler_name)") String scheduler,
        Integer steps,
        @JsonProperty("cfg_scale") Double cfgScale,
        Integer width,
        Integer height,
        @JsonProperty("batch_size") @Schema(description = "Images per job") Integer batchSize,
        @JsonProperty("n_iter") @Schema(description = "Jobs, run one after the other") Integer nIter,
        @JsonProperty("override_settings") @Schema(description = "sd_model_checkpoint (a model name, file name or"
                + " title with hash), CLIP_stop_at_last_layers (1..12), pad_cond_uncond (boolean) and token_merging_ratio (0..0.9) are honoured")
        Map<String, Object> overrideSettings,
        @JsonProperty("send_images") Boolean sendImages,
        @JsonProperty("enable_hr") @Schema(description = "Must be false: hires fix is not supported") Boolean enableHr,
        @JsonProperty("restore_faces") @Schema(description = "Must be false") Boolean restoreFaces,
        @Schema(description = "Must be false") Boolean tiling,
        @JsonProperty("subseed_strength") @Schema(description = "Must be 0: variation seeds are not supported") Double subseedStrength,
        @JsonProperty("script_name") @Schema(description = "Must be empty: scripts are not supported") String scriptName,
        @JsonProperty("alwayson_scripts") @Schema(description = "Must be empty") Map<String, Object> alwaysonScripts,
        @Schema(description = "Accepted and ignored") List<String> styles) {
}
