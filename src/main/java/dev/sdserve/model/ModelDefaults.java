package dev.sdserve.model;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonProperty;
import com.fasterxml.jackson.databind.JsonNode;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Iterator;
import java.util.Set;

/**
 * A model's recommended generation settings and its one-line description, as civitai model pages give them: they
 * apply when a request leaves the field unset (explicit values always win). Read from the {@code "defaults"} and
 * {@code "description"} members of the JSON beside a checkpoint (the same {@code <stem>.json} that may carry its
 * architecture, {@link ModelConfigs#configFileFor}), or built in ({@link DemoModel}):
 *
 * <pre>{@code
 * {
 *   "description": "what the model draws, in one line",
 *   "defaults": {"sampler": "dpmpp_2m", "steps": 20, "guidance_scale": 5.0, "width": 128, "height": 128,
 *                "clip_skip": 1}
 * }
 * }</pre>
 *
 * Every member is optional; {@code sampler} is an sd-serve id or an A1111 display name. Unknown members of
 * {@code defaults} are refused (a misspelt "guidance" would otherwise be silently ignored).
 *
 * @param sampler       sampler id or A1111 name, or null
 * @param steps         denoising steps, or null
 * @param guidanceScale classifier-free guidance scale, or null
 * @param width         image width in pixels, or null
 * @param height        image height in pixels, or null
 * @param clipSkip      CLIP skip (1 = last layer), or null
 */
@JsonInclude(JsonInclude.Include.NON_NULL)
public record ModelDefaults(String sampler, Integer steps, @JsonProperty("guidance_scale") Double guidanceScale,
                            Integer width, Integer height, @JsonProperty("clip_skip") Integer clipSkip) {
    /** No recommendations: the server's defaults apply. */
    public static final ModelDefaults NONE = new ModelDefaults(null, null, null, null, null, null);

    private static final Set<String> FIELDS = Set.of("sampler", "steps", "guidance_scale", "width", "height", "clip_skip");

    /** What a model's sidecar says about it: a description and recommended defaults (both may be empty). */
    public record Card(String description, ModelDefaults defaults) {
        public static final Card NONE = new Card("", ModelDefaults.NONE);
    }

    @com.fasterxml.jackson.annotation.JsonIgnore
    public boolean isEmpty() {
        return equals(NONE);
    }

    /**
     * The {@code defaults} member of a sidecar JSON (null or missing: {@link #NONE}).
     *
     * @throws IllegalArgumentException naming the member ({@code defaults.steps}, …) when a value has the wrong type
     *                                  or range
     */
    public static ModelDefaults fromJson(JsonNode d) {
        if (d == null || d.isMissingNode() || d.isNull()) {
            return NONE;
        }
        if (!d.isObject()) {
            throw new IllegalArgumentException("defaults: must be an object");
        }
        for (Iterator<String> it = d.fieldNames(); it.hasNext(); ) {
            String f = it.next();
            if (!FIELDS.contains(f)) {
                throw new IllegalArgumentException("defaults." + f + ": unknown member (known: " + FIELDS + ")");
            }
        }
        String sampler = null;
        JsonNode s = d.get("sampler");
        if (s != null && !s.isNull()) {
            if (!s.isTextual() || s.asText().isBlank()) {
                throw new IllegalArgumentException("defaults.sampler: must be a sampler id or name");
            }
            sampler = s.asText().trim();
        }
        Double guidance = null;
        JsonNode g = d.get("guidance_scale");
        if (g != null && !g.isNull()) {
            if (!g.isNumber() || !Double.isFinite(g.asDouble()) || g.asDouble() < 0) {
                throw new IllegalArgumentException("defaults.guidance_scale: must be a number ≥ 0, got " + g);
            }
            guidance = g.asDouble();
        }
        return new ModelDefaults(sampler, positive(d, "steps"), guidance, positive(d, "width"), positive(d, "height"),
                positive(d, "clip_skip"));
    }

    private static Integer positive(JsonNode d, String field) {
        JsonNode v = d.get(field);
        if (v == null || v.isNull()) {
            return null;
        }
        if (!v.isIntegralNumber() || v.asLong() < 1 || v.asLong() > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("defaults." + field + ": must be a positive integer, got " + v);
        }
        return v.asInt();
    }

    /** Description and defaults from a sidecar JSON object (null: {@link Card#NONE}). */
    public static Card cardFromJson(JsonNode root) {
        if (root == null || root.isMissingNode() || root.isNull()) {
            return Card.NONE;
        }
        JsonNode desc = root.path("description");
        if (!desc.isMissingNode() && !desc.isNull() && !desc.isTextual()) {
            throw new IllegalArgumentException("description: must be a string");
        }
        return new Card(desc.isTextual() ? desc.asText().strip() : "", fromJson(root.get("defaults")));
    }

    /**
     * The card of a checkpoint: from the JSON beside it, or {@link Card#NONE} when there is none.
     *
     * @throws IOException              when the JSON cannot be read or parsed
     * @throws IllegalArgumentException naming the member when a value is wrong
     */
    public static Card cardOf(Path checkpoint) throws IOException {
        var file = ModelConfigs.configFileFor(checkpoint);
        if (file.isEmpty()) {
            return Card.NONE;
        }
        try {
            return cardFromJson(ModelConfigs.readJson(file.get()));
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(file.get().getFileName() + ": " + e.getMessage(), e);
        }
    }
}
