package dev.sdserve.engine;

/**
 * SDXL's micro-conditioning, in pixels: the original image size, the crop's top-left corner, the target size. The
 * UNet gets them as six time ids {@code [original_h, original_w, crop_top, crop_left, target_h, target_w]}; diffusers
 * and AUTOMATIC1111 default original and target to the image size and the crop to (0, 0) ({@link #of}).
 */
public record SizeConditioning(int originalHeight, int originalWidth, int cropTop, int cropLeft, int targetHeight,
                               int targetWidth) {
    public SizeConditioning {
        if (originalHeight <= 0 || originalWidth <= 0 || targetHeight <= 0 || targetWidth <= 0) {
            throw new IllegalArgumentException("original and target sizes must be positive, got " + originalHeight + "x"
                    + originalWidth + " and " + targetHeight + "x" + targetWidth);
        }
        if (cropTop < 0 || cropLeft < 0) {
            throw new IllegalArgumentException("crop coordinates must not be negative, got (" + cropTop + ", " + cropLeft + ")");
        }
    }

    /** The default for an image of {@code height × width}: original = target = the image size, no crop. */
    public static SizeConditioning of(int height, int width) {
        return new SizeConditioning(height, width, 0, 0, height, width);
    }

    /** The six time ids in the UNet's order. */
    public float[] timeIds() {
        return new float[]{originalHeight, originalWidth, cropTop, cropLeft, targetHeight, targetWidth};
    }
}
