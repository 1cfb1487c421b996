package dev.sdserve.api.rest;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.databind.PropertyNamingStrategies;
import com.fasterxml.jackson.databind.annotation.JsonNaming;

import java.util.List;
import java.util.Map;

/** JSON bodies of the REST API (snake_case, mirroring the gRPC messages). */
public final class RestDtos {
    private RestDtos() {
    }

    @JsonNaming(PropertyNamingStrategies.SnakeCaseStrategy.class)
    public record LoraJson(String name, Double weight) {
    }

    @JsonNaming(PropertyNamingStrategies.SnakeCaseStrategy.class)
    public record PreviewJson(Boolean off, Integer everySteps, String format, Integer maxEdge, String content,
                              Integer fullEvery, String projection) {
    }

    /** Another image's preview of a step: {@code data} is base64 (PNG, JPEG, or little-endian float16 for "latent"). */
    @JsonNaming(PropertyNamingStrategies.SnakeCaseStrategy.class)
    public record StepPreviewJson(int image, String data, String format, String content, boolean full) {
    }

    /** How to render a latent preview (format "latent"): rgb[r] = clamp(bias[r] + Σ_c latent[c]·weights[c][r], 0, 1). */
    @JsonNaming(PropertyNamingStrategies.SnakeCaseStrategy.class)
    public record LatentJson(List<Integer> shape, String dtype, String byteOrder, float[][] weights, float[] bias,
                             String projection) {
    }

    @JsonNaming(PropertyNamingStrategies.SnakeCaseStrategy.class)
    public record GenerationJson(String prompt, String negativePrompt, String model, List<LoraJson> loras,
                                 Integer width, Integer height, Integer steps, String sampler, Double guidanceScale,
                                 Long seed, Integer clipSkip, Integer images, PreviewJson preview, String sloClass,
                                 Long deadlineMs, Integer priority, Boolean bestEffort, String tenant,
                                 Boolean padCondUncond,
                                 String initImage, Double strength, String maskImage, Integer resizeMode,
                                 Integer maskBlur, Integer inpaintingFill, Boolean inpaintingMaskInvert,
                                 Boolean inpaintFullRes, Double guidanceCutoff, Integer deepCacheInterval,
                                 Double tokenMergingRatio) {
    }

    @JsonNaming(PropertyNamingStrategies.SnakeCaseStrategy.class)
    @JsonInclude(JsonInclude.Include.NON_NULL)
    public record ParametersJson(String prompt, String negativePrompt, String model, List<LoraJson> loras, int width,
                                 int height, int steps, String sampler, double guidanceScale, long seed, int clipSkip,
                                 int images, String sloClass, long deadlineMs, Double strength) {
    }

    @JsonNaming(PropertyNamingStrategies.SnakeCaseStrategy.class)
    @JsonInclude(JsonInclude.Include.NON_NULL)
    public record JobJson(String id, String state, Integer step, Integer totalSteps, String error,
                          ParametersJson parameters, List<Long> seeds, Map<String, Double> timingsMs,
                          Map<String, String> links) {
    }

    @JsonNaming(PropertyNamingStrategies.SnakeCaseStrategy.class)
    @JsonInclude(JsonInclude.Include.NON_NULL)
    public record ErrorJson(String code, String message, String field, Long retryAfterMs) {
    }

    public record ErrorEnvelope(ErrorJson error) {
    }

    @JsonNaming(PropertyNamingStrategies.SnakeCaseStrategy.class)
    @JsonInclude(JsonInclude.Include.NON_NULL)
    public record EventJson(String type, String jobId, Integer position, Long estimatedStartMs, Long startedAtMs,
                            Integer index, Integer total, String preview, String previewFormat, Double stepMs,
                            List<Long> seeds, Map<String, Double> timingsMs, String state, String error,
                            String imageUrl, Boolean previewDropped, Integer previewImage, String previewContent,
                            Boolean previewFull, List<StepPreviewJson> morePreviews, LatentJson latent) {
    }
}
