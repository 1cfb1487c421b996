package dev.sdserve.model;

import java.util.List;

/**
 * Architecture of an SD-style UNet (diffusers names). Read from tensor shapes, with what shapes cannot tell
 * (attention heads) from a config JSON or the family's convention.
 *
 * @param blockOutChannels      channels per level, e.g. [320, 640, 1280, 1280]
 * @param layersPerBlock        res blocks per down level (up levels have one more)
 * @param crossAttnDown         per down level: has attention
 * @param crossAttnUp           per up level (in up order, deepest first): has attention
 * @param midAttention          the middle block has attention
 * @param attentionHeads        heads per level (SD 1.x: 8 everywhere)
 * @param crossAttentionDim     width of the text conditioning
 * @param useLinearProjection   proj_in/proj_out are Linear (SD 2.x) rather than 1×1 conv (SD 1.x)
 * @param transformerLayers     transformer blocks per attention (1 for SD 1.x/2.x)
 * @param normGroups            GroupNorm groups (32)
 * @param normEps               GroupNorm epsilon (1e-5)
 * @param predictionType        "epsilon" or "v_prediction"
 * @param sampleSize            default latent edge (64 for SD 1.5)
 */
public record UNetConfig(int inChannels, int outChannels, List<Integer> blockOutChannels, int layersPerBlock,
                         List<Boolean> crossAttnDown, List<Boolean> crossAttnUp, boolean midAttention,
                         List<Integer> attentionHeads, int crossAttentionDim, boolean useLinearProjection,
                         int transformerLayers, int normGroups, double normEps, String predictionType,
                         int sampleSize) {
    public UNetConfig {
        blockOutChannels = List.copyOf(blockOutChannels);
        crossAttnDown = List.copyOf(crossAttnDown);
        crossAttnUp = List.copyOf(crossAttnUp);
        attentionHeads = List.copyOf(attentionHeads);
    }

    public int levels() {
        return blockOutChannels.size();
    }

    /** Time embedding width (4 × first level channels). */
    public int timeEmbedDim() {
        return blockOutChannels.get(0) * 4;
    }
}
