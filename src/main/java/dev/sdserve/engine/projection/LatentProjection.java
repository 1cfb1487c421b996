package dev.sdserve.engine.projection;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.sdserve.engine.LatentShape;

import java.util.Arrays;

/**
 * An affine map from a latent's channels to RGB in [0, 1], per pixel: {@code rgb[r] = bias[r] + Σ_c latent[c]·weights[c][r]},
 * clamped to [0, 1]. It makes a preview without the VAE. Each model's VAE has its own latent space, so the map is
 * fitted to the model ({@link ProjectionFit}); {@link #SD1_CHEAP} (AUTOMATIC1111's "Approx cheap" factors for SD 1.x)
 * is the fallback until a fit exists.
 *
 * @param weights rows: latent channel 0..c−1; columns: R, G, B
 * @param bias    R, G, B
 * @param source  where the map comes from: {@code "sd1-cheap"}, or {@code "fitted"}
 */
public record LatentProjection(float[][] weights, float[] bias, String source) {
    /** AUTOMATIC1111's "Approx cheap" SD 1.x factors (rows: latent channel; columns: R, G, B), onto [−1, 1]. */
    public static final float[][] SD1_CHEAP_FACTORS = {
            {0.298f, 0.207f, 0.208f},
            {0.187f, 0.286f, 0.173f},
            {-0.158f, 0.189f, 0.264f},
            {-0.184f, -0.271f, -0.473f},
    };

    /** The source of a decoder preview's readout (a map over the VAE decoder trunk's features, not the latent's). */
    public static final String DECODER = "decoder";

    /** The A1111 factors as a map onto [0, 1]: rgb = 0.5·Σ x·F + 0.5. */
    public static final LatentProjection SD1_CHEAP = fromSignedFactors(SD1_CHEAP_FACTORS, "sd1-cheap");

    public LatentProjection {
        if (weights.length == 0 || bias.length != 3) {
            throw new IllegalArgumentException("a projection needs at least one channel and 3 biases");
        }
        float[][] w = new float[weights.length][];
        for (int c = 0; c < weights.length; c++) {
            if (weights[c].length != 3) {
                throw new IllegalArgumentException("weights row " + c + " has " + weights[c].length + " values, not 3");
            }
            w[c] = weights[c].clone();
        }
        weights = w;
        bias = bias.clone();
    }

    /** A map onto [−1, 1] given as factors (A1111's convention), turned into a map onto [0, 1]. */
    static LatentProjection fromSignedFactors(float[][] factors, String source) {
        float[][] w = new float[factors.length][3];
        for (int c = 0; c < factors.length; c++) {
            for (int r = 0; r < 3; r++) {
                w[c][r] = factors[c][r] * 0.5f;
            }
        }
        return new LatentProjection(w, new float[]{0.5f, 0.5f, 0.5f}, source);
    }

    @Override
    public float[][] weights() {
        float[][] w = new float[weights.length][];
        for (int c = 0; c < w.length; c++) {
            w[c] = weights[c].clone();
        }
        return w;
    }

    @Override
    public float[] bias() {
        return bias.clone();
    }

    public int channels() {
        return weights.length;
    }

    /**
     * The RGB image at latent resolution, HWC, clamped to [0, 1]. Latent channels beyond the map's are ignored, and
     * a latent with fewer channels uses the first rows (only the fallback can meet a latent of another model).
     */
    public float[] toRgb(float[] latent, LatentShape shape) {
        float[] rgb = toRgbUnclamped(latent, shape);
        for (int i = 0; i < rgb.length; i++) {
            float u = rgb[i];
            rgb[i] = u < 0 ? 0 : u > 1 ? 1 : u;
        }
        return rgb;
    }

    /** As {@link #toRgb} without the clamp. */
    public float[] toRgbUnclamped(float[] latent, LatentShape shape) {
        int plane = shape.height() * shape.width();
        if (latent.length != shape.size()) {
            throw new IllegalArgumentException("latent of " + latent.length + " floats is not " + shape);
        }
        int ch = Math.min(shape.channels(), weights.length);
        float[] rgb = new float[plane * 3];
        for (int p = 0; p < plane; p++) {
            for (int r = 0; r < 3; r++) {
                float v = 0;
                for (int c = 0; c < ch; c++) {
                    v += latent[c * plane + p] * weights[c][r];
                }
                rgb[p * 3 + r] = v + bias[r];
            }
        }
        return rgb;
    }

    /**
     * A latent as raw little-endian IEEE float16 (binary16, round to nearest even; beyond ±65504 ±infinity), in its
     * own order (channels × height × width): the "latent" preview format.
     */
    public static byte[] float16(float[] latent) {
        java.nio.ByteBuffer b = java.nio.ByteBuffer.allocate(latent.length * 2).order(java.nio.ByteOrder.LITTLE_ENDIAN);
        for (float v : latent) {
            b.putShort(dev.sdserve.model.Half.fromFloat(v));
        }
        return b.array();
    }

    /** {"weights": [[r, g, b] per channel], "bias": [r, g, b], "source": …} */
    public ObjectNode toJson(ObjectMapper m) {
        ObjectNode o = m.createObjectNode();
        ArrayNode w = o.putArray("weights");
        for (float[] row : weights) {
            ArrayNode a = w.addArray();
            for (float v : row) {
                a.add(v);
            }
        }
        ArrayNode b = o.putArray("bias");
        for (float v : bias) {
            b.add(v);
        }
        o.put("source", source);
        return o;
    }

    public static LatentProjection fromJson(JsonNode o) {
        JsonNode w = o.path("weights");
        JsonNode b = o.path("bias");
        if (!w.isArray() || w.isEmpty() || !b.isArray() || b.size() != 3) {
            throw new IllegalArgumentException("a projection needs 'weights' (rows of 3) and 'bias' (3 values)");
        }
        float[][] weights = new float[w.size()][3];
        for (int c = 0; c < weights.length; c++) {
            JsonNode row = w.get(c);
            if (row.size() != 3) {
                throw new IllegalArgumentException("weights row " + c + " has " + row.size() + " values, not 3");
            }
            for (int r = 0; r < 3; r++) {
                weights[c][r] = (float) row.get(r).asDouble();
            }
        }
        float[] bias = new float[3];
        for (int r = 0; r < 3; r++) {
            bias[r] = (float) b.get(r).asDouble();
        }
        return new LatentProjection(weights, bias, o.path("source").asText("fitted"));
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof LatentProjection p && Arrays.deepEquals(weights, p.weights) && Arrays.equals(bias, p.bias)
                && source.equals(p.source);
    }

    @Override
    public int hashCode() {
        return Arrays.deepHashCode(weights) * 31 + Arrays.hashCode(bias);
    }

    @Override
    public String toString() {
        return "LatentProjection[" + source + ", weights=" + Arrays.deepToString(weights) + ", bias=" + Arrays.toString(bias) + "]";
    }
}
