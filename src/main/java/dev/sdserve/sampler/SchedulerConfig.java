package dev.sdserve.sampler;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * A diffusers scheduler configuration: the keys of a {@code scheduler_config.json} (or of the
 * {@code pipelines.<name>.config} objects of a golden set), with diffusers' names and meanings.
 *
 * <p>Like diffusers' {@code SchedulerClass.from_config(config)}, a config holds only the keys that were given; the
 * sampler that uses it fills every missing (or {@code null}) key with the default of its own diffusers class
 * (e.g. DDIM's default {@code timestep_spacing} is {@code leading}, Euler's is {@code linspace}), and ignores keys
 * that its class does not have (such as {@code skip_prk_steps} for Euler). {@link #SD15} is the scheduler config of
 * Stable Diffusion 1.5, the service default.
 *
 * <p>Supported keys (others are ignored): {@code num_train_timesteps, beta_start, beta_end, beta_schedule}
 * (linear, scaled_linear, squaredcos_cap_v2), {@code trained_betas, steps_offset, timestep_spacing} (leading,
 * linspace, trailing), {@code set_alpha_to_one, skip_prk_steps} (must be true), {@code prediction_type} (epsilon,
 * v_prediction), {@code use_karras_sigmas, sigma_min, sigma_max, final_sigmas_type} (zero, sigma_min),
 * {@code timestep_type} (discrete, continuous), {@code interpolation_type} (linear), {@code clip_sample,
 * clip_sample_range, solver_order, algorithm_type} (dpmsolver++, sde-dpmsolver++, dpmsolver, sde-dpmsolver),
 * {@code solver_type} (midpoint, heun; bh1, bh2 for UniPC), {@code lower_order_final, euler_at_final,
 * lambda_min_clipped} (null = no clipping), {@code predict_x0, disable_corrector}. Options that change the math
 * in ways not implemented here (thresholding, rescale_betas_zero_snr, exponential/beta/flow/lu-lambda sigmas, dynamic
 * shifting, learned variance, solver_p) are rejected with an {@link IllegalArgumentException} when they are enabled.
 */
public final class SchedulerConfig {
    private static final ObjectMapper JSON = new ObjectMapper();

    /** Stable Diffusion 1.5's scheduler_config.json (PNDMScheduler), the base of every service default. */
    public static final SchedulerConfig SD15 = new SchedulerConfig(ordered(
            "num_train_timesteps", 1000,
            "beta_start", 0.00085,
            "beta_end", 0.012,
            "beta_schedule", "scaled_linear",
            "trained_betas", null,
            "steps_offset", 1,
            "set_alpha_to_one", false,
            "skip_prk_steps", true,
            "clip_sample", false));

    /**
     * SDXL base 1.0's shipped scheduler config (EulerDiscreteScheduler in {@code stabilityai/stable-diffusion-xl-base-1.0}):
     * the SD betas, {@code steps_offset} 1 and {@code timestep_spacing: leading}, which every sampler made from it
     * keeps (as diffusers' {@code from_config(pipe.scheduler.config)} does).
     */
    public static final SchedulerConfig SDXL = SD15.merge(new SchedulerConfig(ordered(
            "timestep_spacing", "leading",
            "interpolation_type", "linear",
            "prediction_type", "epsilon",
            "sample_max_value", 1.0,
            "use_karras_sigmas", false)));

    /**
     * Stable Diffusion 2.1's shipped scheduler config (DDIMScheduler, v-prediction; no {@code timestep_spacing}: each
     * sampler keeps its class default, DDIM/PNDM leading, the others linspace). {@link #forModel} gives the 512-base
     * (epsilon) variant.
     */
    public static final SchedulerConfig SD21 = SD15.with("prediction_type", "v_prediction");

    /**
     * The scheduler config a model ships with, by family ({@code sd1}, {@code sd2}, {@code sdxl}) and prediction type
     * ({@code epsilon} / {@code v_prediction}): SD 1.5's, SD 2.1's, SDXL base's, with the prediction type set.
     */
    public static SchedulerConfig forModel(String family, String predictionType) {
        SchedulerConfig base = switch (family == null ? "" : family) {
            case "sdxl" -> SDXL;
            case "sd2" -> SD21;
            default -> SD15;
        };
        String p = predictionType == null ? "epsilon" : predictionType;
        return p.equals(base.raw("prediction_type")) || (p.equals("epsilon") && !base.has("prediction_type"))
                ? base : base.with("prediction_type", p);
    }

    /** An empty config: every key takes the sampler's diffusers class default. */
    public static final SchedulerConfig EMPTY = new SchedulerConfig(Map.of());

    private final Map<String, Object> values;

    private SchedulerConfig(Map<String, Object> values) {
        this.values = Collections.unmodifiableMap(new LinkedHashMap<>(values));
    }

    /** A config from key → value (values: Boolean, Number, String, List of Number, or null). */
    public static SchedulerConfig of(Map<String, ?> values) {
        Map<String, Object> m = new LinkedHashMap<>();
        values.forEach((k, v) -> m.put(Objects.requireNonNull(k), normalise(k, v)));
        return new SchedulerConfig(m);
    }

    /** Parses a diffusers scheduler config JSON object. */
    public static SchedulerConfig fromJson(String json) {
        try {
            return fromJson(JSON.readTree(json));
        } catch (JsonProcessingException e) {
            throw new IllegalArgumentException("scheduler config is not valid JSON: " + e.getOriginalMessage(), e);
        }
    }

    /** Reads a diffusers scheduler config from a JSON object node. */
    public static SchedulerConfig fromJson(JsonNode node) {
        if (node == null || !node.isObject()) {
            throw new IllegalArgumentException("scheduler config must be a JSON object, got " + (node == null ? "nothing" : node.getNodeType()));
        }
        Map<String, Object> m = new LinkedHashMap<>();
        node.fields().forEachRemaining(e -> m.put(e.getKey(), fromNode(e.getKey(), e.getValue())));
        return new SchedulerConfig(m);
    }

    private static Object fromNode(String key, JsonNode v) {
        if (v == null || v.isNull()) {
            return null;
        }
        if (v.isBoolean()) {
            return v.booleanValue();
        }
        if (v.isIntegralNumber()) {
            return v.longValue();
        }
        if (v.isNumber()) {
            return v.doubleValue();
        }
        if (v.isTextual()) {
            return v.textValue();
        }
        if (v.isArray()) {
            List<Object> l = new java.util.ArrayList<>();
            v.forEach(x -> l.add(fromNode(key, x)));
            return List.copyOf(l.stream().map(o -> o == null ? (Object) Double.NaN : o).toList());
        }
        if (v.isObject()) {
            return v.toString(); // nested objects (none used by the supported schedulers)
        }
        throw new IllegalArgumentException("scheduler config key '" + key + "' has an unsupported value " + v);
    }

    private static Object normalise(String key, Object v) {
        if (v == null || v instanceof Boolean || v instanceof String) {
            return v;
        }
        if (v instanceof Integer || v instanceof Long || v instanceof Short || v instanceof Byte) {
            return ((Number) v).longValue();
        }
        if (v instanceof Number n) {
            return n.doubleValue();
        }
        if (v instanceof double[] d) {
            return java.util.Arrays.stream(d).boxed().map(x -> (Object) x).toList();
        }
        if (v instanceof int[] d) {
            return java.util.Arrays.stream(d).boxed().map(x -> (Object) (long) x).toList();
        }
        if (v instanceof List<?> l) {
            return List.copyOf(l.stream().map(x -> normalise(key, x)).toList());
        }
        throw new IllegalArgumentException("scheduler config key '" + key + "' has an unsupported value type " + v.getClass().getName());
    }

    /** This config with {@code key} set (a null value means "the class default"). */
    public SchedulerConfig with(String key, Object value) {
        Map<String, Object> m = new LinkedHashMap<>(values);
        m.put(key, normalise(key, value));
        return new SchedulerConfig(m);
    }

    /** This config with every key of {@code other} set over it. */
    public SchedulerConfig merge(SchedulerConfig other) {
        Map<String, Object> m = new LinkedHashMap<>(values);
        m.putAll(other.values);
        return new SchedulerConfig(m);
    }

    /** The keys given, in order (value null = explicitly the default). */
    public Map<String, Object> values() {
        return values;
    }

    public boolean has(String key) {
        return values.get(key) != null;
    }

    Object raw(String key) {
        return values.get(key);
    }

    String string(String key, String dflt) {
        return typed(key, dflt, String.class, "a string");
    }

    boolean bool(String key, boolean dflt) {
        return typed(key, dflt, Boolean.class, "true or false");
    }

    double number(String key, double dflt) {
        return typed(key, dflt, Number.class, "a number").doubleValue();
    }

    /** The value of {@code key} if it is a {@code type}, {@code dflt} if absent; a clear error for another type. */
    private <T> T typed(String key, T dflt, Class<T> type, String what) {
        Object v = values.get(key);
        if (v == null) {
            return dflt;
        }
        if (!type.isInstance(v)) {
            throw new IllegalArgumentException("scheduler config key '" + key + "' must be " + what + ", got " + v);
        }
        return type.cast(v);
    }

    int integer(String key, int dflt) {
        double d = number(key, dflt);
        if (d != Math.rint(d) || Math.abs(d) > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("scheduler config key '" + key + "' must be an integer, got " + values.get(key));
        }
        return (int) d;
    }

    Double optionalNumber(String key) {
        Object v = values.get(key);
        if (v == null) {
            return null;
        }
        return number(key, 0);
    }

    double[] numbers(String key) {
        Object v = values.get(key);
        if (v == null) {
            return null;
        }
        if (!(v instanceof List<?> l)) {
            throw new IllegalArgumentException("scheduler config key '" + key + "' must be a list of numbers, got " + v);
        }
        double[] out = new double[l.size()];
        for (int i = 0; i < out.length; i++) {
            if (!(l.get(i) instanceof Number n)) {
                throw new IllegalArgumentException("scheduler config key '" + key + "' must be a list of numbers, got " + v);
            }
            out[i] = n.doubleValue();
        }
        return out;
    }

    private static Map<String, Object> ordered(Object... kv) {
        Map<String, Object> m = new LinkedHashMap<>();
        for (int i = 0; i < kv.length; i += 2) {
            m.put((String) kv[i], normalise((String) kv[i], kv[i + 1]));
        }
        return m;
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof SchedulerConfig c && c.values.equals(values);
    }

    @Override
    public int hashCode() {
        return values.hashCode();
    }

    @Override
    public String toString() {
        try {
            return JSON.writeValueAsString(values);
        } catch (JsonProcessingException e) {
            return values.toString();
        }
    }
}
