package dev.sdserve.model;

import java.util.Collections;
import java.util.List;

/**
 * Architecture of an SD-style UNet (diffusers names). Read from tensor shapes, with what shapes cannot tell
 * (attention heads, prediction type) from a config JSON or the family's convention ({@link ModelConfigs}).
 *
 * @param blockOutChannels      channels per level, e.g. [320, 640, 1280, 1280]
 * @param layersPerBlock        res blocks per down level (up levels have one more)
 * @param crossAttnDown         per down level: has attention
 * @param crossAttnUp           per up level (in up order, deepest first): has attention
 * @param midAttention          the middle block has attention
 * @param attentionHeads        heads per level (SD 1.x: 8 everywhere; SD 2.x / SDXL: channels / 64)
 * @param crossAttentionDim     width of the text conditioning (SDXL: the two towers' widths added)
 * @param useLinearProjection   proj_in/proj_out are Linear (SD 2.x, SDXL) rather than 1×1 conv (SD 1.x)
 * @param depthDown             transformer blocks per attention of each down level (0 where a level has none;
 *                              SDXL base: 0, 2, 10)
 * @param depthMid              transformer blocks of the middle attention (0 without one)
 * @param depthUp               transformer blocks per attention of each up level, in up order (SDXL: 10, 2, 0)
 * @param normGroups            GroupNorm groups (32)
 * @param normEps               GroupNorm epsilon (1e-5)
 * @param predictionType        "epsilon" or "v_prediction" (not in the weights: see {@link PredictionType})
 * @param sampleSize            default latent edge (64 for SD 1.5, 96 for SD 2.x 768-v, 128 for SDXL)
 * @param addTimeEmbedDim       SDXL's micro-conditioning: width of each time id's sinusoid (256; 0 = no
 *                              added conditioning)
 * @param addEmbedInputDim      input width of {@code label_emb} = pooled text width + 6 × addTimeEmbedDim (2816
 *                              for SDXL base; 0 = none)
 */
public record UNetConfig(int inChannels, int outChannels, List<Integer> blockOutChannels, int layersPerBlock,
                         List<Boolean> crossAttnDown, List<Boolean> crossAttnUp, boolean midAttention,
                         List<Integer> attentionHeads, int crossAttentionDim, boolean useLinearProjection,
                         List<Integer> depthDown, int depthMid, List<Integer> depthUp,
                         int normGroups, double normEps, String predictionType, int sampleSize,
                         int addTimeEmbedDim, int addEmbedInputDim) {
    /** Micro-conditioning time ids of SDXL base: original size (h, w), crop (top, left), target size (h, w). */
    public static final int TIME_IDS = 6;

    public UNetConfig {
        blockOutChannels = List.copyOf(blockOutChannels);
        crossAttnDown = List.copyOf(crossAttnDown);
        crossAttnUp = List.copyOf(crossAttnUp);
        attentionHeads = List.copyOf(attentionHeads);
        depthDown = List.copyOf(depthDown);
        depthUp = List.copyOf(depthUp);
        int levels = blockOutChannels.size();
        if (crossAttnDown.size() != levels || crossAttnUp.size() != levels || attentionHeads.size() != levels
                || depthDown.size() != levels || depthUp.size() != levels) {
            throw new IllegalArgumentException("UNet config lists must have one entry per level (" + levels + ")");
        }
        for (int l = 0; l < levels; l++) {
            if (crossAttnDown.get(l) != depthDown.get(l) > 0 || crossAttnUp.get(l) != depthUp.get(l) > 0) {
                throw new IllegalArgumentException("UNet level " + l + ": attention flags and transformer depths disagree");
            }
        }
        if (midAttention != depthMid > 0) {
            throw new IllegalArgumentException("UNet middle block: attention flag and transformer depth disagree");
        }
    }

    /** An SD 1.x/2.x UNet: {@code transformerLayers} blocks in every attention, no added conditioning. */
    public UNetConfig(int inChannels, int outChannels, List<Integer> blockOutChannels, int layersPerBlock,
                      List<Boolean> crossAttnDown, List<Boolean> crossAttnUp, boolean midAttention,
                      List<Integer> attentionHeads, int crossAttentionDim, boolean useLinearProjection,
                      int transformerLayers, int normGroups, double normEps, String predictionType, int sampleSize) {
        this(inChannels, outChannels, blockOutChannels, layersPerBlock, crossAttnDown, crossAttnUp, midAttention,
                attentionHeads, crossAttentionDim, useLinearProjection, depths(crossAttnDown, transformerLayers),
                midAttention ? transformerLayers : 0, depths(crossAttnUp, transformerLayers), normGroups, normEps,
                predictionType, sampleSize, 0, 0);
    }

    private static List<Integer> depths(List<Boolean> attn, int depth) {
        return attn.stream().map(a -> a ? depth : 0).toList();
    }

    public int levels() {
        return blockOutChannels.size();
    }

    /** Time embedding width (4 × first level channels). */
    public int timeEmbedDim() {
        return blockOutChannels.get(0) * 4;
    }

    /**
     * The transformer depth when every attention has the same (SD 1.x/2.x: 1), else the largest (SDXL base: 10).
     */
    public int transformerLayers() {
        int max = depthMid;
        for (int d : depthDown) {
            max = Math.max(max, d);
        }
        for (int d : depthUp) {
            max = Math.max(max, d);
        }
        return max;
    }

    /** SDXL's added conditioning ({@code label_emb}: pooled text embedding and time ids). */
    public boolean hasAddedConditioning() {
        return addEmbedInputDim > 0;
    }

    /** Width of the pooled text embedding {@code label_emb} takes (0 without added conditioning). */
    public int pooledDim() {
        return hasAddedConditioning() ? addEmbedInputDim - TIME_IDS * addTimeEmbedDim : 0;
    }

    /** This config with another prediction type (the only thing a checkpoint's weights cannot tell). */
    public UNetConfig withPredictionType(String type) {
        return new UNetConfig(inChannels, outChannels, blockOutChannels, layersPerBlock, crossAttnDown, crossAttnUp,
                midAttention, attentionHeads, crossAttentionDim, useLinearProjection, depthDown, depthMid, depthUp,
                normGroups, normEps, PredictionType.check(type), sampleSize, addTimeEmbedDim, addEmbedInputDim);
    }

    /** This config with another default latent edge. */
    public UNetConfig withSampleSize(int size) {
        return new UNetConfig(inChannels, outChannels, blockOutChannels, layersPerBlock, crossAttnDown, crossAttnUp,
                midAttention, attentionHeads, crossAttentionDim, useLinearProjection, depthDown, depthMid, depthUp,
                normGroups, normEps, predictionType, size, addTimeEmbedDim, addEmbedInputDim);
    }

    /** The down levels' depths as diffusers' {@code transformer_layers_per_block} (1 where a level has none). */
    public List<Integer> diffusersTransformerLayers() {
        return Collections.unmodifiableList(depthDown.stream().map(d -> Math.max(1, d)).toList());
    }
}
