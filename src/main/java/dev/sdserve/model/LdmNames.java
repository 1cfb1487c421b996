package dev.sdserve.model;

import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Module names of an SD 1.x UNet in both namings: diffusers' ({@code down_blocks.1.attentions.0.proj_in}) and the
 * original LDM one ({@code input_blocks.4.1.proj_in}), for a given architecture; and the text encoder's (the same
 * in both, under {@code cond_stage_model.transformer.} in LDM files).
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

    /**
     * Every weight module with a 2-D or 4-D weight (linear / conv) of the checkpoint, keyed by its kohya LoRA name
     * ({@code lora_unet_<diffusers path with _>}, also the older {@code lora_unet_<LDM path with _>}, and
     * {@code lora_te_<text_model path with _>}), valued by the LDM weight key it modifies.
     */
    public static Map<String, String> kohyaTargets(ModelConfig c) {
        Map<String, String> out = new LinkedHashMap<>();
        Map<String, Block> blocks = unetBlocks(c.unet());
        for (CheckpointLayout.Entry e : CheckpointLayout.unet(c.unet(), DType.F32)) {
            if (!e.name().endsWith(".weight") || e.shape().length < 2) {
                continue;
            }
            String ldmModule = e.name().substring(ModelConfigs.UNET.length(), e.name().length() - ".weight".length());
            String diff = toDiffusers(blocks, ldmModule);
            if (diff != null) {
                out.put("lora_unet_" + diff.replace('.', '_'), e.name());
            }
            out.putIfAbsent("lora_unet_" + ldmModule.replace('.', '_'), e.name());
        }
        for (CheckpointLayout.Entry e : CheckpointLayout.textEncoder(c.textEncoder(), DType.F32)) {
            if (!e.name().endsWith(".weight") || e.shape().length < 2 || e.name().contains("embeddings.")) {
                continue;
            }
            String module = e.name().substring("cond_stage_model.transformer.".length(), e.name().length() - ".weight".length());
            out.put("lora_te_" + module.replace('.', '_'), e.name());
        }
        return out;
    }
}
