package dev.sdserve.tools.bench;

import java.util.ArrayDeque;
import java.util.Deque;
import java.util.List;

import dev.sdserve.model.TextEncoderConfig;
import dev.sdserve.model.UNetConfig;
import dev.sdserve.model.VaeConfig;

/**
 * Dense FLOPs (2 per multiply-add) of one network call, counted analytically from the architecture: convolutions,
 * linear layers and the two attention MatMuls. Norms, activations, softmax and additions are not counted (they are
 * below 1% and memory-bound). A Winograd or other FLOP-saving kernel still counts the dense figure. SD 1.5 UNet at
 * 64×64 latents, batch 1, 77 context tokens: 803.3 GFLOP.
 */
public final class FlopCounter {
    private FlopCounter() {
    }

    static double conv3(long h, long w, long cin, long cout, int stride) {
        long ho = (h - 1) / stride + 1, wo = (w - 1) / stride + 1;
        return 2.0 * ho * wo * 9 * cin * cout;
    }

    /** UNet call on {@code batch} latents of h×w with {@code contextTokens} text tokens. */
    public static double unet(UNetConfig c, long batch, long h, long w, long contextTokens) {
        List<Integer> ch = c.blockOutChannels();
        int levels = ch.size();
        long temb = c.timeEmbedDim();
        double f = conv3(h, w, c.inChannels(), ch.get(0), 1);
        f += 2.0 * ch.get(0) * temb + 2.0 * temb * temb;
        Deque<Long> skips = new ArrayDeque<>();
        long cur = ch.get(0);
        skips.push(cur);
        for (int i = 0; i < levels; i++) {
            long co = ch.get(i);
            for (int j = 0; j < c.layersPerBlock(); j++) {
                f += res(h, w, cur, co, temb);
                cur = co;
                if (c.crossAttnDown().get(i)) {
                    f += transformer(c, h * w, cur, contextTokens, c.depthDown().get(i));
                }
                skips.push(cur);
            }
            if (i < levels - 1) {
                f += conv3(h, w, cur, cur, 2);
                h = (h - 1) / 2 + 1;
                w = (w - 1) / 2 + 1;
                skips.push(cur);
            }
        }
        f += res(h, w, cur, cur, temb) + res(h, w, cur, cur, temb);
        if (c.midAttention()) {
            f += transformer(c, h * w, cur, contextTokens, c.depthMid());
        }
        for (int i = 0; i < levels; i++) {
            long co = ch.get(levels - 1 - i);
            for (int j = 0; j < c.layersPerBlock() + 1; j++) {
                f += res(h, w, cur + skips.pop(), co, temb);
                cur = co;
                if (c.crossAttnUp().get(i)) {
                    f += transformer(c, h * w, cur, contextTokens, c.depthUp().get(i));
                }
            }
            if (i < levels - 1) {
                h *= 2;
                w *= 2;
                f += conv3(h, w, cur, cur, 1);
            }
        }
        f += conv3(h, w, ch.get(0), c.outChannels(), 1);
        return f * batch;
    }

    private static double res(long h, long w, long cin, long cout, long temb) {
        double f = conv3(h, w, cin, cout, 1) + conv3(h, w, cout, cout, 1);
        if (temb > 0) {
            f += 2.0 * temb * cout;
        }
        if (cin != cout) {
            f += 2.0 * h * w * cin * cout;
        }
        return f;
    }

    /** A transformer of {@code depth} blocks (per level: SDXL's 2 / 10, SD 1.x's 1). */
    private static double transformer(UNetConfig c, long t, long ch, long ctxTokens, int depth) {
        double f = 2 * 2.0 * t * ch * ch; // proj_in, proj_out (1×1 conv or linear: same FLOPs)
        long ctx = c.crossAttentionDim();
        for (int l = 0; l < depth; l++) {
            f += 4 * 2.0 * t * ch * ch + 4.0 * t * t * ch;                       // self-attention
            f += 2 * 2.0 * t * ch * ch + 2 * 2.0 * ctxTokens * ctx * ch + 4.0 * t * ctxTokens * ch; // cross
            f += 2.0 * t * ch * 8 * ch + 2.0 * t * 4 * ch * ch;                    // GEGLU feed-forward
        }
        return f;
    }

    /** VAE decoder from a latent of h×w to an image of (h·downscale)×(w·downscale). */
    public static double vaeDecoder(VaeConfig v, long batch, long h, long w) {
        List<Integer> ch = v.blockOutChannels();
        int levels = ch.size();
        long top = ch.get(levels - 1);
        double f = 2.0 * h * w * v.latentChannels() * v.latentChannels(); // post_quant_conv
        f += conv3(h, w, v.latentChannels(), top, 1);
        f += res(h, w, top, top, 0) * 2 + 4 * 2.0 * h * w * top * top + 4.0 * (h * w) * (h * w) * top; // mid
        long cur = top;
        for (int i = 0; i < levels; i++) {
            long co = ch.get(levels - 1 - i);
            for (int j = 0; j < v.layersPerBlock() + 1; j++) {
                f += res(h, w, cur, co, 0);
                cur = co;
            }
            if (i < levels - 1) {
                h *= 2;
                w *= 2;
                f += conv3(h, w, cur, cur, 1);
            }
        }
        f += conv3(h, w, ch.get(0), v.outChannels(), 1);
        return f * batch;
    }

    /** Text encoder on {@code tokens} tokens (all layers; CLIP skip saves the last ones, not counted here). */
    public static double textEncoder(TextEncoderConfig t, long batch, long tokens) {
        long d = t.hiddenSize();
        double perLayer = 4 * 2.0 * tokens * d * d + 4.0 * tokens * tokens * d
                + 2 * 2.0 * tokens * d * t.intermediateSize();
        return perLayer * t.layers() * batch;
    }
}
