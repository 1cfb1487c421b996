package dev.sdserve.engine.projection;

import dev.sdserve.engine.LatentShape;

import java.util.ArrayList;
import java.util.List;

/**
 * Least-squares fit of an affine latent → RGB map ({@link LatentProjection}) from latents and the images the model's
 * VAE decodes them to. Each image is averaged down to the latent grid (one RGB value per latent cell: the mean of
 * the cell's pixels), so every latent cell gives one sample {@code (x_0 … x_{c−1}, 1) → (r, g, b)}; the normal
 * equations (c+1 unknowns, 3 right-hand sides; 5 × 3 for SD's 4 channels) are accumulated in double precision and
 * solved by Cholesky with a tiny ridge that only matters for a degenerate set (e.g. a constant channel).
 */
public final class ProjectionFit {
    private final int channels;
    private final int n;
    private final double[][] ata;
    private final double[][] atb;
    /** The down-sampled samples, kept to report the fit's residual: per sample c latent values then 3 colours. */
    private final List<float[]> samples = new ArrayList<>();
    private long count;
    /** Ridge as a fraction of the normal matrix's mean diagonal. */
    private final double ridge;

    public ProjectionFit(int channels) {
        this(channels, 1e-9);
    }

    /**
     * @param ridge Tikhonov regularisation as a fraction of the normal matrix's mean diagonal (1e-9 only guards a
     *              degenerate set; many correlated inputs, such as a decoder's features, want more)
     */
    public ProjectionFit(int channels, double ridge) {
        this.ridge = ridge;
        if (channels < 1) {
            throw new IllegalArgumentException("channels must be positive");
        }
        this.channels = channels;
        this.n = channels + 1;
        this.ata = new double[n][n];
        this.atb = new double[n][3];
    }

    /**
     * Adds one latent and its decoded image.
     *
     * @param latent CHW, {@code shape}
     * @param image  HWC RGB in [0, 1], {@code width × height}, an integer multiple of the latent grid on each axis
     */
    public void add(float[] latent, LatentShape shape, float[] image, int width, int height) {
        if (shape.channels() != channels || latent.length != shape.size()) {
            throw new IllegalArgumentException("latent " + shape + " (" + latent.length + " floats) in a fit of " + channels + " channels");
        }
        if (image.length != width * height * 3 || width % shape.width() != 0 || height % shape.height() != 0) {
            throw new IllegalArgumentException("image " + width + "x" + height + " (" + image.length + " floats) is not a multiple of the latent grid "
                    + shape.width() + "x" + shape.height());
        }
        int fx = width / shape.width(), fy = height / shape.height();
        int plane = shape.height() * shape.width();
        double inv = 1.0 / (fx * fy);
        double[] row = new double[n];
        for (int y = 0; y < shape.height(); y++) {
            for (int x = 0; x < shape.width(); x++) {
                int p = y * shape.width() + x;
                float[] sample = new float[channels + 3];
                for (int c = 0; c < channels; c++) {
                    row[c] = latent[c * plane + p];
                    sample[c] = latent[c * plane + p];
                }
                row[channels] = 1;
                double[] rgb = new double[3];
                for (int yy = y * fy; yy < (y + 1) * fy; yy++) {
                    int base = (yy * width + x * fx) * 3;
                    for (int xx = 0; xx < fx; xx++) {
                        for (int r = 0; r < 3; r++) {
                            rgb[r] += image[base + xx * 3 + r];
                        }
                    }
                }
                for (int r = 0; r < 3; r++) {
                    rgb[r] *= inv;
                    sample[channels + r] = (float) rgb[r];
                }
                for (int i = 0; i < n; i++) {
                    double ri = row[i];
                    double[] ai = ata[i];
                    for (int j = 0; j <= i; j++) {
                        ai[j] += ri * row[j];
                    }
                    for (int r = 0; r < 3; r++) {
                        atb[i][r] += row[i] * rgb[r];
                    }
                }
                samples.add(sample);
                count++;
            }
        }
    }

    /** Samples (latent cells) added so far. */
    public long samples() {
        return count;
    }

    /** The least-squares map. */
    public LatentProjection solve() {
        return solve("fitted");
    }

    /** The least-squares map, named {@code source}. */
    public LatentProjection solve(String source) {
        if (count < n) {
            throw new IllegalStateException("a fit of " + n + " unknowns needs at least " + n + " samples, has " + count);
        }
        double[][] a = new double[n][n];
        double trace = 0;
        for (int i = 0; i < n; i++) {
            trace += ata[i][i];
        }
        double ridge = this.ridge * trace / n;
        for (int i = 0; i < n; i++) {
            a[i] = ata[i].clone();
            for (int j = i + 1; j < n; j++) {
                a[i][j] = ata[j][i]; // only the lower triangle is accumulated
            }
            a[i][i] += ridge;
        }
        // Cholesky: a = L·Lᵀ
        double[][] l = new double[n][n];
        for (int i = 0; i < n; i++) {
            for (int j = 0; j <= i; j++) {
                double s = a[i][j];
                for (int k = 0; k < j; k++) {
                    s -= l[i][k] * l[j][k];
                }
                if (i == j) {
                    if (!(s > 0)) {
                        throw new IllegalStateException("the fit's normal equations are not positive definite");
                    }
                    l[i][i] = Math.sqrt(s);
                } else {
                    l[i][j] = s / l[j][j];
                }
            }
        }
        float[][] w = new float[channels][3];
        float[] bias = new float[3];
        for (int r = 0; r < 3; r++) {
            double[] y = new double[n];
            for (int i = 0; i < n; i++) {
                double s = atb[i][r];
                for (int k = 0; k < i; k++) {
                    s -= l[i][k] * y[k];
                }
                y[i] = s / l[i][i];
            }
            double[] b = new double[n];
            for (int i = n - 1; i >= 0; i--) {
                double s = y[i];
                for (int k = i + 1; k < n; k++) {
                    s -= l[k][i] * b[k];
                }
                b[i] = s / l[i][i];
            }
            for (int c = 0; c < channels; c++) {
                w[c][r] = (float) b[c];
            }
            bias[r] = (float) b[channels];
        }
        return new LatentProjection(w, bias, source);
    }

    /**
     * Mean absolute difference between a map's colours (clamped to [0, 1]) and the VAE's down-sampled colours over
     * the samples added, on the 0–255 scale.
     */
    public double meanAbs255(LatentProjection p) {
        double s = 0;
        int ch = Math.min(channels, p.channels());
        float[][] w = p.weights();
        float[] b = p.bias();
        for (float[] sample : samples) {
            for (int r = 0; r < 3; r++) {
                double v = b[r];
                for (int c = 0; c < ch; c++) {
                    v += sample[c] * w[c][r];
                }
                v = Math.max(0, Math.min(1, v));
                s += Math.abs(v - sample[channels + r]);
            }
        }
        return samples.isEmpty() ? Double.NaN : 255.0 * s / (3.0 * samples.size());
    }
}
