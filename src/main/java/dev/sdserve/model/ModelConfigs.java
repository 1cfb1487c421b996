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
 * Reads the architecture of a single-file checkpoint (SD 1.x / SD 2.x in the LDM key layout, SDXL base in the SGM
 * layout: see {@link ModelDetection}) from its tensor shapes.
 *
 * <p><b>Read from shapes:</b> UNet input/output channels, channels per level, res blocks per level, which levels
 * and the middle have attention, the transformer depth of every level (SDXL: 0/2/10), linear or 1×1-conv
 * projections, the context width, SDXL's added-conditioning input width ({@code label_emb}); every text tower's
 * vocabulary, width, MLP width, layers, positions and projection width; the VAE's channels, levels, res blocks and
 * latent channels.
 *
 * <p><b>Not in the shapes</b>, so from an optional diffusers-style config JSON (an object with {@code unet} /
 * {@code text_encoder} / {@code text_encoder_2} / {@code vae} members as in a golden set's {@code configs}, or a
 * whole golden.json) and otherwise from the family's convention:
 * <ul>
 *   <li>UNet attention heads ({@code num_attention_heads}, or diffusers' legacy {@code attention_head_dim}, which
 *       holds the head count): 8 on every level for 1×1-conv projections (SD 1.x); channels / 64 for linear
 *       projections (SD 2.x and SDXL: head width 64, i.e. SD 2.x 5/10/20/20, SDXL 5/10/20), at least 1;</li>
 *   <li>text-tower heads ({@code num_attention_heads}): width / 64, at least 1 (CLIP-L 12, OpenCLIP-H 16, bigG 20);
 *       activation ({@code hidden_act}): quick_gelu for CLIP-L towers, exact gelu for OpenCLIP towers; LayerNorm
 *       eps 1e-5; token ids BOS 49406 / EOS 49407 (a config's {@code bos_token_id}/{@code eos_token_id} only when
 *       they are CLIP's special ids: transformers' defaults 0/2 are not tokenizer ids); padding 49407 for CLIP-L
 *       towers, 0 ({@code !}) for OpenCLIP towers;</li>
 *   <li>SDXL's time-id sinusoid width ({@code addition_time_embed_dim}): (label_emb input − pooled width) / 6
 *       (256 for SDXL base);</li>
 *   <li>GroupNorm 32 groups, eps 1e-5; VAE scaling factor 0.18215 (SD 1.x, SD 2.x) or 0.13025 (SDXL);</li>
 *   <li>the prediction type: see {@link PredictionType};</li>
 *   <li>the default latent edge ({@code sample_size}): 64 (512 px) for SD 1.x and SD 2.x epsilon models, 96
 *       (768 px) for SD 2.x v-prediction models, 128 (1024 px) for SDXL; smaller models (first level under 320
 *       channels) half their first level's channels, 16..64.</li>
 * </ul>
 */
public final class ModelConfigs {
    public static final String UNET = "model.diffusion_model.";
    public static final String VAE = "first_stage_model.";
    public static final String TEXT = "cond_stage_model.transformer.text_model.";
    /** SD 1.x's text encoder module (older files name its tensors without {@code text_model.}). */
    public static final String TEXT_PARENT = "cond_stage_model.transformer.";

    public static final int SD1_BOS = 49406;
    public static final int SD1_EOS = 49407;
    public static final int SD1_PAD = 49407;
    /** OpenCLIP towers pad with id 0 ({@code !}), as {@code open_clip.tokenize} does. */
    public static final int OPEN_CLIP_PAD = 0;
    public static final double SD1_SCALING_FACTOR = 0.18215;
    public static final double SDXL_SCALING_FACTOR = 0.13025;

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
        return new ModelConfig(ModelConfig.SD1, u, t, v);
    }

    /** The SDXL base 1.0 architecture (as read from {@code sdxl-full-layout.txt} with the SDXL conventions). */
    public static ModelConfig sdxlBase() {
        UNetConfig u = new UNetConfig(4, 4, List.of(320, 640, 1280), 2,
                List.of(false, true, true), List.of(true, true, false), true,
                List.of(5, 10, 20), 2048, true, List.of(0, 2, 10), 10, List.of(10, 2, 0), 32, 1e-5,
                PredictionType.EPSILON, 128, 256, 2816);
        TextEncoderConfig t1 = new TextEncoderConfig(49408, 768, 3072, 12, 12, 77, "quick_gelu", 1e-5,
                SD1_BOS, SD1_EOS, SD1_PAD, TextEncoderConfig.CLIP, ModelDetection.SDXL_TEXT1, 0);
        TextEncoderConfig t2 = new TextEncoderConfig(49408, 1280, 5120, 32, 20, 77, "gelu", 1e-5,
                SD1_BOS, SD1_EOS, OPEN_CLIP_PAD, TextEncoderConfig.OPEN_CLIP, ModelDetection.SDXL_TEXT2, 1280);
        VaeConfig v = new VaeConfig(3, 3, 4, List.of(128, 256, 512, 512), 2, 32, SDXL_SCALING_FACTOR);
        return new ModelConfig(ModelConfig.SDXL, u, List.of(t1, t2), v);
    }

    /** The SD 2.1 768-v architecture (OpenCLIP-H, 23 of whose 24 layers are used; v-prediction). */
    public static ModelConfig sd21v() {
        UNetConfig u = new UNetConfig(4, 4, List.of(320, 640, 1280, 1280), 2,
                List.of(true, true, true, false), List.of(false, true, true, true), true,
                List.of(5, 10, 20, 20), 1024, true, 1, 32, 1e-5, PredictionType.V, 96);
        TextEncoderConfig t = new TextEncoderConfig(49408, 1024, 4096, 24, 16, 77, "gelu", 1e-5,
                SD1_BOS, SD1_EOS, OPEN_CLIP_PAD, TextEncoderConfig.OPEN_CLIP, ModelDetection.SD2_TEXT, 1024);
        VaeConfig v = new VaeConfig(3, 3, 4, List.of(128, 256, 512, 512), 2, 32, SD1_SCALING_FACTOR);
        return new ModelConfig(ModelConfig.SD2, u, t, v);
    }

    /** Architecture from tensor shapes alone (family conventions for the rest). */
    public static ModelConfig fromShapes(Map<String, long[]> shapes) {
        return fromShapes(shapes, null);
    }

    /**
     * Architecture from tensor shapes, with {@code configJson} (may be null) for what shapes cannot tell.
     *
     * @throws IllegalArgumentException naming what was found when the shapes are not those of an SD 1.x, SD 2.x or
     *                                  SDXL base checkpoint, or naming what is missing or inconsistent
     */
    public static ModelConfig fromShapes(Map<String, long[]> shapes, JsonNode configJson) {
        ModelDetection.Result d = ModelDetection.detect(shapes.keySet());
        if (!d.ok()) {
            throw new IllegalArgumentException(d.refusal());
        }
        return fromShapes(d.family(), shapes, configJson);
    }

    /** Architecture of a checkpoint of a known family. */
    static ModelConfig fromShapes(String family, Map<String, long[]> shapes, JsonNode configJson) {
        JsonNode cfg = configs(configJson);
        List<TextEncoderConfig> towers = new ArrayList<>();
        switch (family) {
            case ModelConfig.SD1 -> towers.add(clipTower(shapes, TEXT, cfg.path("text_encoder"), cfg.path("tokenizer"),
                    SD1_PAD));
            case ModelConfig.SD2 -> towers.add(openClipTower(shapes, ModelDetection.SD2_TEXT, cfg.path("text_encoder"),
                    cfg.path("tokenizer")));
            case ModelConfig.SDXL -> {
                towers.add(clipTower(shapes, ModelDetection.SDXL_TEXT1, cfg.path("text_encoder"), cfg.path("tokenizer"),
                        SD1_PAD));
                towers.add(openClipTower(shapes, ModelDetection.SDXL_TEXT2, cfg.path("text_encoder_2"),
                        cfg.path("tokenizer_2")));
            }
            default -> throw new IllegalArgumentException("unknown family " + family);
        }
        String prediction = PredictionType.fromJson(configJson).orElse(
                shapes.containsKey(PredictionType.V_PRED_KEY) ? PredictionType.V : PredictionType.familyDefault(family));
        UNetConfig unet = unet(family, shapes, cfg.path("unet"), towers, prediction);
        VaeConfig vae = vae(family, shapes, cfg.path("vae"));
        int context = towers.stream().mapToInt(TextEncoderConfig::hiddenSize).sum();
        if (unet.crossAttentionDim() != context) {
            throw new IllegalArgumentException("UNet cross-attention width " + unet.crossAttentionDim()
                    + " differs from the text encoder" + (towers.size() > 1 ? "s' widths added, " : " width ") + context);
        }
        // inpainting UNets take more input channels (latent + masked-image latent + mask) but predict the latent
        if (unet.outChannels() != vae.latentChannels() || unet.inChannels() < vae.latentChannels()) {
            throw new IllegalArgumentException("UNet maps " + unet.inChannels() + " → " + unet.outChannels()
                    + " channels but the VAE latent has " + vae.latentChannels());
        }
        return new ModelConfig(family, unet, towers, vae);
    }

    /**
     * {@code c} with the prediction type {@code type}; an SD 2.x model's default size follows it (768-v: 768², else
     * 512²) unless {@code configJson} names a {@code sample_size}.
     */
    public static ModelConfig withPredictionType(ModelConfig c, String type, JsonNode configJson) {
        String t = PredictionType.check(type);
        UNetConfig u = c.unet().withPredictionType(t);
        if (!configs(configJson).path("unet").path("sample_size").isInt()) {
            u = u.withSampleSize(defaultSampleSize(c.family(), t, u.blockOutChannels().get(0)));
        }
        return new ModelConfig(c.family(), u, c.textEncoders(), c.vae());
    }

    /** The default latent edge of a family (see the class comment). */
    public static int defaultSampleSize(String family, String prediction, int firstLevelChannels) {
        if (firstLevelChannels < 320) {
            return Math.max(16, Math.min(64, firstLevelChannels / 2));
        }
        return switch (family) {
            case ModelConfig.SDXL -> 128;
            case ModelConfig.SD2 -> PredictionType.V.equals(prediction) ? 96 : 64;
            default -> 64;
        };
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

    static UNetConfig unet(String family, Map<String, long[]> s, JsonNode j, List<TextEncoderConfig> towers,
                           String prediction) {
        String p = UNET;
        long[] convIn = need(s, p + "input_blocks.0.0.weight", 4);
        int in = (int) convIn[1];
        int base = (int) convIn[0];
        int out = (int) need(s, p + "out.2.weight", 4)[0];
        List<Integer> channels = new ArrayList<>();
        List<Integer> depthDown = new ArrayList<>();
        int layersPerBlock = -1;
        int idx = 1;
        int ctx = -1;
        Boolean linear = null;
        while (true) {
            int res = 0;
            int levelCh = -1;
            int depth = -1;
            while (s.containsKey(p + "input_blocks." + idx + ".0.in_layers.2.weight")) {
                levelCh = (int) s.get(p + "input_blocks." + idx + ".0.in_layers.2.weight")[0];
                String tp = p + "input_blocks." + idx + ".1.";
                int d = s.containsKey(tp + "proj_in.weight") ? transformerDepth(s, tp) : 0;
                if (depth >= 0 && d != depth) {
                    throw new IllegalArgumentException("UNet level " + channels.size() + " has attentions of "
                            + depth + " and " + d + " transformer blocks (input_blocks." + idx + ".1): per-block depths "
                            + "are not supported");
                }
                depth = d;
                if (d > 0) {
                    linear = linear(s, tp, linear);
                    if (ctx < 0) {
                        ctx = (int) need(s, tp + "transformer_blocks.0.attn2.to_k.weight", 2)[1];
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
            depthDown.add(depth);
            if (s.containsKey(p + "input_blocks." + idx + ".0.op.weight")) {
                idx++;
            } else {
                break;
            }
        }
        int levels = channels.size();
        need(s, p + "middle_block.0.in_layers.2.weight", 4);
        int depthMid = s.containsKey(p + "middle_block.1.proj_in.weight") ? transformerDepth(s, p + "middle_block.1.") : 0;
        if (depthMid > 0) {
            linear = linear(s, p + "middle_block.1.", linear);
            if (ctx < 0) {
                ctx = (int) need(s, p + "middle_block.1.transformer_blocks.0.attn2.to_k.weight", 2)[1];
            }
        }
        List<Integer> depthUp = new ArrayList<>();
        for (int u = 0; u < levels; u++) {
            int depth = -1;
            for (int r = 0; r <= layersPerBlock; r++) {
                int k = u * (layersPerBlock + 1) + r;
                need(s, p + "output_blocks." + k + ".0.in_layers.2.weight", 4);
                String tp = p + "output_blocks." + k + ".1.";
                int d = s.containsKey(tp + "proj_in.weight") ? transformerDepth(s, tp) : 0;
                if (depth >= 0 && d != depth) {
                    throw new IllegalArgumentException("UNet up level " + u + " has attentions of " + depth + " and "
                            + d + " transformer blocks (output_blocks." + k + ".1): per-block depths are not supported");
                }
                depth = d;
                if (d > 0) {
                    linear = linear(s, tp, linear);
                }
            }
            depthUp.add(depth);
        }
        if (s.containsKey(p + "output_blocks." + levels * (layersPerBlock + 1) + ".0.in_layers.2.weight")) {
            throw new IllegalArgumentException("UNet has more output blocks than " + levels + " levels × "
                    + (layersPerBlock + 1));
        }
        if (ctx < 0) {
            throw new IllegalArgumentException("UNet has no cross-attention block: not an SD-style text-conditioned UNet");
        }
        boolean useLinear = Boolean.TRUE.equals(linear);
        List<Integer> heads = heads(useLinear, j, channels);
        int groups = j.path("norm_num_groups").asInt(32);
        double eps = j.path("norm_eps").asDouble(1e-5);
        int addIn = 0;
        int addTime = 0;
        if (s.containsKey(p + "label_emb.0.0.weight")) {
            long[] le = need(s, p + "label_emb.0.0.weight", 2);
            need(s, p + "label_emb.0.2.weight", 2);
            if (le[0] != (long) base * 4) {
                throw new IllegalArgumentException("label_emb.0.0 maps to " + le[0] + ", the time embedding has " + base * 4);
            }
            addIn = (int) le[1];
            int pooled = towers.get(towers.size() - 1).projectionDim();
            if (j.path("addition_time_embed_dim").isInt()) {
                addTime = j.get("addition_time_embed_dim").asInt();
            } else if ((addIn - pooled) % UNetConfig.TIME_IDS == 0) {
                addTime = (addIn - pooled) / UNetConfig.TIME_IDS;
            }
            if (pooled <= 0 || addTime <= 0 || addTime % 2 != 0 || pooled + UNetConfig.TIME_IDS * addTime != addIn) {
                throw new IllegalArgumentException("label_emb takes " + addIn + " inputs, which is not the pooled text "
                        + "embedding (" + pooled + ") plus " + UNetConfig.TIME_IDS + " time-id sinusoids of an even width"
                        + " (an SDXL refiner has 5 time ids)");
            }
        }
        int sampleSize = j.path("sample_size").isInt() ? j.get("sample_size").asInt()
                : defaultSampleSize(family, prediction, base);
        List<Boolean> attnDown = depthDown.stream().map(d -> d > 0).toList();
        List<Boolean> attnUp = depthUp.stream().map(d -> d > 0).toList();
        return new UNetConfig(in, out, channels, layersPerBlock, attnDown, attnUp, depthMid > 0, heads, ctx, useLinear,
                depthDown, depthMid, depthUp, groups, eps, prediction, sampleSize, addTime, addIn);
    }

    private static int transformerDepth(Map<String, long[]> s, String tp) {
        return count(s, tp + "transformer_blocks.", ".attn1.to_q.weight");
    }

    private static Boolean linear(Map<String, long[]> s, String tp, Boolean before) {
        boolean l = s.get(tp + "proj_in.weight").length == 2;
        if (before != null && before != l) {
            throw new IllegalArgumentException("UNet mixes linear and 1×1-conv attention projections (" + tp + "proj_in)");
        }
        return l;
    }

    /**
     * diffusers' UNet2DConditionModel uses {@code num_attention_heads or attention_head_dim} as the number of heads
     * (the legacy name): an int for every level or a list per level. Without a config: 8 for 1×1-conv projections
     * (SD 1.x), channels / 64 for linear projections (SD 2.x, SDXL).
     */
    private static List<Integer> heads(boolean linear, JsonNode j, List<Integer> channels) {
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

    // ---------------------------------------------------------------- text towers

    /** A CLIP text transformer in transformers' names under {@code p} (SD 1.x; SDXL's first tower). */
    static TextEncoderConfig clipTower(Map<String, long[]> s, String p, JsonNode j, JsonNode tok, int defaultPad) {
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
        return tower(j, tok, vocab, width, inter, layers, positions, "quick_gelu", defaultPad, TextEncoderConfig.CLIP, p, 0);
    }

    /** An OpenCLIP text tower in OpenCLIP's names under {@code p} (SD 2.x; SDXL's second tower). */
    static TextEncoderConfig openClipTower(Map<String, long[]> s, String p, JsonNode j, JsonNode tok) {
        long[] emb = need(s, p + "token_embedding.weight", 2);
        int vocab = (int) emb[0];
        int width = (int) emb[1];
        long[] pos = need(s, p + "positional_embedding", 2);
        if (pos[1] != width) {
            throw new IllegalArgumentException(p + "positional_embedding is " + Arrays.toString(pos) + " for width " + width);
        }
        int layers = count(s, p + "transformer.resblocks.", ".attn.in_proj_weight");
        if (layers == 0) {
            throw new IllegalArgumentException("text encoder has no layers (" + p + "transformer.resblocks.0.*)");
        }
        long[] inProj = need(s, p + "transformer.resblocks.0.attn.in_proj_weight", 2);
        if (inProj[0] != 3L * width || inProj[1] != width) {
            throw new IllegalArgumentException(p + "transformer.resblocks.0.attn.in_proj_weight is "
                    + Arrays.toString(inProj) + ", expected [" + 3 * width + ", " + width + "] (q; k; v stacked)");
        }
        int inter = (int) need(s, p + "transformer.resblocks.0.mlp.c_fc.weight", 2)[0];
        need(s, p + "ln_final.weight", 1);
        int proj = 0;
        if (s.containsKey(p + "text_projection")) {
            long[] tp = need(s, p + "text_projection", 2);
            if (tp[0] != width) {
                throw new IllegalArgumentException(p + "text_projection is " + Arrays.toString(tp)
                        + ", expected [" + width + ", projection] (applied as x @ P)");
            }
            proj = (int) tp[1];
        }
        return tower(j, tok, vocab, width, inter, layers, (int) pos[0], "gelu", OPEN_CLIP_PAD,
                TextEncoderConfig.OPEN_CLIP, p, proj);
    }

    private static TextEncoderConfig tower(JsonNode j, JsonNode tok, int vocab, int width, int inter, int layers,
                                           int positions, String defaultAct, int defaultPad, String layout, String prefix,
                                           int proj) {
        int heads = j.path("num_attention_heads").asInt(Math.max(1, width / 64));
        if (heads <= 0 || width % heads != 0) {
            throw new IllegalArgumentException("text encoder width " + width + " not divisible into " + heads + " heads");
        }
        String act = text(j, "hidden_act", defaultAct);
        double eps = j.path("layer_norm_eps").asDouble(1e-5);
        int bos = specialId(tok.path("bos_token_id").asInt(j.path("bos_token_id").asInt(-1)), vocab, SD1_BOS);
        int eos = specialId(tok.path("eos_token_id").asInt(j.path("eos_token_id").asInt(-1)), vocab, SD1_EOS);
        // the text encoder's own pad_token_id (1 in transformers' configs) is not what the tokenizer pads with
        int pad = tok.path("pad_token_id").asInt(defaultPad);
        return new TextEncoderConfig(vocab, width, inter, layers, heads, positions, act, eps, bos, eos, pad, layout,
                prefix, proj);
    }

    /** A configured BOS/EOS id if it is one of CLIP's special ids (the last two of the vocabulary), else CLIP's. */
    private static int specialId(int configured, int vocab, int clip) {
        return configured >= vocab - 2 && configured < vocab ? configured : clip;
    }

    // ---------------------------------------------------------------- VAE

    static VaeConfig vae(String family, Map<String, long[]> s, JsonNode j) {
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
        double dflt = ModelConfig.SDXL.equals(family) ? SDXL_SCALING_FACTOR : SD1_SCALING_FACTOR;
        double scaling = j.path("scaling_factor").isNumber() ? j.get("scaling_factor").asDouble() : dflt;
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
     * A diffusers-style config JSON ({@code unet} / {@code text_encoder} / {@code text_encoder_2} / {@code vae}
     * objects, diffusers names) that {@link #fromShapes(Map, JsonNode)} reads back to {@code c} for a checkpoint of
     * that architecture.
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
        List<Integer> depths = u.diffusersTransformerLayers();
        if (depths.stream().distinct().count() == 1) {
            un.put("transformer_layers_per_block", depths.get(0));
        } else {
            var d = un.putArray("transformer_layers_per_block");
            depths.forEach(d::add);
        }
        if (u.attentionHeads().stream().distinct().count() == 1) {
            un.put("attention_head_dim", u.attentionHeads().get(0));
        } else {
            var h = un.putArray("attention_head_dim");
            u.attentionHeads().forEach(h::add);
        }
        un.put("use_linear_projection", u.useLinearProjection());
        if (u.hasAddedConditioning()) {
            un.put("addition_embed_type", "text_time");
            un.put("addition_time_embed_dim", u.addTimeEmbedDim());
            un.put("projection_class_embeddings_input_dim", u.addEmbedInputDim());
        }
        un.put("prediction_type", u.predictionType());
        for (int i = 0; i < c.textEncoders().size(); i++) {
            TextEncoderConfig t = c.textEncoders().get(i);
            String suffix = i == 0 ? "" : "_" + (i + 1);
            var te = root.putObject("text_encoder" + suffix);
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
            if (t.projectionDim() > 0) {
                te.put("projection_dim", t.projectionDim());
            }
            var tok = root.putObject("tokenizer" + suffix);
            tok.put("bos_token_id", t.bosToken());
            tok.put("eos_token_id", t.eosToken());
            tok.put("pad_token_id", t.padToken());
        }
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
