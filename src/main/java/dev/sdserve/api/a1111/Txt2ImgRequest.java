package dev.sdserve.api.a1111;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.util.Iterator;
import java.util.Map;

/**
 * The subset of A1111's {@code StableDiffusionTxt2ImgProcessingAPI} that sd-serve honours, read from the JSON body
 * with A1111's type errors (422). Fields that would change the picture in ways sd-serve cannot do (hires fix,
 * variation seeds, face restoration, tiling, scripts) are refused rather than silently ignored; purely
 * cosmetic ones (save_images, do_not_save_grid, styles, …) are accepted and ignored.
 *
 * @param raw the body as sent, echoed back in {@code parameters}
 */
public record Txt2ImgRequest(String prompt, String negativePrompt, Long seed, String samplerName, String scheduler,
                             Integer steps, Double cfgScale, Integer width, Integer height, int batchSize, int nIter,
                             String checkpoint, Integer clipSkip, boolean sendImages, ObjectNode raw) {

    /** Most iterations per request (each iteration is one job of batch_size images). */
    public static final int MAX_N_ITER = 64;

    public static Txt2ImgRequest from(JsonNode body) {
        if (body == null || body.isNull() || body.isMissingNode()) {
            throw A1111Exception.at("field required", "value_error.missing");
        }
        if (!body.isObject()) {
            throw A1111Exception.at("value is not a valid dict", "type_error.dict");
        }
        ObjectNode o = (ObjectNode) body;
        String prompt = str(o, "prompt");
        String negative = str(o, "negative_prompt");
        Long seed = integer(o, "seed");
        String sampler = str(o, "sampler_name");
        if (sampler == null || sampler.isBlank()) {
            sampler = str(o, "sampler_index");
        }
        String scheduler = str(o, "scheduler");
        Integer steps = toInt(o, "steps");
        Double cfg = number(o, "cfg_scale");
        Integer width = toInt(o, "width");
        Integer height = toInt(o, "height");
        Integer batch = toInt(o, "batch_size");
        Integer nIter = toInt(o, "n_iter");
        if (batch != null && batch < 1) {
            throw A1111Exception.at("ensure this value is greater than or equal to 1", "value_error.number.not_ge", "batch_size");
        }
        if (nIter != null && nIter < 1) {
            throw A1111Exception.at("ensure this value is greater than or equal to 1", "value_error.number.not_ge", "n_iter");
        }
        if (nIter != null && nIter > MAX_N_ITER) {
            throw A1111Exception.at("ensure this value is less than or equal to " + MAX_N_ITER, "value_error.number.not_le", "n_iter");
        }
        String checkpoint = null;
        Integer clipSkip = null;
        JsonNode ov = o.get("override_settings");
        if (ov != null && !ov.isNull()) {
            if (!ov.isObject()) {
                throw A1111Exception.at("value is not a valid dict", "type_error.dict", "override_settings");
            }
            JsonNode ck = ov.get("sd_model_checkpoint");
            if (ck != null && !ck.isNull()) {
                if (!ck.isTextual()) {
                    throw A1111Exception.at("str type expected", "type_error.str", "override_settings", "sd_model_checkpoint");
                }
                checkpoint = ck.asText().isBlank() ? null : ck.asText();
            }
            JsonNode cs = ov.get("CLIP_stop_at_last_layers");
            if (cs != null && !cs.isNull()) {
                if (!cs.canConvertToInt() || !cs.isIntegralNumber()) {
                    throw A1111Exception.at("value is not a valid integer", "type_error.integer", "override_settings", "CLIP_stop_at_last_layers");
                }
                clipSkip = cs.asInt();
            }
        }
        padCondUncond(o);
        deepCacheInterval(o);
        tokenMergingRatio(o);
        refuseTrue(o, "enable_hr", "hires fix is not supported by sd-serve");
        refuseTrue(o, "restore_faces", "face restoration is not supported by sd-serve");
        refuseTrue(o, "tiling", "tiling is not supported by sd-serve");
        JsonNode ss = o.get("subseed_strength");
        if (ss != null && ss.isNumber() && ss.asDouble() != 0) {
            throw A1111Exception.at("variation seeds (subseed_strength > 0) are not supported by sd-serve", "value_error", "subseed_strength");
        }
        String script = str(o, "script_name");
        if (script != null && !script.isBlank()) {
            throw A1111Exception.at("scripts are not supported by sd-serve (got '" + script + "')", "value_error", "script_name");
        }
        JsonNode always = o.get("alwayson_scripts");
        if (always != null && always.isObject() && always.size() > 0) {
            Iterator<Map.Entry<String, JsonNode>> it = always.fields();
            throw A1111Exception.at("scripts are not supported by sd-serve (got '" + it.next().getKey() + "')", "value_error", "alwayson_scripts");
        }
        JsonNode send = o.get("send_images");
        boolean sendImages = send == null || send.isNull() || send.asBoolean(true);
        return new Txt2ImgRequest(prompt == null ? "" : prompt, negative == null ? "" : negative,
                seed == null || seed == -1 ? null : seed, blankToNull(sampler), blankToNull(scheduler), steps, cfg,
                width, height, batch == null ? 1 : batch, nIter == null ? 1 : nIter, checkpoint, clipSkip, sendImages, o);
    }

    /**
     * A1111's {@code pad_cond_uncond} option from a request's {@code override_settings} (null when not given): pad the
     * shorter of the prompt's and the negative prompt's contexts with empty-prompt chunks.
     */
    static Boolean padCondUncond(ObjectNode body) {
        JsonNode p = overrideSetting(body, "pad_cond_uncond");
        if (p == null) {
            return null;
        }
        if (!p.isBoolean()) {
            throw A1111Exception.at("value could not be parsed to a boolean", "type_error.bool", "override_settings",
                    "pad_cond_uncond");
        }
        return p.asBoolean();
    }

    /**
     * sd-serve's {@code deep_cache_interval} option from a request's {@code override_settings} (null when not given):
     * DeepCache, a full UNet step every this many steps (0 or 1 = off); admission checks its range.
     */
    static Integer deepCacheInterval(ObjectNode body) {
        JsonNode n = overrideSetting(body, "deep_cache_interval");
        if (n == null) {
            return null;
        }
        if (!n.isIntegralNumber() || !n.canConvertToInt()) {
            throw A1111Exception.at("value is not a valid integer", "type_error.integer", "override_settings",
                    "deep_cache_interval");
        }
        return n.asInt();
    }

    /**
     * A1111's {@code token_merging_ratio} from a request's {@code override_settings} (null when not given): token
     * merging in the self-attention at full resolution (range checked by admission, which names the field).
     */
    static Double tokenMergingRatio(ObjectNode body) {
        JsonNode p = overrideSetting(body, "token_merging_ratio");
        if (p == null) {
            return null;
        }
        if (!p.isNumber()) {
            throw A1111Exception.at("value is not a valid float", "type_error.float", "override_settings",
                    "token_merging_ratio");
        }
        return p.asDouble();
    }

    /** A setting of a request's {@code override_settings}; null when absent or null. */
    private static JsonNode overrideSetting(ObjectNode body, String key) {
        JsonNode ov = body == null ? null : body.get("override_settings");
        JsonNode p = ov == null || !ov.isObject() ? null : ov.get(key);
        return p == null || p.isNull() ? null : p;
    }

    private static String blankToNull(String s) {
        return s == null || s.isBlank() ? null : s;
    }

    private static void refuseTrue(ObjectNode o, String field, String msg) {
        JsonNode n = o.get(field);
        if (n != null && n.isBoolean() && n.asBoolean()) {
            throw A1111Exception.at(msg, "value_error", field);
        }
    }

    private static String str(ObjectNode o, String field) {
        JsonNode n = o.get(field);
        if (n == null || n.isNull()) {
            return null;
        }
        if (!n.isTextual()) {
            throw A1111Exception.at("str type expected", "type_error.str", field);
        }
        return n.asText();
    }

    private static Long integer(ObjectNode o, String field) {
        JsonNode n = o.get(field);
        if (n == null || n.isNull()) {
            return null;
        }
        if (n.isIntegralNumber() && n.canConvertToLong()) {
            return n.asLong();
        }
        if (n.isNumber() && n.asDouble() == Math.rint(n.asDouble())) {
            return (long) n.asDouble();
        }
        if (n.isTextual()) {
            try {
                return Long.parseLong(n.asText().strip());
            } catch (NumberFormatException ignored) {
                // fall through
            }
        }
        throw A1111Exception.at("value is not a valid integer", "type_error.integer", field);
    }

    private static Integer toInt(ObjectNode o, String field) {
        Long v = integer(o, field);
        if (v == null) {
            return null;
        }
        if (v > Integer.MAX_VALUE || v < Integer.MIN_VALUE) {
            throw A1111Exception.at("value is not a valid integer", "type_error.integer", field);
        }
        return v.intValue();
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
}
