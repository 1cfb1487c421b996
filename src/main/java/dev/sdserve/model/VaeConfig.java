package dev.sdserve.model;

import java.util.List;

/**
 * The autoencoder (diffusers AutoencoderKL names).
 *
 * @param blockOutChannels e.g. [128, 256, 512, 512]
 * @param layersPerBlock   res blocks per encoder level (decoder levels have one more)
 * @param scalingFactor    0.18215 for SD 1.x
 */
public record VaeConfig(int inChannels, int outChannels, int latentChannels, List<Integer> blockOutChannels,
                        int layersPerBlock, int normGroups, double scalingFactor) {
    public VaeConfig {
        blockOutChannels = List.copyOf(blockOutChannels);
    }

    /** Pixels per latent cell: 2^(levels − 1). */
    public int downscale() {
        return 1 << (blockOutChannels.size() - 1);
    }
}
