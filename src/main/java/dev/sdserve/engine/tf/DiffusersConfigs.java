package dev.sdserve.engine.tf;

import com.fasterxml.jackson.databind.JsonNode;
import dev.sdserve.model.ModelConfig;
import dev.sdserve.model.TextEncoderConfig;
import dev.sdserve.model.UNetConfig;
import dev.sdserve.model.VaeConfig;

import java.util.ArrayList;
import java.util.List;

/**
 * Builds a {@link ModelConfig} from diffusers/transformers config JSON (the {@code configs} object of a golden set:
 * {@code unet}, {@code vae}, {@code text_encoder}). Missing fields take diffusers' defaults.
 */
public final class DiffusersConfigs {
    private DiffusersConfigs() {
    }

    public static ModelConfig fromConfigs(JsonNode configs) {
        return new ModelConfig("sd1", unet(req(configs, "unet")), textEncoder(req(configs, "text_encoder")),
                vae(req(configs, "vae")));
    }

    private static JsonNode req(JsonNode n, String field) {
        JsonNode v = n.get(field);
        if (v == null || v.isNull()) {
            throw new IllegalArgumentException("config has no '" + field + "'");
        }
        return v;
    }

    private static List<Integer> ints(JsonNode arr) {
        List<Integer> l = new ArrayList<>();
        arr.forEach(e -> l.add(e.asInt()));
        return l;
    }

    public static UNetConfig unet(JsonNode u) {
        List<Integer> channels = ints(req(u, "block_out_channels"));
        List<Boolean> down = new ArrayList<>();
        req(u, "down_block_types").forEach(e -> down.add(e.asText().startsWith("CrossAttn")));
        List<Boolean> up = new ArrayList<>();
        req(u, "up_block_types").forEach(e -> up.add(e.asText().startsWith("CrossAttn")));
        String mid = u.path("mid_block_type").asText("UNetMidBlock2DCrossAttn");
        // diffusers' legacy naming: for SD 1.x/2.x, attention_head_dim is the number of heads when
        // num_attention_heads is absent
        JsonNode headsNode = u.path("num_attention_heads");
        if (headsNode.isMissingNode() || headsNode.isNull()) {
            headsNode = u.path("attention_head_dim");
        }
        List<Integer> heads = new ArrayList<>();
        if (headsNode.isArray()) {
            heads.addAll(ints(headsNode));
        } else {
            int h = headsNode.isMissingNode() || headsNode.isNull() ? 8 : headsNode.asInt();
            for (int i = 0; i < channels.size(); i++) {
                heads.add(h);
            }
        }
        JsonNode tl = u.path("transformer_layers_per_block");
        int transformerLayers = tl.isArray() ? tl.get(0).asInt() : tl.asInt(1);
        JsonNode ctx = req(u, "cross_attention_dim");
        return new UNetConfig(u.path("in_channels").asInt(4), u.path("out_channels").asInt(4), channels,
                u.path("layers_per_block").asInt(2), down, up, mid.contains("CrossAttn"), heads,
                ctx.isArray() ? ctx.get(0).asInt() : ctx.asInt(), u.path("use_linear_projection").asBoolean(false),
                transformerLayers, u.path("norm_num_groups").asInt(32), u.path("norm_eps").asDouble(1e-5),
                u.path("prediction_type").asText("epsilon"), u.path("sample_size").asInt(64));
    }

    public static TextEncoderConfig textEncoder(JsonNode t) {
        return new TextEncoderConfig(t.path("vocab_size").asInt(49408), req(t, "hidden_size").asInt(),
                req(t, "intermediate_size").asInt(), req(t, "num_hidden_layers").asInt(),
                req(t, "num_attention_heads").asInt(), t.path("max_position_embeddings").asInt(77),
                t.path("hidden_act").asText("quick_gelu"), t.path("layer_norm_eps").asDouble(1e-5),
                t.path("bos_token_id").asInt(49406), t.path("eos_token_id").asInt(49407),
                t.path("pad_token_id").asInt(49407));
    }

    public static VaeConfig vae(JsonNode v) {
        return new VaeConfig(v.path("in_channels").asInt(3), v.path("out_channels").asInt(3),
                v.path("latent_channels").asInt(4), ints(req(v, "block_out_channels")),
                v.path("layers_per_block").asInt(2), v.path("norm_num_groups").asInt(32),
                v.path("scaling_factor").asDouble(0.18215));
    }
}
