package dev.sdserve.engine;

import java.util.List;

/** A UNet batch: one model, one latent shape, any mix of timesteps, guidance scales and LoRAs. */
public record DenoiseBatch(String model, LatentShape shape, List<DenoiseItem> items) {
    public DenoiseBatch {
        items = List.copyOf(items);
        for (DenoiseItem it : items) {
            if (it.latentInput().length != shape.size()) {
                throw new IllegalArgumentException("latent of " + it.latentInput().length + " floats in a batch of shape " + shape);
            }
        }
    }

    /** Samples the UNet actually runs (guided items count twice). */
    public int unetSamples() {
        int n = 0;
        for (DenoiseItem it : items) {
            n += it.guided() && it.guidance() != 1.0 ? 2 : 1;
        }
        return n;
    }
}
