package dev.sdserve.model;

import com.fasterxml.jackson.databind.JsonNode;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;
import java.util.Optional;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * What a UNet predicts: the noise ({@link #EPSILON}) or v = √ᾱ·ε − √(1−ᾱ)·x₀ ({@link #V}). Nothing in the weights
 * says which, so it is taken, first found wins, from
 * <ol>
 *   <li>a per-model setting (the caller's override),</li>
 *   <li>the JSON sidecar beside the checkpoint ({@code <stem>.json}: {@code prediction_type}, or the same key in
 *       its {@code unet} or {@code scheduler} object, diffusers' spelling),</li>
 *   <li>the LDM/SGM {@code .yaml} beside the checkpoint ({@code <stem>.yaml}, what AUTOMATIC1111 reads):
 *       {@code parameterization: "v"} means v-prediction, a yaml without {@code parameterization} (LDM's default
 *       {@code eps}) means epsilon,</li>
 *   <li>a tensor named {@code v_pred} in the checkpoint (what v-prediction SDXL fine-tunes carry, as ComfyUI
 *       reads it),</li>
 *   <li>the family's default: epsilon for SD 1.x and SDXL, v-prediction for SD 2.x (the 768-v models most SD 2.x
 *       files are; a 512-base file needs one of the above, e.g. its {@code v2-inference.yaml}).</li>
 * </ol>
 */
public final class PredictionType {
    public static final String EPSILON = "epsilon";
    public static final String V = "v_prediction";
    /** The tensor key v-prediction SDXL checkpoints carry. */
    public static final String V_PRED_KEY = "v_pred";

    private static final Pattern PARAMETERIZATION = Pattern.compile(
            "^\\s*parameterization\\s*:\\s*[\"']?([A-Za-z0-9_-]+)[\"']?\\s*(#.*)?$", Pattern.MULTILINE);

    /** A prediction type and where it came from (for listings and errors). */
    public record Found(String type, String source) {
    }

    private PredictionType() {
    }

    /** Canonical name of a prediction type: epsilon / eps → epsilon; v / v_prediction / v-prediction → v_prediction. */
    public static String check(String type) {
        String t = type == null ? "" : type.trim().toLowerCase(Locale.ROOT).replace('-', '_');
        return switch (t) {
            case "epsilon", "eps" -> EPSILON;
            case "v", "v_prediction" -> V;
            default -> throw new IllegalArgumentException("prediction type must be epsilon or v_prediction, got '"
                    + type + "'");
        };
    }

    /** The family default (see the class comment). */
    public static String familyDefault(String family) {
        return ModelConfig.SD2.equals(family) ? V : EPSILON;
    }

    /** What a diffusers-style config JSON says: {@code prediction_type} at its top, in {@code unet} or in {@code scheduler}. */
    public static Optional<String> fromJson(JsonNode json) {
        if (json == null) {
            return Optional.empty();
        }
        JsonNode cfg = ModelConfigs.configs(json);
        for (JsonNode n : new JsonNode[]{cfg.path("unet"), cfg.path("scheduler"), cfg, json}) {
            JsonNode v = n.path("prediction_type");
            if (v.isTextual()) {
                return Optional.of(check(v.asText()));
            }
        }
        return Optional.empty();
    }

    /** The JVM property prefix of the per-model setting: {@code -Dsdserve.prediction-type.<stem>=v_prediction}. */
    public static final String SETTING_PREFIX = "sdserve.prediction-type.";

    /**
     * The per-model setting for a checkpoint ({@code <stem>} = its file name without {@code .safetensors}, the
     * model's name), canonical, or null when none is set.
     */
    public static String setting(Path checkpoint) {
        String name = checkpoint.getFileName().toString();
        String stem = name.endsWith(".safetensors") ? name.substring(0, name.length() - ".safetensors".length()) : name;
        String v = System.getProperty(SETTING_PREFIX + stem);
        return v == null || v.isBlank() ? null : check(v.trim());
    }

    /** The {@code .yaml} beside a checkpoint ({@code <stem>.yaml}), if there is one. */
    public static Optional<Path> yamlFor(Path checkpoint) {
        String name = checkpoint.getFileName().toString();
        String stem = name.endsWith(".safetensors") ? name.substring(0, name.length() - ".safetensors".length())
                : name.endsWith(".ckpt") ? name.substring(0, name.length() - ".ckpt".length()) : name;
        Path p = checkpoint.resolveSibling(stem + ".yaml");
        return Files.isRegularFile(p) ? Optional.of(p) : Optional.empty();
    }

    /**
     * The prediction type an LDM/SGM yaml gives: {@code parameterization: "v"} → v-prediction, {@code "eps"} or no
     * {@code parameterization} line → epsilon.
     *
     * @throws IOException naming the file for an unreadable file or another parameterization (e.g. x0)
     */
    public static String fromYaml(Path yaml) throws IOException {
        String text;
        try {
            text = Files.readString(yaml);
        } catch (java.nio.charset.MalformedInputException e) {
            throw new IOException(yaml + ": not a text file");
        }
        Matcher m = PARAMETERIZATION.matcher(text);
        if (!m.find()) {
            return EPSILON;
        }
        try {
            return check(m.group(1));
        } catch (IllegalArgumentException e) {
            throw new IOException(yaml + ": parameterization '" + m.group(1) + "' is not supported (eps or v)");
        }
    }
}
