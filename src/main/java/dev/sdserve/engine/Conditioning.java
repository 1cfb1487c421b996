package dev.sdserve.engine;

/**
 * What a prompt's text encoding gives the UNet: the context it cross-attends to ({@code tokens × width} floats,
 * row-major) and, for SDXL, the pooled text embedding (the second tower's projected end-of-text state, which the
 * UNet's added conditioning takes with the size conditioning; null for SD 1.x / 2.x).
 */
public record Conditioning(float[] context, float[] pooled) {
    public Conditioning {
        if (context == null) {
            throw new IllegalArgumentException("a conditioning needs a context");
        }
    }

    /** A context alone (SD 1.x / 2.x). */
    public static Conditioning of(float[] context) {
        return new Conditioning(context, null);
    }
}
