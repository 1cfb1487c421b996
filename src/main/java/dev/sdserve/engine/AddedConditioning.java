package dev.sdserve.engine;

/**
 * The conditioning an SDXL UNet adds to its timestep embedding for one sample (of a guided pair, one side): the
 * pooled text embedding and the size conditioning. SD 1.x / 2.x UNets take none.
 */
public record AddedConditioning(float[] pooled, SizeConditioning size) {
    public AddedConditioning {
        if (pooled == null || size == null) {
            throw new IllegalArgumentException("added conditioning needs a pooled embedding and a size");
        }
    }

    /** From a prompt's conditioning (which must carry a pooled embedding) and a size. */
    public static AddedConditioning of(Conditioning c, SizeConditioning size) {
        if (c.pooled() == null) {
            throw new IllegalArgumentException("the conditioning has no pooled embedding (not an SDXL model's)");
        }
        return new AddedConditioning(c.pooled(), size);
    }
}
