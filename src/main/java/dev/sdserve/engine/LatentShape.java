package dev.sdserve.engine;

/** Shape of one latent sample (no batch dimension). */
public record LatentShape(int channels, int height, int width) {
    public LatentShape {
        if (channels <= 0 || height <= 0 || width <= 0) {
            throw new IllegalArgumentException("latent shape must be positive: " + channels + "x" + height + "x" + width);
        }
    }

    public int size() {
        return channels * height * width;
    }

    public static LatentShape forImage(ModelInfo info, int imageWidth, int imageHeight) {
        return new LatentShape(info.latentChannels(), imageHeight / info.vaeScale(), imageWidth / info.vaeScale());
    }
}
