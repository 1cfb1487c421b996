package dev.sdserve.tools.bench;

import java.util.ArrayDeque;
import java.util.Deque;
import java.util.List;

import org.tensorflow.Operand;
import org.tensorflow.ndarray.Shape;
import org.tensorflow.op.Ops;
import org.tensorflow.types.TFloat32;

import dev.sdserve.engine.tf.Attention;
import dev.sdserve.engine.tf.Conv1x1;
import dev.sdserve.engine.tf.Conv3x3;
import dev.sdserve.engine.tf.GroupNorm;
import dev.sdserve.engine.tf.LayerNorm;
import dev.sdserve.model.TextEncoderConfig;
import dev.sdserve.model.UNetConfig;
import dev.sdserve.model.VaeConfig;

/**
 * SD-shaped networks (UNet, VAE decoder, CLIP text encoder) with the real layer sequence, shapes and skip
 * connections but random, shape-pooled weights ({@link FedGraph#weight}), built from the kernels — for timing the
 * kernels at full size before and apart from the engine. {@link Kernels#NATIVE} uses TF's own Conv2D, the
 * textbook GroupNorm and unchunked attention; {@link Kernels#FAST} uses {@code dev.sdserve.engine.tf}'s kernels.
 */
public final class SyntheticSd {
    public enum Kernels { NATIVE, FAST }

    private final FedGraph g;
    private final Ops tf;
    private final Kernels k;
    private final int attnChunk;

    public SyntheticSd(FedGraph g, Kernels k, int attnChunk) {
        this.g = g;
        this.tf = g.tf();
        this.k = k;
        this.attnChunk = attnChunk;
    }

    // ---- primitives -------------------------------------------------------------------------------------------

    Operand<TFloat32> conv3(Operand<TFloat32> x, long cout, int stride) {
        long cin = x.shape().size(3);
        return Conv3x3.conv(tf, x, g.weight(3, 3, cin, cout), g.vector(cout, false), stride,
                k == Kernels.FAST ? Conv3x3.DEFAULT : Conv3x3.Method.NATIVE);
    }

    Operand<TFloat32> linear(Operand<TFloat32> x, long cout, boolean bias) {
        long cin = x.shape().size(x.shape().numDimensions() - 1);
        return Conv1x1.conv(tf, x, g.weight(cin, cout), bias ? g.vector(cout, false) : null);
    }

    Operand<TFloat32> groupNorm(Operand<TFloat32> x, int groups, boolean silu) {
        long c = x.shape().size(3);
        if (k == Kernels.FAST) {
            return GroupNorm.norm(tf, x, g.vector(c, true), g.vector(c, false), groups, 1e-5, silu);
        }
        Operand<TFloat32> y = KernelBench.naiveGroupNorm(tf, x, g.vector(c, true), g.vector(c, false), groups);
        return silu ? GroupNorm.silu(tf, y) : y;
    }

    Operand<TFloat32> attention(Operand<TFloat32> q, Operand<TFloat32> kk, Operand<TFloat32> v, int heads) {
        return Attention.attend(tf, q, kk, v, heads, k == Kernels.FAST ? attnChunk : 0);
    }

    Operand<TFloat32> layerNorm(Operand<TFloat32> x) {
        long c = x.shape().size(x.shape().numDimensions() - 1);
        return LayerNorm.norm(tf, x, g.vector(c, true), g.vector(c, false), 1e-5);
    }

    Operand<TFloat32> upsample2(Operand<TFloat32> x) {
        long h = x.shape().size(1), w = x.shape().size(2);
        return tf.image.resizeNearestNeighbor(x, tf.constant(new int[]{(int) (2 * h), (int) (2 * w)}));
    }

    // ---- blocks -----------------------------------------------------------------------------------------------

    Operand<TFloat32> resBlock(Operand<TFloat32> x, Operand<TFloat32> temb, long cout, int groups) {
        long cin = x.shape().size(3);
        Operand<TFloat32> h = conv3(groupNorm(x, groups, true), cout, 1);
        if (temb != null) {
            Operand<TFloat32> t = linear(GroupNorm.silu(tf, temb), cout, true);        // [B, cout]
            h = tf.math.add(h, tf.reshape(t, tf.constant(new long[]{-1, 1, 1, cout})));
        }
        h = conv3(groupNorm(h, groups, true), cout, 1);
        Operand<TFloat32> skip = cin == cout ? x : linear(x, cout, true);
        return tf.math.add(skip, h);
    }

    Operand<TFloat32> transformer(Operand<TFloat32> x, Operand<TFloat32> ctx, int heads, int groups) {
        long h = x.shape().size(1), w = x.shape().size(2), c = x.shape().size(3);
        Operand<TFloat32> t = tf.reshape(linear(groupNorm(x, groups, false), c, true),
                tf.constant(new long[]{-1, h * w, c}));
        Operand<TFloat32> n = layerNorm(t);
        t = tf.math.add(t, linear(attention(linear(n, c, false), linear(n, c, false), linear(n, c, false), heads),
                c, true));
        n = layerNorm(t);
        t = tf.math.add(t, linear(attention(linear(n, c, false), linear(ctx, c, false), linear(ctx, c, false),
                heads), c, true));
        n = layerNorm(t);
        Operand<TFloat32> ff = linear(n, 8 * c, true);                                // GEGLU
        Operand<TFloat32> a = tf.slice(ff, tf.constant(new long[]{0, 0, 0}), tf.constant(new long[]{-1, -1, 4 * c}));
        Operand<TFloat32> gate = tf.slice(ff, tf.constant(new long[]{0, 0, 4 * c}),
                tf.constant(new long[]{-1, -1, 4 * c}));
        t = tf.math.add(t, linear(tf.math.mul(a, gelu(gate)), c, true));
        Operand<TFloat32> out = tf.reshape(t, tf.constant(new long[]{-1, h, w, c}));
        return tf.math.add(x, linear(out, c, true));
    }

    Operand<TFloat32> gelu(Operand<TFloat32> x) {
        // tanh approximation is close enough for timing (erf costs about the same)
        return tf.math.mul(x, tf.math.sigmoid(tf.math.mul(x, tf.constant(1.702f))));
    }

    // ---- networks ---------------------------------------------------------------------------------------------

    /** UNet on latent [B, h, w, in] with context [B, 77, ctx]; the timestep enters as a fed [B, C0] embedding. */
    public Operand<TFloat32> unet(UNetConfig c, long batch, long h, long w, long ctxTokens) {
        List<Integer> ch = c.blockOutChannels();
        int groups = c.normGroups();
        Operand<TFloat32> x = g.input(Shape.of(batch, h, w, c.inChannels()), 1f);
        Operand<TFloat32> ctx = g.input(Shape.of(batch, ctxTokens, c.crossAttentionDim()), 1f);
        Operand<TFloat32> tsin = g.input(Shape.of(batch, ch.get(0)), 1f);
        Operand<TFloat32> temb = linear(GroupNorm.silu(tf, linear(tsin, c.timeEmbedDim(), true)),
                c.timeEmbedDim(), true);
        x = conv3(x, ch.get(0), 1);
        Deque<Operand<TFloat32>> skips = new ArrayDeque<>();
        skips.push(x);
        int levels = ch.size();
        for (int i = 0; i < levels; i++) {
            for (int j = 0; j < c.layersPerBlock(); j++) {
                x = resBlock(x, temb, ch.get(i), groups);
                if (c.crossAttnDown().get(i)) {
                    x = transformer(x, ctx, c.attentionHeads().get(i), groups);
                }
                skips.push(x);
            }
            if (i < levels - 1) {
                x = conv3(x, ch.get(i), 2);
                skips.push(x);
            }
        }
        long top = ch.get(levels - 1);
        x = resBlock(x, temb, top, groups);
        if (c.midAttention()) {
            x = transformer(x, ctx, c.attentionHeads().get(levels - 1), groups);
        }
        x = resBlock(x, temb, top, groups);
        for (int i = 0; i < levels; i++) {
            int lv = levels - 1 - i;
            for (int j = 0; j < c.layersPerBlock() + 1; j++) {
                x = tf.concat(List.of(x, skips.pop()), tf.constant(3));
                x = resBlock(x, temb, ch.get(lv), groups);
                if (c.crossAttnUp().get(i)) {
                    x = transformer(x, ctx, c.attentionHeads().get(lv), groups);
                }
            }
            if (i < levels - 1) {
                x = conv3(upsample2(x), ch.get(lv), 1);
            }
        }
        return conv3(groupNorm(x, groups, true), c.outChannels(), 1);
    }

    /** VAE decoder from latent [B, h, w, latentChannels]. */
    public Operand<TFloat32> vaeDecoder(VaeConfig v, long batch, long h, long w) {
        List<Integer> ch = v.blockOutChannels();
        int groups = v.normGroups(), levels = ch.size();
        long top = ch.get(levels - 1);
        Operand<TFloat32> z = g.input(Shape.of(batch, h, w, v.latentChannels()), 1f);
        Operand<TFloat32> x = conv3(linear(z, v.latentChannels(), true), top, 1);
        x = resBlock(x, null, top, groups);
        Operand<TFloat32> n = tf.reshape(groupNorm(x, groups, false), tf.constant(new long[]{-1, h * w, top}));
        Operand<TFloat32> a = linear(attention(linear(n, top, true), linear(n, top, true), linear(n, top, true), 1),
                top, true);
        x = tf.math.add(x, tf.reshape(a, tf.constant(new long[]{-1, h, w, top})));
        x = resBlock(x, null, top, groups);
        for (int i = 0; i < levels; i++) {
            long co = ch.get(levels - 1 - i);
            for (int j = 0; j < v.layersPerBlock() + 1; j++) {
                x = resBlock(x, null, co, groups);
            }
            if (i < levels - 1) {
                x = conv3(upsample2(x), co, 1);
            }
        }
        return conv3(groupNorm(x, groups, true), v.outChannels(), 1);
    }

    /** CLIP text transformer on [B, tokens] already-embedded tokens (embedding lookup is not timed). */
    public Operand<TFloat32> textEncoder(TextEncoderConfig t, long batch, long tokens) {
        long d = t.hiddenSize();
        Operand<TFloat32> x = g.input(Shape.of(batch, tokens, d), 1f);
        for (int l = 0; l < t.layers(); l++) {
            Operand<TFloat32> n = layerNorm(x);
            // causal mask omitted: same FLOPs
            x = tf.math.add(x, linear(Attention.attend(tf, linear(n, d, true), linear(n, d, true),
                    linear(n, d, true), t.heads(), 0), d, true));
            n = layerNorm(x);
            x = tf.math.add(x, linear(gelu(linear(n, t.intermediateSize(), true)), d, true));
        }
        return layerNorm(x);
    }
}
