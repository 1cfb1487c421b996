package dev.sdserve.job;

/**
 * Decodes and prepares the images of a request (implemented by the image room, used by admission, so a bad image is
 * refused before a job exists). Failures are {@link ServeException} INVALID_ARGUMENT naming the field.
 */
public interface ImagePreparer {
    /** A decoded image: its size (and pixels, for {@link #prepare}). */
    interface Decoded {
        int width();

        int height();
    }

    /**
     * Decodes PNG, JPEG or WebP bytes.
     *
     * @param field     the request field, for errors
     * @param maxPixels the most pixels accepted (checked from the header before decoding)
     */
    Decoded decode(byte[] bytes, String field, long maxPixels);

    /**
     * Resizes the init image (and mask, null for img2img) to {@code width × height}, a multiple of {@code vaeScale},
     * and prepares the mask as {@link PreparedImage} describes.
     */
    PreparedImage prepare(Decoded init, Decoded mask, int width, int height, int vaeScale, ImageOptions options);
}
