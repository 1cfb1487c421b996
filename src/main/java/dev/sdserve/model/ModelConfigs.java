package dev.sdserve.model;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * Reads the architecture of a single-file SD 1.x checkpoint (original LDM key layout) from its tensor shapes.
 *
 * <p>What shapes cannot tell (attention heads, activation, epsilons, scaling factor, default sample size) comes from
 * an optional diffusers-style config JSON — an object with {@code unet} / {@code text_encoder} / {@code vae} members
 * as in a golden set's {@code configs}, or a whole golden.json (its {@code configs} member is used) — and otherwise
 * from the SD 1.x convention: 8 UNet heads (linear-projection UNets: width / 64), text encoder heads = width / 64
 * (at least 1), quick_gelu, LayerNorm eps 1e-5, GroupNorm 32 / 1e-5, scaling factor 0.18215, epsilon prediction.
 */
public final class ModelConfigs {
    public static final String UNET = "model.diffusion_model.";
    public static final String VAE = "first_stage_model.";
    public static final String TEXT = "cond_stage_model.transformer.text_model.";

    public static final int SD1_BOS = 49406;
    public static final int SD1_EOS = 49407;
    public static final int SD1_PAD = 49407;
    public static final double SD1_SCALING_FACTOR = 0.18215;

    private static final ObjectMapper JSON = new ObjectMapper();

    private ModelConfigs() {
    }

    /** The SD 1.5 architecture (as read from a real SD 1.5 file with the SD 1.x conventions). */
    public static ModelConfig sd15() {
        UNetConfig u = new UNetConfig(4, 4, List.of(320, 640, 1280, 1280), 2,
                List.of(true, true, true, false), List.of(false, true, true, true), true,
                List.of(8, 8, 8, 8), 768, false, 1, 32, 1e-5, "epsilon", 64);
        TextEncoderConfig t = new TextEncoderConfig(49408, 768, 3072, 12, 12, 77, "quick_gelu", 1e-5,
                SD1_BOS, SD1_EOS, SD1_PAD);
        VaeConfig v = new VaeConfig(3, 3, 4, List.of(128, 256, 512, 512), 2, 32, SD1_SCALING_FACTOR);
        return new ModelConfig("sd1", u, t, v);
    }

    /** Architecture from tensor shapes alone (SD 1.x conventions for the rest). */
    public static ModelConfig fromShapes(Map<String, long[]> shapes) {
        return fromShapes(shapes, null);
    }

    /**
     * Architecture from tensor shapes, with {@code configJson} (may be null) for what shapes cannot tell.
     *
     * @throws IllegalArgumentException naming what is missing or inconsistent when the shapes are not those of an SD
     *                                  1.x-style LDM checkpoint
     */
    public static ModelConfig fromShapes(Map<String, long[]> shapes, JsonNode configJson) {
        JsonNode cfg = configs(configJson);
        UNetConfig unet = unet(shapes, cfg.path("unet"), cfg);
        TextEncoderConfig te = textEncoder(shapes, cfg.path("text_encoder"), cfg.path("tokenizer"));
        VaeConfig vae = vae(shapes, cfg.path("vae"));
        if (unet.crossAttentionDim() != te.hiddenSize()) {
            throw new IllegalArgumentException("UNet cross-attention width " + unet.crossAttentionDim()
                    + " differs from the text encoder width " + te.hiddenSize());
        }
        // inpainting UNets take more input channels (latent + masked-image latent + mask) but predict the latent
        if (unet.outChannels() != vae.latentChannels() || unet.inChannels() < vae.latentChannels()) {
            throw new IllegalArgumentException("UNet maps " + unet.inChannels() + " → " + unet.outChannels()
                    + " channels but the VAE latent has " + vae.latentChannels());
        }
        return new ModelConfig("sd1", unet, te, vae);
    }

    /** The {@code configs} object of a golden.json, or the object itself, or an empty node. */
    static JsonNode configs(JsonNode node) {
        if (node == null || node.isMissingNode() || node.isNull()) {
            return JSON.createObjectNode();
        }
        if (node.has("configs") && node.get("configs").isObject()) {
            return node.get("configs");
        }
        return node;
    }

    // ---------------------------------------------------------------- UNet

    static UNetConfig unet(Map<String, long[]> s, JsonNode j, JsonNode all) {
        String p = UNET;
        long[] convIn = need(s, p + "input_blocks.0.0.weight", 4);
        int in = (int) convIn[1];
        int base = (int) convIn[0];
        int out = (int) need(s, p + "out.2.weight", 4)[0];
        List<Integer> channels = new ArrayList<>();
        List<Boolean> attnDown = new ArrayList<>();
        int layersPerBlock = -1;
        int idx = 1;
        int ctx = -1;
        Boolean linear = null;
        int transformerLayers = -1;
        while (true) {
            int res = 0;
            int levelCh = -1;
            boolean levelAttn = false;
            while (s.containsKey(p + "input_blocks." + idx + ".0.in_layers.2.weight")) {
                levelCh = (int) s.get(p + "input_blocks." + idx + ".0.in_layers.2.weight")[0];
                String tp = p + "input_blocks." + idx + ".1.";
                if (s.containsKey(tp + "proj_in.weight")) {
                    levelAttn = true;
                    long[] pin = s.get(tp + "proj_in.weight");
                    linear = pin.length == 2;
                    if (ctx < 0) {
                        ctx = (int) need(s, tp + "transformer_blocks.0.attn2.to_k.weight", 2)[1];
                        transformerLayers = count(s, tp + "transformer_blocks.", ".attn1.to_q.weight");
                    }
                }
                res++;
                idx++;
            }
            if (res == 0) {
                throw new IllegalArgumentException("UNet input block " + idx + " has no res block ("
                        + p + "input_blocks." + idx + ".0.in_layers.2.weight)");
            }
            if (layersPerBlock < 0) {
                layersPerBlock = res;
            } else if (res != layersPerBlock) {
                throw new IllegalArgumentException("UNet level " + channels.size() + " has " + res
                        + " res blocks, level 0 has " + layersPerBlock);
            }
            channels.add(levelCh);
            attnDown.add(levelAttn);
            if (s.containsKey(p + "input_blocks." + idx + ".0.op.weight")) {
                idx++;
            } else {
                break;
            }
        }
        int levels = channels.size();
        boolean midAttn = s.containsKey(p + "middle_block.1.proj_in.weight");
        need(s, p + "middle_block.0.in_layers.2.weight", 4);
        List<Boolean> attnUp = new ArrayList<>();
        for (int u = 0; u < levels; u++) {
            int first = u * (layersPerBlock + 1);
            need(s, p + "output_blocks." + first + ".0.in_layers.2.weight", 4);
            attnUp.add(s.containsKey(p + "output_blocks." + first + ".1.proj_in.weight"));
        }
        if (s.containsKey(p + "output_blocks." + levels * (layersPerBlock + 1) + ".0.in_layers.2.weight")) {
            throw new IllegalArgumentException("UNet has more output blocks than " + levels + " levels × "
                    + (layersPerBlock + 1));
        }
        if (ctx < 0 && midAttn) {
            String tp = p + "middle_block.1.";
            linear = s.get(tp + "proj_in.weight").length == 2;
            ctx = (int) need(s, tp + "transformer_blocks.0.attn2.to_k.weight", 2)[1];
            transformerLayers = count(s, tp + "transformer_blocks.", ".attn1.to_q.weight");
        }
        if (ctx < 0) {
            throw new IllegalArgumentException("UNet has no cross-attention block: not an SD-style text-conditioned UNet");
        }
        boolean useLinear = Boolean.TRUE.equals(linear);
        List<Integer> heads = heads(j, channels, useLinear);
        int groups = j.path("norm_num_groups").asInt(32);
        double eps = j.path("norm_eps").asDouble(1e-5);
        String prediction = text(j, "prediction_type", null);
        if (prediction == null) {
            prediction = text(all.path("scheduler"), "prediction_type", null);
        }
        if (prediction == null) {
            prediction = text(all, "prediction_type", "epsilon");
        }
        int sampleSize = j.path("sample_size").isInt() ? j.get("sample_size").asInt()
                : base >= 320 ? 64 : Math.max(16, Math.min(64, base / 2));
        return new UNetConfig(in, out, channels, layersPerBlock, attnDown, attnUp, midAttn, heads, ctx, useLinear,
                transformerLayers, groups, eps, prediction, sampleSize);
    }

    /**
     * diffusers' UNet2DConditionModel uses {@code num_attention_heads or attention_head_dim} as the number of heads
     * (the legacy name): an int for every level or a list per level.
     */
    private static List<Integer> heads(JsonNode j, List<Integer> channels, boolean linear) {
        JsonNode h = j.path("num_attention_heads");
        if (h.isMissingNode() || h.isNull()) {
            h = j.path("attention_head_dim");
        }
        List<Integer> out = new ArrayList<>();
        for (int l = 0; l < channels.size(); l++) {
            int n;
            if (h.isInt()) {
                n = h.asInt();
            } else if (h.isArray() && h.size() == channels.size()) {
                n = h.get(l).asInt();
            } else if (h.isArray()) {
                throw new IllegalArgumentException("config attention heads " + h + " has " + h.size()
                        + " entries for " + channels.size() + " UNet levels");
            } else {
                n = linear ? Math.max(1, channels.get(l) / 64) : 8;
            }
            if (n <= 0 || channels.get(l) % n != 0) {
                throw new IllegalArgumentException("UNet level " + l + " has " + channels.get(l)
                        + " channels, not divisible into " + n + " attention heads");
            }
            out.add(n);
        }
        return out;
    }

    // ---------------------------------------------------------------- text encoder

    static TextEncoderConfig textEncoder(Map<String, long[]> s, JsonNode j, JsonNode tok) {
        String p = TEXT;
        long[] emb = need(s, p + "embeddings.token_embedding.weight", 2);
        int vocab = (int) emb[0];
        int width = (int) emb[1];
        int positions = (int) need(s, p + "embeddings.position_embedding.weight", 2)[0];
        int layers = count(s, p + "encoder.layers.", ".self_attn.q_proj.weight");
        if (layers == 0) {
            throw new IllegalArgumentException("text encoder has no layers (" + p + "encoder.layers.0.*)");
        }
        int inter = (int) need(s, p + "encoder.layers.0.mlp.fc1.weight", 2)[0];
        need(s, p + "final_layer_norm.weight", 1);
        int heads = j.path("num_attention_heads").asInt(Math.max(1, width / 64));
        if (width % heads != 0) {
            throw new IllegalArgumentException("text encoder width " + width + " not divisible into " + heads + " heads");
        }
        String act = text(j, "hidden_act", "quick_gelu");
        double eps = j.path("layer_norm_eps").asDouble(1e-5);
        int bos = tok.path("bos_token_id").asInt(j.path("bos_token_id").asInt(SD1_BOS));
        int eos = tok.path("eos_token_id").asInt(j.path("eos_token_id").asInt(SD1_EOS));
        // the text encoder's own pad_token_id (1 in SD 1.5's config) is not what the SD 1.x tokenizer pads with
        int pad = tok.path("pad_token_id").asInt(SD1_PAD);
        return new TextEncoderConfig(vocab, width, inter, layers, heads, positions, act, eps, bos, eos, pad);
    }

    // ---------------------------------------------------------------- VAE

    static VaeConfig vae(Map<String, long[]> s, JsonNode j) {
        String p = VAE;
        int in = (int) need(s, p + "encoder.conv_in.weight", 4)[1];
        int out = (int) need(s, p + "decoder.conv_out.weight", 4)[0];
        int latent = (int) need(s, p + "post_quant_conv.weight", 4)[0];
        List<Integer> channels = new ArrayList<>();
        while (s.containsKey(p + "encoder.down." + channels.size() + ".block.0.conv1.weight")) {
            channels.add((int) s.get(p + "encoder.down." + channels.size() + ".block.0.conv1.weight")[0]);
        }
        if (channels.isEmpty()) {
            throw new IllegalArgumentException("VAE encoder has no levels (" + p + "encoder.down.0.block.0.conv1.weight)");
        }
        int layers = count(s, p + "encoder.down.0.block.", ".conv1.weight");
        int groups = j.path("norm_num_groups").asInt(32);
        double scaling = j.path("scaling_factor").isNumber() ? j.get("scaling_factor").asDouble() : SD1_SCALING_FACTOR;
        return new VaeConfig(in, out, latent, channels, layers, groups, scaling);
    }

    // ---------------------------------------------------------------- helpers

    private static long[] need(Map<String, long[]> s, String key, int rank) {
        long[] sh = s.get(key);
        if (sh == null) {
            throw new IllegalArgumentException("no tensor " + key);
        }
        if (sh.length != rank) {
            throw new IllegalArgumentException(key + " has shape " + Arrays.toString(sh) + ", expected rank " + rank);
        }
        return sh;
    }

    private static int count(Map<String, long[]> s, String prefix, String suffix) {
        int n = 0;
        while (s.containsKey(prefix + n + suffix)) {
            n++;
        }
        return n;
    }

    private static String text(JsonNode j, String field, String dflt) {
        JsonNode v = j.path(field);
        return v.isTextual() ? v.asText() : dflt;
    }

    /**
     * A diffusers-style config JSON ({@code unet} / {@code text_encoder} / {@code vae} objects, diffusers names) that
     * {@link #fromShapes(Map, JsonNode)} reads back to {@code c} for a checkpoint of that architecture.
     */
    public static com.fasterxml.jackson.databind.node.ObjectNode toJson(ModelConfig c) {
        var root = JSON.createObjectNode();
        UNetConfig u = c.unet();
        var un = root.putObject("unet");
        un.put("sample_size", u.sampleSize());
        un.put("in_channels", u.inChannels());
        un.put("out_channels", u.outChannels());
        var down = un.putArray("down_block_types");
        u.crossAttnDown().forEach(a -> down.add(a ? "CrossAttnDownBlock2D" : "DownBlock2D"));
        un.put("mid_block_type", u.midAttention() ? "UNetMidBlock2DCrossAttn" : "UNetMidBlock2D");
        var up = un.putArray("up_block_types");
        u.crossAttnUp().forEach(a -> up.add(a ? "CrossAttnUpBlock2D" : "UpBlock2D"));
        var bo = un.putArray("block_out_channels");
        u.blockOutChannels().forEach(bo::add);
        un.put("layers_per_block", u.layersPerBlock());
        un.put("norm_num_groups", u.normGroups());
        un.put("norm_eps", u.normEps());
        un.put("cross_attention_dim", u.crossAttentionDim());
        un.put("transformer_layers_per_block", u.transformerLayers());
        if (u.attentionHeads().stream().distinct().count() == 1) {
            un.put("attention_head_dim", u.attentionHeads().get(0));
        } else {
            var h = un.putArray("attention_head_dim");
            u.attentionHeads().forEach(h::add);
        }
        un.put("use_linear_projection", u.useLinearProjection());
        un.put("prediction_type", u.predictionType());
        TextEncoderConfig t = c.textEncoder();
        var te = root.putObject("text_encoder");
        te.put("vocab_size", t.vocabSize());
        te.put("hidden_size", t.hiddenSize());
        te.put("intermediate_size", t.intermediateSize());
        te.put("num_hidden_layers", t.layers());
        te.put("num_attention_heads", t.heads());
        te.put("max_position_embeddings", t.maxPositions());
        te.put("hidden_act", t.hiddenAct());
        te.put("layer_norm_eps", t.layerNormEps());
        te.put("bos_token_id", t.bosToken());
        te.put("eos_token_id", t.eosToken());
        te.put("pad_token_id", t.padToken());
        var tok = root.putObject("tokenizer");
        tok.put("bos_token_id", t.bosToken());
        tok.put("eos_token_id", t.eosToken());
        tok.put("pad_token_id", t.padToken());
        VaeConfig v = c.vae();
        var va = root.putObject("vae");
        va.put("in_channels", v.inChannels());
        va.put("out_channels", v.outChannels());
        va.put("latent_channels", v.latentChannels());
        var vb = va.putArray("block_out_channels");
        v.blockOutChannels().forEach(vb::add);
        va.put("layers_per_block", v.layersPerBlock());
        va.put("norm_num_groups", v.normGroups());
        va.put("scaling_factor", v.scalingFactor());
        return root;
    }

    // ---------------------------------------------------------------- config JSON beside a checkpoint

    /**
     * The config JSON beside a checkpoint, if any: {@code <stem>.json}, {@code <stem>.config.json},
     * {@code <file>.json} (stem = file name without {@code .safetensors}).
     */
    public static Optional<Path> configFileFor(Path checkpoint) {
        String name = checkpoint.getFileName().toString();
        String stem = name.endsWith(".safetensors") ? name.substring(0, name.length() - ".safetensors".length()) : name;
        for (String candidate : List.of(stem + ".json", stem + ".config.json", name + ".json")) {
            Path p = checkpoint.resolveSibling(candidate);
            if (Files.isRegularFile(p)) {
                return Optional.of(p);
            }
        }
        return Optional.empty();
    }

    public static JsonNode readJson(Path file) throws IOException {
        try {
            JsonNode n = JSON.readTree(file.toFile());
            if (n == null || !n.isObject()) {
                throw new IOException(file + ": not a JSON object");
            }
            return n;
        } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
            throw new IOException(file + ": invalid JSON: " + e.getOriginalMessage(), e);
        }
    }

    /** Shapes of a SafeTensors file's tensors, by name. */
    public static Map<String, long[]> shapes(SafeTensors st) {
        Map<String, long[]> m = new LinkedHashMap<>();
        st.tensors().forEach((k, v) -> m.put(k, v.shape()));
        return m;
    }
}
