package dev.sdserve.engine.tf;

import dev.sdserve.model.VaeConfig;
import org.tensorflow.Operand;
import org.tensorflow.ndarray.Shape;
import org.tensorflow.op.core.Placeholder;
import org.tensorflow.types.TFloat32;

import java.util.List;

/**
 * The KL autoencoder in the LDM key layout ({@code first_stage_model.}).
 *
 * <p>Decoder graph: input {@code z} [B, latent, h, w] (the sampler's latents, NCHW), divided by the scaling factor
 * inside; outputs {@code raw} [B, 3, H, W] (decoder output, about [-1, 1]) and {@code image} [B, H, W, 3] in [0, 1]
 * ((raw / 2 + 0.5) clamped). Encoder graph: input {@code image} [B, 3, H, W] in [-1, 1]; outputs {@code mean}
 * [B, latent, h, w] = mean of the latent distribution × scaling factor, and the unscaled posterior
 * {@code posterior_mean} / {@code posterior_std} (for a sample drawn with the request's noise).
 */
public final class VaeNet {
    public static final String PREFIX = "first_stage_model.";
    /** GroupNorm epsilon of every VAE norm (fixed in SD's code). */
    static final double EPS = 1e-6;

    private final Nn nn;
    private final VaeConfig cfg;

    private VaeNet(Nn nn, VaeConfig cfg) {
        this.nn = nn;
        this.cfg = cfg;
    }

    public static void buildDecoder(TfGraph.Builder b, VaeConfig cfg, int latentH, int latentW) {
        var tf = b.tf;
        VaeNet net = new VaeNet(b.nn, cfg);
        Operand<TFloat32> x = b.nn.toFloat32(net.decode(latentInput(b, cfg, latentH, latentW)));
        b.output("raw", b.nn.nhwcToNchw(x));
        b.output("image", b.nn.clamp(b.nn.add(b.nn.scale(x, 0.5f), tf.constant(0.5f)), 0f, 1f));
    }

    /**
     * The decoder's trunk: every layer that runs at latent resolution (post_quant_conv, conv_in, the middle block,
     * whose self-attention lets each cell's features see the whole picture as its colour in the VAE's output does,
     * and the lowest up level's res blocks, up to its first upsampling). Output "features" NCHW; with a readout's
     * inputs "readout_w" (features × 3) and "readout_b" (3) also "rgb", the features mapped to RGB per cell and clamped
     * to [0, 1], NHWC.
     */
    public static void buildDecoderTrunk(TfGraph.Builder b, VaeConfig cfg, int latentH, int latentW) {
        var tf = b.tf;
        VaeNet net = new VaeNet(b.nn, cfg);
        Operand<TFloat32> f = b.nn.toFloat32(net.trunk(latentInput(b, cfg, latentH, latentW)));
        b.output("features", b.nn.nhwcToNchw(f));
        long c = Nn.dims(f)[3];
        Operand<TFloat32> w = b.input("readout_w", tf.placeholder(TFloat32.class, Placeholder.shape(Shape.of(c, 3))));
        Operand<TFloat32> bias = b.input("readout_b", tf.placeholder(TFloat32.class, Placeholder.shape(Shape.of(3))));
        Operand<TFloat32> flat = tf.reshape(f, tf.constant(new long[]{-1, c}));
        Operand<TFloat32> rgb = tf.math.add(tf.linalg.matMul(flat, w), bias);
        b.output("rgb", b.nn.clamp(tf.reshape(rgb, tf.constant(new long[]{-1, latentH, latentW, 3})), 0f, 1f));
    }

    /** The decoders' input "z" (latents as the sampler holds them, NCHW), unscaled and NHWC in the compute type. */
    private static Operand<TFloat32> latentInput(TfGraph.Builder b, VaeConfig cfg, int latentH, int latentW) {
        Operand<TFloat32> z = b.input("z", b.tf.placeholder(TFloat32.class,
                Placeholder.shape(Shape.of(-1, cfg.latentChannels(), latentH, latentW))));
        return b.nn.toCompute(b.nn.divide(b.nn.nchwToNhwc(z), (float) cfg.scalingFactor()));
    }

    public static void buildEncoder(TfGraph.Builder b, VaeConfig cfg, int height, int width) {
        int f = cfg.downscale();
        if (height % f != 0 || width % f != 0) {
            throw new IllegalArgumentException("image " + height + "x" + width + " is not a multiple of " + f);
        }
        var tf = b.tf;
        Operand<TFloat32> img = b.input("image", tf.placeholder(TFloat32.class,
                Placeholder.shape(Shape.of(-1, cfg.inChannels(), height, width))));
        VaeNet net = new VaeNet(b.nn, cfg);
        List<Operand<TFloat32>> moments = net.encodeMoments(b.nn.toCompute(b.nn.nchwToNhwc(img)));
        Operand<TFloat32> mean = b.nn.toFloat32(moments.get(0));
        b.output("mean", b.nn.nhwcToNchw(b.nn.scale(mean, (float) cfg.scalingFactor())));
        // the posterior N(mean, std²) before scaling (diffusers' DiagonalGaussianDistribution: logvar clamped to
        // [-30, 20], std = exp(logvar / 2)); the sample is (mean + std·eps)·scaling factor with eps drawn outside
        Operand<TFloat32> logvar = b.nn.clamp(b.nn.toFloat32(moments.get(1)), -30f, 20f);
        b.output("posterior_mean", b.nn.nhwcToNchw(mean));
        b.output("posterior_std", b.nn.nhwcToNchw(tf.math.exp(b.nn.scale(logvar, 0.5f))));
    }

    Operand<TFloat32> decode(Operand<TFloat32> z) {
        String p = PREFIX + "decoder.";
        Operand<TFloat32> h = trunk(z);
        int levels = cfg.blockOutChannels().size();
        for (int i = levels - 1; i >= 0; i--) {
            if (i != levels - 1) { // the lowest level's blocks are the trunk's
                for (int j = 0; j <= cfg.layersPerBlock(); j++) {
                    h = resBlock(h, p + "up." + i + ".block." + j);
                }
            }
            if (i != 0) {
                h = nn.conv(nn.upsampleNearest2x(h), p + "up." + i + ".upsample.conv");
            }
        }
        h = nn.silu(nn.groupNorm(h, p + "norm_out", cfg.normGroups(), EPS));
        return nn.conv(h, p + "conv_out");
    }

    /** The encoder's moments [mean, logvar], NHWC. */
    List<Operand<TFloat32>> encodeMoments(Operand<TFloat32> x) {
        String p = PREFIX + "encoder.";
        Operand<TFloat32> h = nn.conv(x, p + "conv_in");
        int levels = cfg.blockOutChannels().size();
        for (int i = 0; i < levels; i++) {
            for (int j = 0; j < cfg.layersPerBlock(); j++) {
                h = resBlock(h, p + "down." + i + ".block." + j);
            }
            if (i != levels - 1) {
                // asymmetric padding (bottom/right only), then a stride-2 3×3 conv
                h = nn.conv(h, p + "down." + i + ".downsample.conv", 2, 0, 1, 0, 1);
            }
        }
        h = mid(h, p + "mid.");
        h = nn.silu(nn.groupNorm(h, p + "norm_out", cfg.normGroups(), EPS));
        h = nn.conv(h, p + "conv_out");
        h = nn.conv(h, PREFIX + "quant_conv");
        return nn.splitLast(h, 2); // moments = [mean, logvar]
    }

    /** The decoder up to its first upsampling: everything at latent resolution (NHWC in, features NHWC out). */
    private Operand<TFloat32> trunk(Operand<TFloat32> z) {
        String p = PREFIX + "decoder.";
        Operand<TFloat32> h = nn.conv(z, PREFIX + "post_quant_conv");
        h = nn.conv(h, p + "conv_in");
        h = mid(h, p + "mid.");
        int top = cfg.blockOutChannels().size() - 1;
        for (int j = 0; j <= cfg.layersPerBlock(); j++) {
            h = resBlock(h, p + "up." + top + ".block." + j);
        }
        return h;
    }

    private Operand<TFloat32> mid(Operand<TFloat32> h, String mp) {
        h = resBlock(h, mp + "block_1");
        h = attention(h, mp + "attn_1");
        return resBlock(h, mp + "block_2");
    }

    Operand<TFloat32> resBlock(Operand<TFloat32> x, String bp) {
        Operand<TFloat32> h = nn.silu(nn.groupNorm(x, bp + ".norm1", cfg.normGroups(), EPS));
        h = nn.conv(h, bp + ".conv1");
        h = nn.silu(nn.groupNorm(h, bp + ".norm2", cfg.normGroups(), EPS));
        h = nn.conv(h, bp + ".conv2");
        Operand<TFloat32> skip = nn.has(bp + ".nin_shortcut.weight") ? nn.conv(x, bp + ".nin_shortcut") : x;
        return nn.add(skip, h);
    }

    /** Single-head self-attention over all pixels, with a residual. */
    Operand<TFloat32> attention(Operand<TFloat32> x, String ap) {
        long[] d = Nn.dims(x);
        long hw = d[1] * d[2], c = d[3];
        Operand<TFloat32> h = nn.groupNorm(x, ap + ".norm", cfg.normGroups(), EPS);
        Operand<TFloat32> q = nn.reshape(nn.conv(h, ap + ".q"), -1, hw, c);
        Operand<TFloat32> k = nn.reshape(nn.conv(h, ap + ".k"), -1, hw, c);
        Operand<TFloat32> v = nn.reshape(nn.conv(h, ap + ".v"), -1, hw, c);
        Operand<TFloat32> a = nn.reshape(nn.attention(q, k, v, 1, null), -1, d[1], d[2], c);
        return nn.add(nn.conv(a, ap + ".proj_out"), x);
    }
}
