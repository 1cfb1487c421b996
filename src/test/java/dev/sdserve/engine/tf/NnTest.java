package dev.sdserve.engine.tf;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.tensorflow.Operand;
import org.tensorflow.Result;
import org.tensorflow.ndarray.Shape;
import org.tensorflow.op.core.Placeholder;
import org.tensorflow.types.TFloat32;

import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.function.BiFunction;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Each primitive of {@link Nn} against a naive Java loop implementation of the PyTorch semantics (NCHW weights
 * OIHW, as in the checkpoint). Faster kernels swapped into Nn must keep passing this.
 */
class NnTest {
    static Weights w;
    static final Random R = new Random(42);

    static float[] rnd(int n) {
        return dev.sdserve.testutil.Floats.gaussian(R, n);
    }

    @BeforeAll
    static void weights() {
        w = Weights.empty("test");
    }

    @AfterAll
    static void close() {
        w.close();
    }

    /** Runs f on one input of the given shape; returns the output values. */
    static float[] run(long[] shape, float[] x, BiFunction<Nn, Operand<TFloat32>, Operand<TFloat32>> f) {
        try (TfGraph g = TfGraph.build("t", w, b -> {
            var in = b.input("x", b.tf.placeholder(TFloat32.class, Placeholder.shape(Shape.of(shape))));
            b.output("y", f.apply(b.nn, in));
        }); TFloat32 t = TFloat32.tensorOf(Shape.of(shape), d -> d.copyFrom(org.tensorflow.ndarray.buffer.DataBuffers.of(x, true, false)));
             Result r = g.run(Map.of("x", t), List.of("y"))) {
            return TfModel.split((TFloat32) r.get(0), 1)[0];
        }
    }

    static void close(float[] want, float[] got, double tol) {
        assertEquals(want.length, got.length, "length");
        for (int i = 0; i < want.length; i++) {
            assertEquals(want[i], got[i], tol * (1 + Math.abs(want[i])), "element " + i);
        }
    }

    /** Naive conv over NHWC input with torch OIHW weights, zero padding (top, left; output size given). */
    static float[] naiveConv(float[] x, int h, int wd, int ci, float[] wt, float[] bias, int co, int k, int stride,
                             int padT, int padL, int oh, int ow) {
        float[] y = new float[oh * ow * co];
        for (int oy = 0; oy < oh; oy++) {
            for (int ox = 0; ox < ow; ox++) {
                for (int o = 0; o < co; o++) {
                    double s = bias[o];
                    for (int ky = 0; ky < k; ky++) {
                        for (int kx = 0; kx < k; kx++) {
                            int iy = oy * stride + ky - padT, ix = ox * stride + kx - padL;
                            if (iy < 0 || ix < 0 || iy >= h || ix >= wd) {
                                continue;
                            }
                            for (int c = 0; c < ci; c++) {
                                s += x[(iy * wd + ix) * ci + c] * wt[((o * ci + c) * k + ky) * k + kx];
                            }
                        }
                    }
                    y[(oy * ow + ox) * co + o] = (float) s;
                }
            }
        }
        return y;
    }

    @Test
    void conv3x3SameStride2AndAsymmetric() {
        float[] wt = rnd(5 * 3 * 9), bias = rnd(5);
        w.put("k.weight", new long[]{5, 3, 3, 3}, wt.clone());
        w.put("k.bias", new long[]{5}, bias.clone());
        int h = 6, wd = 4;
        float[] x = rnd(h * wd * 3);
        long[] shape = {1, h, wd, 3};
        close(naiveConv(x, h, wd, 3, wt, bias, 5, 3, 1, 1, 1, h, wd), run(shape, x, (nn, in) -> nn.conv(in, "k")), 1e-5);
        close(naiveConv(x, h, wd, 3, wt, bias, 5, 3, 2, 1, 1, 3, 2),
                run(shape, x, (nn, in) -> nn.conv(in, "k", 2, 1, 1, 1, 1)), 1e-5);
        // VAE encoder downsampling: pad bottom/right only, stride 2 → floor((6+1-3)/2)+1 = 3, (4+1-3)/2+1 = 2
        close(naiveConv(x, h, wd, 3, wt, bias, 5, 3, 2, 0, 0, 3, 2),
                run(shape, x, (nn, in) -> nn.conv(in, "k", 2, 0, 1, 0, 1)), 1e-5);
    }

    @Test
    void conv1x1IsPerPixelLinear() {
        float[] wt = rnd(15), bias = rnd(5);
        w.put("p.weight", new long[]{5, 3, 1, 1}, wt.clone());
        w.put("p.bias", new long[]{5}, bias.clone());
        float[] x = rnd(2 * 3 * 3);
        close(naiveConv(x, 2, 3, 3, wt, bias, 5, 1, 1, 0, 0, 2, 3), run(new long[]{1, 2, 3, 3}, x, (nn, in) -> nn.conv(in, "p")), 1e-5);
    }

    @Test
    void linearOverLastDim() {
        float[] wt = rnd(24), bias = rnd(6);
        w.put("l.weight", new long[]{6, 4}, wt.clone());
        w.put("l.bias", new long[]{6}, bias.clone());
        float[] x = rnd(2 * 3 * 4);
        float[] want = new float[2 * 3 * 6];
        for (int r = 0; r < 6; r++) {
            for (int o = 0; o < 6; o++) {
                double s = bias[o];
                for (int i = 0; i < 4; i++) {
                    s += x[r * 4 + i] * wt[o * 4 + i];
                }
                want[r * 6 + o] = (float) s;
            }
        }
        // 3 rows per sample: the transposed product (W · xᵀ)ᵀ; with the threshold at 0, x · Wᵀ
        assertTrue(Nn.rowsPerSample(new long[]{2, 3, 4}) <= Nn.TRANSPOSED_LINEAR_ROWS);
        close(want, run(new long[]{2, 3, 4}, x, (nn, in) -> nn.linear(in, "l", true)), 1e-5);
        System.setProperty("sdserve.linearTransposedRows", "0");
        try {
            close(want, run(new long[]{2, 3, 4}, x, (nn, in) -> nn.linear(in, "l", true)), 1e-5);
        } finally {
            System.clearProperty("sdserve.linearTransposedRows");
        }
    }

    @Test
    void groupNormAndLayerNorm() {
        float[] g = rnd(4), b = rnd(4);
        w.put("n.weight", new long[]{4}, g.clone());
        w.put("n.bias", new long[]{4}, b.clone());
        int h = 3, wd = 2, c = 4, groups = 2;
        float[] x = rnd(2 * h * wd * c);
        float[] want = new float[x.length];
        for (int n = 0; n < 2; n++) {
            for (int gr = 0; gr < groups; gr++) {
                double s = 0, ss = 0;
                int cnt = 0;
                for (int p = 0; p < h * wd; p++) {
                    for (int ch = gr * 2; ch < gr * 2 + 2; ch++) {
                        s += x[(n * h * wd + p) * c + ch];
                        cnt++;
                    }
                }
                double mean = s / cnt;
                for (int p = 0; p < h * wd; p++) {
                    for (int ch = gr * 2; ch < gr * 2 + 2; ch++) {
                        double d = x[(n * h * wd + p) * c + ch] - mean;
                        ss += d * d;
                    }
                }
                double inv = 1 / Math.sqrt(ss / cnt + 1e-5);
                for (int p = 0; p < h * wd; p++) {
                    for (int ch = gr * 2; ch < gr * 2 + 2; ch++) {
                        int i = (n * h * wd + p) * c + ch;
                        want[i] = (float) ((x[i] - mean) * inv * g[ch] + b[ch]);
                    }
                }
            }
        }
        close(want, run(new long[]{2, h, wd, c}, x, (nn, in) -> nn.groupNorm(in, "n", groups, 1e-5)), 1e-4);

        float[] y = rnd(3 * 4);
        float[] wantLn = new float[y.length];
        for (int r = 0; r < 3; r++) {
            double m = 0, v = 0;
            for (int i = 0; i < 4; i++) {
                m += y[r * 4 + i];
            }
            m /= 4;
            for (int i = 0; i < 4; i++) {
                v += (y[r * 4 + i] - m) * (y[r * 4 + i] - m);
            }
            v /= 4;
            for (int i = 0; i < 4; i++) {
                wantLn[r * 4 + i] = (float) ((y[r * 4 + i] - m) / Math.sqrt(v + 1e-5) * g[i] + b[i]);
            }
        }
        close(wantLn, run(new long[]{1, 3, 4}, y, (nn, in) -> nn.layerNorm(in, "n", 1e-5)), 1e-4);
    }

    @Test
    void multiHeadAttentionWithCausalMask() {
        int l = 5, d = 4, heads = 2, hd = 2;
        float[] x = rnd(l * d);
        float[] want = new float[l * d];
        for (int hh = 0; hh < heads; hh++) {
            for (int i = 0; i < l; i++) {
                double[] sc = new double[l];
                double max = Double.NEGATIVE_INFINITY;
                for (int j = 0; j <= i; j++) { // causal
                    double s = 0;
                    for (int e = 0; e < hd; e++) {
                        s += x[i * d + hh * hd + e] * x[j * d + hh * hd + e];
                    }
                    sc[j] = s / Math.sqrt(hd);
                    max = Math.max(max, sc[j]);
                }
                double z = 0;
                for (int j = 0; j <= i; j++) {
                    sc[j] = Math.exp(sc[j] - max);
                    z += sc[j];
                }
                for (int e = 0; e < hd; e++) {
                    double o = 0;
                    for (int j = 0; j <= i; j++) {
                        o += sc[j] / z * x[j * d + hh * hd + e];
                    }
                    want[i * d + hh * hd + e] = (float) o;
                }
            }
        }
        close(want, run(new long[]{1, l, d}, x, (nn, in) -> nn.attention(in, in, in, heads, nn.causalMask(l))), 1e-5);
        // the same attention from queries already scaled, and from q, k, v packed side by side in one tensor
        float scale = (float) (1 / Math.sqrt(hd));
        close(want, run(new long[]{1, l, d}, x, (nn, in) -> nn.attention(nn.scale(in, scale), in, in, heads,
                nn.causalMask(l), true)), 1e-5);
        close(want, run(new long[]{1, l, d}, x, (nn, in) -> nn.attentionPacked(nn.tf().concat(
                List.of(nn.scale(in, scale), in, in), nn.tf().constant(2)), heads, nn.causalMask(l))), 1e-5);
    }

    @Test
    void activationsAndUpsample() {
        float[] x = rnd(2 * 3 * 2);
        float[] silu = new float[x.length], gelu = new float[x.length], qg = new float[x.length];
        for (int i = 0; i < x.length; i++) {
            double v = x[i];
            silu[i] = (float) (v / (1 + Math.exp(-v)));
            qg[i] = (float) (v / (1 + Math.exp(-1.702 * v)));
            gelu[i] = (float) (0.5 * v * (1 + erf(v / Math.sqrt(2))));
        }
        long[] s = {1, 2, 3, 2};
        close(silu, run(s, x, Nn::silu), 1e-5);
        close(qg, run(s, x, Nn::quickGelu), 1e-5);
        close(gelu, run(s, x, Nn::gelu), 1e-5);
        float[] up = new float[4 * x.length];
        for (int y = 0; y < 4; y++) {
            for (int xx = 0; xx < 6; xx++) {
                for (int c = 0; c < 2; c++) {
                    up[(y * 6 + xx) * 2 + c] = x[((y / 2) * 3 + xx / 2) * 2 + c];
                }
            }
        }
        close(up, run(s, x, Nn::upsampleNearest2x), 0);
    }

    /** erf to ~1e-7 (Abramowitz–Stegun 7.1.26 is too coarse; use a series/continued fraction split). */
    static double erf(double x) {
        double t = Math.abs(x);
        double r;
        if (t < 2.5) {
            double sum = 0, term = t;
            for (int n = 0; n < 60; n++) {
                sum += term / (2 * n + 1);
                term *= -t * t / (n + 1);
            }
            r = 2 / Math.sqrt(Math.PI) * sum;
        } else {
            double cf = 0;
            for (int n = 60; n >= 1; n--) {
                cf = n / 2.0 / (t + cf);
            }
            r = 1 - Math.exp(-t * t) / Math.sqrt(Math.PI) / (t + cf);
        }
        return Math.signum(x) * r;
    }
}
