package dev.sdserve.image;

/**
 * Pillow's {@code Image.resize(size, filter, box)} on 8-bit images with the Lanczos and bicubic filters, reproduced
 * to the bit: separable filtering (support widened by the downscale factor), coefficients normalised per output pixel and
 * turned into 22-bit fixed point, the horizontal pass first into an 8-bit intermediate, then the vertical pass
 * (Pillow's {@code Resample.c}). Pillow premultiplies RGBA before resampling; images here are L, RGB, or RGBA
 * whose alpha is resampled as its own band (A1111 flattens or greys images before it resizes them).
 */
public final class PilResample {
    /** Pillow's filters: Lanczos-3 ({@code Image.LANCZOS}) and Keys bicubic with a = −0.5 ({@code Image.BICUBIC}, resize's default). */
    public enum Filter { LANCZOS, BICUBIC }

    private static final int PRECISION_BITS = 32 - 8 - 2;
    private PilResample() {
    }

    /** Resizes the whole image to {@code width × height} with the Lanczos filter. */
    public static Image8 lanczos(Image8 in, int width, int height) {
        return resize(Filter.LANCZOS, in, width, height, 0, 0, in.width(), in.height());
    }

    /** Resizes the whole image to {@code width × height} with {@code filter}. */
    public static Image8 resize(Filter filter, Image8 in, int width, int height) {
        return resize(filter, in, width, height, 0, 0, in.width(), in.height());
    }

    /**
     * Resizes the region {@code box = (x0, y0, x1, y1)} of the image (source pixel edges; a box may be empty in one
     * direction, which then samples the filter around that edge, as A1111's "resize and fill" uses it) to
     * {@code width × height}.
     */
    public static Image8 resize(Filter filter, Image8 in, int width, int height, double x0, double y0, double x1,
                                double y1) {
        if (width < 1 || height < 1) {
            throw new IllegalArgumentException("resize to " + width + "x" + height);
        }
        if (x0 < 0 || y0 < 0 || x1 > in.width() || y1 > in.height() || x1 < x0 || y1 < y0) {
            throw new IllegalArgumentException("box outside the image");
        }
        if (width == in.width() && height == in.height() && x0 == 0 && y0 == 0 && x1 == in.width() && y1 == in.height()) {
            return new Image8(width, height, in.bands(), in.data().clone());
        }
        boolean horizontal = width != in.width() || x0 != 0 || x1 != width;
        boolean vertical = height != in.height() || y0 != 0 || y1 != height;
        Coeffs h = coeffs(filter, in.width(), x0, x1, width);
        Coeffs v = coeffs(filter, in.height(), y0, y1, height);
        Image8 cur = in;
        if (horizontal) {
            int first = v.bounds[0];
            int last = v.bounds[(height - 1) * 2] + v.bounds[(height - 1) * 2 + 1];
            for (int i = 0; i < height; i++) {
                v.bounds[i * 2] -= first;
            }
            cur = horizontalPass(in, width, first, last - first, h);
        }
        if (vertical) {
            cur = verticalPass(cur, height, v);
        }
        return cur;
    }

    /** Per output pixel: first source index, count, and fixed-point weights (ksize per pixel). */
    private record Coeffs(int ksize, int[] bounds, int[] k) {
    }

    private static double sinc(double x) {
        if (x == 0.0) {
            return 1.0;
        }
        x = x * Math.PI;
        return Math.sin(x) / x;
    }

    private static double lanczos(double x) {
        return -3.0 <= x && x < 3.0 ? sinc(x) * sinc(x / 3) : 0.0;
    }

    private static double bicubic(double x) {
        final double a = -0.5;
        if (x < 0.0) {
            x = -x;
        }
        if (x < 1.0) {
            return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
        }
        if (x < 2.0) {
            return (((x - 5) * x + 8) * x - 4) * a;
        }
        return 0.0;
    }

    private static Coeffs coeffs(Filter filter, int inSize, double in0, double in1, int outSize) {
        double scale = (in1 - in0) / outSize;
        double filterscale = Math.max(scale, 1.0);
        double support = (filter == Filter.LANCZOS ? 3.0 : 2.0) * filterscale;
        int ksize = (int) Math.ceil(support) * 2 + 1;
        int[] bounds = new int[outSize * 2];
        int[] kk = new int[outSize * ksize];
        double[] k = new double[ksize];
        for (int xx = 0; xx < outSize; xx++) {
            double center = in0 + (xx + 0.5) * scale;
            double ss = 1.0 / filterscale;
            int xmin = (int) (center - support + 0.5);
            if (xmin < 0) {
                xmin = 0;
            }
            int xmax = (int) (center + support + 0.5);
            if (xmax > inSize) {
                xmax = inSize;
            }
            xmax -= xmin;
            double ww = 0.0;
            for (int x = 0; x < xmax; x++) {
                double arg = (x + xmin - center + 0.5) * ss;
                double w = filter == Filter.LANCZOS ? lanczos(arg) : bicubic(arg);
                k[x] = w;
                ww += w;
            }
            for (int x = 0; x < ksize; x++) {
                double w = x < xmax ? (ww != 0.0 ? k[x] / ww : k[x]) : 0.0;
                kk[xx * ksize + x] = w < 0 ? (int) (-0.5 + w * (1 << PRECISION_BITS)) : (int) (0.5 + w * (1 << PRECISION_BITS));
            }
            bounds[xx * 2] = xmin;
            bounds[xx * 2 + 1] = xmax;
        }
        return new Coeffs(ksize, bounds, kk);
    }

    private static int clip8(int in) {
        if (in >= (1 << PRECISION_BITS << 8)) {
            return 255;
        }
        if (in <= 0) {
            return 0;
        }
        return in >> PRECISION_BITS;
    }

    private static Image8 horizontalPass(Image8 in, int outW, int rowOffset, int rows, Coeffs c) {
        int bands = in.bands();
        byte[] src = in.data();
        byte[] out = new byte[outW * rows * bands];
        int inW = in.width();
        for (int yy = 0; yy < rows; yy++) {
            int rowBase = (yy + rowOffset) * inW;
            for (int xx = 0; xx < outW; xx++) {
                int xmin = c.bounds[xx * 2], xmax = c.bounds[xx * 2 + 1];
                int kBase = xx * c.ksize;
                for (int b = 0; b < bands; b++) {
                    int ss = 1 << (PRECISION_BITS - 1);
                    for (int x = 0; x < xmax; x++) {
                        ss += (src[(rowBase + x + xmin) * bands + b] & 0xff) * c.k[kBase + x];
                    }
                    out[(yy * outW + xx) * bands + b] = (byte) clip8(ss);
                }
            }
        }
        return new Image8(outW, rows, bands, out);
    }

    private static Image8 verticalPass(Image8 in, int outH, Coeffs c) {
        int bands = in.bands();
        int w = in.width();
        byte[] src = in.data();
        byte[] out = new byte[w * outH * bands];
        for (int yy = 0; yy < outH; yy++) {
            int ymin = c.bounds[yy * 2], ymax = c.bounds[yy * 2 + 1];
            int kBase = yy * c.ksize;
            for (int xx = 0; xx < w; xx++) {
                for (int b = 0; b < bands; b++) {
                    int ss = 1 << (PRECISION_BITS - 1);
                    for (int y = 0; y < ymax; y++) {
                        ss += (src[((y + ymin) * w + xx) * bands + b] & 0xff) * c.k[kBase + y];
                    }
                    out[(yy * w + xx) * bands + b] = (byte) clip8(ss);
                }
            }
        }
        return new Image8(w, outH, bands, out);
    }
}
