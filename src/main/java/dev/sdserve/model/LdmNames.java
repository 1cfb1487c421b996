package dev.sdserve.model;

import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Module names of an SD UNet in both namings: diffusers' ({@code down_blocks.1.attentions.0.proj_in}) and the
 * original LDM/SGM one ({@code input_blocks.4.1.proj_in}), for a given architecture; and the text towers' kohya
 * names (transformers' names, the same in both for CLIP-L towers; mapped onto OpenCLIP's for OpenCLIP towers).
 */
public final class LdmNames {
    private static final Map<String, String> RESNET_LDM_TO_DIFFUSERS = Map.of(
            "in_layers.0", "norm1", "in_layers.2", "conv1", "emb_layers.1", "time_emb_proj",
            "out_layers.0", "norm2", "out_layers.3", "conv2", "skip_connection", "conv_shortcut");

    private LdmNames() {
    }

    /** A block-level correspondence: LDM module prefix → diffusers prefix, and whether it is a resnet. */
    private record Block(String diffusers, boolean resnet) {
    }

    /** LDM block prefixes (without {@code model.diffusion_model.}) → diffusers block, for {@code u}. */
    private static Map<String, Block> unetBlocks(UNetConfig u) {
        Map<String, Block> m = new HashMap<>();
        int lpb = u.layersPerBlock();
        int levels = u.levels();
        m.put("input_blocks.0.0", new Block("conv_in", false));
        m.put("time_embed.0", new Block("time_embedding.linear_1", false));
        m.put("time_embed.2", new Block("time_embedding.linear_2", false));
        m.put("label_emb.0.0", new Block("add_embedding.linear_1", false));
        m.put("label_emb.0.2", new Block("add_embedding.linear_2", false));
        m.put("out.0", new Block("conv_norm_out", false));
        m.put("out.2", new Block("conv_out", false));
        for (int i = 0; i < levels; i++) {
            for (int j = 0; j < lpb; j++) {
                int k = 1 + i * (lpb + 1) + j;
                m.put("input_blocks." + k + ".0", new Block("down_blocks." + i + ".resnets." + j, true));
                m.put("input_blocks." + k + ".1", new Block("down_blocks." + i + ".attentions." + j, false));
            }
            if (i < levels - 1) {
                m.put("input_blocks." + (1 + i * (lpb + 1) + lpb) + ".0.op",
                        new Block("down_blocks." + i + ".downsamplers.0.conv", false));
            }
        }
        m.put("middle_block.0", new Block("mid_block.resnets.0", true));
        if (u.midAttention()) {
            m.put("middle_block.1", new Block("mid_block.attentions.0", false));
            m.put("middle_block.2", new Block("mid_block.resnets.1", true));
        } else {
            m.put("middle_block.1", new Block("mid_block.resnets.1", true));
        }
        for (int i = 0; i < levels; i++) {
            for (int j = 0; j <= lpb; j++) {
                int k = i * (lpb + 1) + j;
                m.put("output_blocks." + k + ".0", new Block("up_blocks." + i + ".resnets." + j, true));
                m.put("output_blocks." + k + ".1", new Block("up_blocks." + i + ".attentions." + j, false));
            }
            if (i < levels - 1) {
                int k = i * (lpb + 1) + lpb;
                int sub = u.crossAttnUp().get(i) ? 2 : 1;
                m.put("output_blocks." + k + "." + sub + ".conv", new Block("up_blocks." + i + ".upsamplers.0.conv", false));
            }
        }
        return m;
    }

    /**
     * The diffusers module path of an LDM UNet module path (both without the parameter suffix and without
     * {@code model.diffusion_model.}), or null if it is not a module of this architecture.
     */
    public static String unetToDiffusers(UNetConfig u, String ldmModule) {
        return toDiffusers(unetBlocks(u), ldmModule);
    }

    private static String toDiffusers(Map<String, Block> blocks, String ldmModule) {
        String[] parts = ldmModule.split("\\.");
        for (int n = parts.length; n >= 1; n--) {
            String prefix = String.join(".", List.of(parts).subList(0, n));
            Block b = blocks.get(prefix);
            if (b == null) {
                continue;
            }
            String rest = String.join(".", List.of(parts).subList(n, parts.length));
            if (b.resnet()) {
                String r = RESNET_LDM_TO_DIFFUSERS.get(rest);
                return r == null ? null : b.diffusers() + "." + r;
            }
            return rest.isEmpty() ? b.diffusers() : b.diffusers() + "." + rest;
        }
        return null;
    }

    /** Where a kohya module lands: the weight key and the rows of it the module's up matrix covers. */
    public record Target(String key, int rowStart, int rows) {
    }

    /**
     * Every weight module with a 2-D or 4-D weight (linear / conv) of the checkpoint, keyed by its kohya LoRA name
     * ({@code lora_unet_<diffusers path with _>}, also {@code lora_unet_<LDM/SGM path with _>}; SD 1.x
     * {@code lora_te_<text_model path with _>}; SDXL {@code lora_te1_}/{@code lora_te2_}; SD 2.x and SDXL's OpenCLIP
     * tower under transformers' names), valued by the LDM weight key it modifies. A q/k/v module of an OpenCLIP
     * tower maps to its fused {@code in_proj_weight}: see {@link #kohyaTargetRows}.
     */
    public static Map<String, String> kohyaTargets(ModelConfig c) {
        Map<String, String> out = new LinkedHashMap<>();
        kohyaTargetRows(c).forEach((k, t) -> out.put(k, t.key()));
        return out;
    }

    /**
     * As {@link #kohyaTargets}, with the rows each module covers: all of them, except for an OpenCLIP tower's
     * {@code self_attn_q_proj}/{@code k_proj}/{@code v_proj}, which are rows [0, w), [w, 2w), [2w, 3w) of
     * {@code resblocks.N.attn.in_proj_weight} (w the tower's width); {@code out_proj} → {@code attn.out_proj},
     * {@code mlp_fc1} → {@code mlp.c_fc}, {@code mlp_fc2} → {@code mlp.c_proj}.
     */
    public static Map<String, Target> kohyaTargetRows(ModelConfig c) {
        Map<String, Target> out = new LinkedHashMap<>();
        Map<String, Block> blocks = unetBlocks(c.unet());
        for (CheckpointLayout.Entry e : CheckpointLayout.unet(c.unet(), DType.F32)) {
            if (!e.name().endsWith(".weight") || e.shape().length < 2) {
                continue;
            }
            String ldmModule = e.name().substring(ModelConfigs.UNET.length(), e.name().length() - ".weight".length());
            String diff = toDiffusers(blocks, ldmModule);
            Target all = new Target(e.name(), 0, (int) e.shape()[0]);
            if (diff != null) {
                out.put("lora_unet_" + diff.replace('.', '_'), all);
            }
            out.putIfAbsent("lora_unet_" + ldmModule.replace('.', '_'), all);
        }
        List<TextEncoderConfig> towers = c.textEncoders();
        for (int i = 0; i < towers.size(); i++) {
            TextEncoderConfig t = towers.get(i);
            String kohya = towers.size() == 1 ? "lora_te_" : "lora_te" + (i + 1) + "_";
            if (t.openClip()) {
                openClipTargets(t, kohya, out);
                continue;
            }
            // kohya names the module path from text_model. on: strip the file's prefix up to "text_model."
            String parent = t.prefix().substring(0, t.prefix().length() - "text_model.".length());
            for (CheckpointLayout.Entry e : CheckpointLayout.tower(t, DType.F32, false)) {
                if (!e.name().endsWith(".weight") || e.shape().length < 2 || e.name().contains("embeddings.")) {
                    continue;
                }
                String module = e.name().substring(parent.length(), e.name().length() - ".weight".length());
                out.put(kohya + module.replace('.', '_'), new Target(e.name(), 0, (int) e.shape()[0]));
            }
        }
        return out;
    }

    private static void openClipTargets(TextEncoderConfig t, String kohya, Map<String, Target> out) {
        int w = t.hiddenSize();
        for (int l = 0; l < t.layers(); l++) {
            String k = kohya + "text_model_encoder_layers_" + l + "_";
            String b = t.prefix() + "transformer.resblocks." + l + ".";
            String[] qkv = {"q_proj", "k_proj", "v_proj"};
            for (int j = 0; j < 3; j++) {
                out.put(k + "self_attn_" + qkv[j], new Target(b + "attn.in_proj_weight", j * w, w));
            }
            out.put(k + "self_attn_out_proj", new Target(b + "attn.out_proj.weight", 0, w));
            out.put(k + "mlp_fc1", new Target(b + "mlp.c_fc.weight", 0, t.intermediateSize()));
            out.put(k + "mlp_fc2", new Target(b + "mlp.c_proj.weight", 0, w));
        }
    }
}
