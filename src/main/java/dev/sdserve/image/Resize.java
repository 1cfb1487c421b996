package dev.sdserve.image;

import dev.sdserve.job.ImageOptions;

/**
 * AUTOMATIC1111's img2img resize modes ({@code modules/images.py resize_image}, Lanczos, no upscaler), on
 * {@link PilResample}, Pillow's resampling reproduced exactly:
 * <ul>
 *   <li>0 "Just resize": stretch to the target size;</li>
 *   <li>1 "Crop and resize": scale to cover the target keeping the aspect ratio, centre, crop the excess;</li>
 *   <li>2 "Resize and fill": scale to fit inside, centre, fill the bands on either side from the image's edge
 *       (the image's edge resampled across the band with Pillow's default bicubic filter, as A1111 does).</li>
 * </ul>
 */
public final class Resize {
    public static final int JUST_RESIZE = ImageOptions.JUST_RESIZE;
    public static final int CROP_AND_RESIZE = ImageOptions.CROP_AND_RESIZE;
    public static final int RESIZE_AND_FILL = ImageOptions.RESIZE_AND_FILL;

    private Resize() {
    }

    /** Resizes {@code im} to {@code width × height} with resize mode 0, 1 or 2. */
    public static Image8 apply(int mode, Image8 im, int width, int height) {
        ImageOptions.resizeModeName(mode);
        if (mode == JUST_RESIZE) {
            return PilResample.lanczos(im, width, height);
        }
        double ratio = (double) width / height;
        double srcRatio = (double) im.width() / im.height();
        int srcW, srcH;
        if (mode == CROP_AND_RESIZE) {
            srcW = ratio > srcRatio ? width : im.width() * height / im.height();
            srcH = ratio <= srcRatio ? height : im.height() * width / im.width();
        } else {
            srcW = ratio < srcRatio ? width : im.width() * height / im.height();
            srcH = ratio >= srcRatio ? height : im.height() * width / im.width();
        }
        Image8 resized = PilResample.lanczos(im, srcW, srcH);
        Image8 res = Image8.blank(width, height, im.bands());
        paste(res, resized, width / 2 - srcW / 2, height / 2 - srcH / 2);
        if (mode == RESIZE_AND_FILL) {
            if (ratio < srcRatio) {
                int fill = height / 2 - srcH / 2;
                if (fill > 0) {
                    paste(res, PilResample.resize(PilResample.Filter.BICUBIC, resized, width, fill, 0, 0, width, 0), 0, 0);
                    paste(res, PilResample.resize(PilResample.Filter.BICUBIC, resized, width, fill, 0, resized.height(), width, resized.height()), 0, fill + srcH);
                }
            } else if (ratio > srcRatio) {
                int fill = width / 2 - srcW / 2;
                if (fill > 0) {
                    paste(res, PilResample.resize(PilResample.Filter.BICUBIC, resized, fill, height, 0, 0, 0, height), 0, 0);
                    paste(res, PilResample.resize(PilResample.Filter.BICUBIC, resized, fill, height, resized.width(), 0, resized.width(), height), fill + srcW, 0);
                }
            }
        }
        return res;
    }

    /** Pillow's {@code paste(im, box=(x, y))}: copies the overlap, clipping at the edges. */
    static void paste(Image8 dst, Image8 src, int x0, int y0) {
        int bands = dst.bands();
        if (src.bands() != bands) {
            throw new IllegalArgumentException("paste of " + src.bands() + " bands into " + bands);
        }
        for (int y = Math.max(0, y0); y < Math.min(dst.height(), y0 + src.height()); y++) {
            int sx0 = Math.max(0, -x0);
            int dx0 = Math.max(0, x0);
            int n = Math.min(dst.width() - dx0, src.width() - sx0);
            if (n > 0) {
                System.arraycopy(src.data(), ((y - y0) * src.width() + sx0) * bands, dst.data(), (y * dst.width() + dx0) * bands, n * bands);
            }
        }
    }
}
