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
        buildDecoder(b, cfg, latentH, latentW, 1);
    }

    /**
     * The decoder graph with its activations in {@code rows} row parts ({@link #rowParts}; 1 = whole), run by a
     * session with one thread per part.
     */
    public static void buildDecoder(TfGraph.Builder b, VaeConfig cfg, int latentH, int latentW, int rows) {
        var tf = b.tf;
        VaeNet net = new VaeNet(b.nn, cfg);
        Operand<TFloat32> x = b.nn.toFloat32(net.decode(latentInput(b, cfg, latentH, latentW), rows));
        b.lanes(rows);
        b.output("raw", b.nn.nhwcToNchw(x));
        b.output("image", b.nn.clamp(b.nn.add(b.nn.scale(x, 0.5f), tf.constant(0.5f)), 0f, 1f));
    }

    /**
     * A decoder's work (latent pixels × deepest channels²) below which row parts are not used: SD's VAE from a 64×64
     * latent (512² images). At 512² they took 0.912 and 0.967 of the whole graph's time, at 256² 0.988 (the README,
     * "Row parts").
     */
    static final long ROWS_MIN_WORK = 1L << 30;

    /**
     * Row parts for a decode at this latent size ({@code -Dsdserve.vae.rowParts}, read at each graph choice: 2 by
     * default, 1 = off). Each part's chain runs on a core of its own with one thread inside each op, where the whole
     * activation's ops split every op between the threads and wait for each other at its end. Used when the latent
     * height divides into the parts, the decoder's work (latent pixels × deepest channels²) is at least
     * {@link #ROWS_MIN_WORK} ({@code -Dsdserve.lanes.anySize=true} drops the bound, as for {@link Lanes}), there is a
     * thread per part and sessions have their own pools ({@link Lanes#perSessionPools}); else 1. Half precision and
     * the timing-only plain group norm ({@code -Dsdserve.groupNorm=plain}) keep the whole graph (the parts' group
     * norms are float32 MatMul sums).
     */
    public static int rowParts(VaeConfig cfg, int latentH, int latentW, boolean half) {
        int rows = Math.max(1, Integer.getInteger("sdserve.vae.rowParts", 2));
        int threads = Integer.getInteger("sdserve.threads", Runtime.getRuntime().availableProcessors());
        long deepest = cfg.blockOutChannels().get(cfg.blockOutChannels().size() - 1);
        long work = (long) latentH * latentW * deepest * deepest;
        if (rows < 2 || Nn.PLAIN_GROUP_NORM || half || latentH % rows != 0 || latentH / rows < 2 || threads < rows
                || (work < ROWS_MIN_WORK && !Boolean.getBoolean("sdserve.lanes.anySize")) || !Lanes.perSessionPools()) {
            return 1;
        }
        return rows;
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
        return decode(z, 1);
    }

    /**
     * The decoder with its activations held as {@code rows} parts along the image's rows (top to bottom; 1 = whole):
     * each part's ops form a chain of their own, joined only where a layer needs the whole (a 3×3 convolution reads
     * one row of each neighbour, a group norm adds every part's sums, the middle self-attention reads every part's
     * keys and values), so a session with one thread per part runs them side by side ({@link #rowParts}).
     */
    Operand<TFloat32> decode(Operand<TFloat32> z, int rows) {
        String p = PREFIX + "decoder.";
        List<Operand<TFloat32>> h = trunk(nn.splitRows(z, rows));
        int levels = cfg.blockOutChannels().size();
        for (int i = levels - 1; i >= 0; i--) {
            if (i != levels - 1) { // the lowest level's blocks are the trunk's
                for (int j = 0; j <= cfg.layersPerBlock(); j++) {
                    h = resBlock(h, p + "up." + i + ".block." + j);
                }
            }
            if (i != 0) {
                h = nn.convParts(h.stream().map(nn::upsampleNearest2x).toList(), p + "up." + i + ".upsample.conv");
            }
        }
        h = nn.groupNormParts(h, p + "norm_out", cfg.normGroups(), EPS).stream().map(nn::silu).toList();
        h = nn.convParts(h, p + "conv_out");
        return nn.joinRows(h);
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
        return trunk(List.of(z)).get(0);
    }

    private List<Operand<TFloat32>> trunk(List<Operand<TFloat32>> z) {
        String p = PREFIX + "decoder.";
        List<Operand<TFloat32>> h = nn.convParts(z, PREFIX + "post_quant_conv");
        h = nn.convParts(h, p + "conv_in");
        h = mid(h, p + "mid.");
        int top = cfg.blockOutChannels().size() - 1;
        for (int j = 0; j <= cfg.layersPerBlock(); j++) {
            h = resBlock(h, p + "up." + top + ".block." + j);
        }
        return h;
    }

    private Operand<TFloat32> mid(Operand<TFloat32> h, String mp) {
        return mid(List.of(h), mp).get(0);
    }

    private List<Operand<TFloat32>> mid(List<Operand<TFloat32>> h, String mp) {
        h = resBlock(h, mp + "block_1");
        h = attention(h, mp + "attn_1");
        return resBlock(h, mp + "block_2");
    }

    Operand<TFloat32> resBlock(Operand<TFloat32> x, String bp) {
        return resBlock(List.of(x), bp).get(0);
    }

    private List<Operand<TFloat32>> resBlock(List<Operand<TFloat32>> x, String bp) {
        List<Operand<TFloat32>> h = nn.groupNormParts(x, bp + ".norm1", cfg.normGroups(), EPS).stream()
                .map(nn::silu).toList();
        h = nn.convParts(h, bp + ".conv1");
        h = nn.groupNormParts(h, bp + ".norm2", cfg.normGroups(), EPS).stream().map(nn::silu).toList();
        h = nn.convParts(h, bp + ".conv2");
        List<Operand<TFloat32>> skip = nn.has(bp + ".nin_shortcut.weight") ? nn.convParts(x, bp + ".nin_shortcut") : x;
        List<Operand<TFloat32>> out = new java.util.ArrayList<>(x.size());
        for (int i = 0; i < x.size(); i++) {
            out.add(nn.add(skip.get(i), h.get(i)));
        }
        return out;
    }

    /** Single-head self-attention over all pixels, with a residual. */
    Operand<TFloat32> attention(Operand<TFloat32> x, String ap) {
        return attention(List.of(x), ap).get(0);
    }

    /** As {@link #attention(Operand, String)} over row parts: each part's queries attend to every part's keys. */
    private List<Operand<TFloat32>> attention(List<Operand<TFloat32>> x, String ap) {
        List<Operand<TFloat32>> h = nn.groupNormParts(x, ap + ".norm", cfg.normGroups(), EPS);
        List<Operand<TFloat32>> q = new java.util.ArrayList<>(), k = new java.util.ArrayList<>(),
                v = new java.util.ArrayList<>();
        for (Operand<TFloat32> hi : h) {
            long[] d = Nn.dims(hi);
            long hw = d[1] * d[2], c = d[3];
            q.add(nn.reshape(nn.conv(hi, ap + ".q"), -1, hw, c));
            k.add(nn.reshape(nn.conv(hi, ap + ".k"), -1, hw, c));
            v.add(nn.reshape(nn.conv(hi, ap + ".v"), -1, hw, c));
        }
        Operand<TFloat32> keys = k.size() == 1 ? k.get(0) : nn.tf().concat(k, nn.tf().constant(1));
        Operand<TFloat32> values = v.size() == 1 ? v.get(0) : nn.tf().concat(v, nn.tf().constant(1));
        List<Operand<TFloat32>> out = new java.util.ArrayList<>(x.size());
        for (int i = 0; i < x.size(); i++) {
            long[] d = Nn.dims(x.get(i));
            Operand<TFloat32> a = nn.reshape(nn.attention(q.get(i), keys, values, 1, null), -1, d[1], d[2], d[3]);
            out.add(nn.add(nn.conv(a, ap + ".proj_out"), x.get(i)));
        }
        return out;
    }
}
