package dev.sdserve.engine.tf;

import dev.sdserve.model.TextEncoderConfig;
import org.tensorflow.Operand;
import org.tensorflow.ndarray.Shape;
import org.tensorflow.op.core.Placeholder;
import org.tensorflow.types.TFloat32;
import org.tensorflow.types.TInt32;

/**
 * CLIP text transformer (SD 1.x layout under {@code cond_stage_model.transformer.text_model.}): token + position
 * embeddings, pre-LN layers with causal self-attention and an MLP (quick_gelu or gelu), final layer norm.
 *
 * <p>Graph input {@code ids} int32 [B, tokens]; output {@code hidden} [B, tokens, width]: for CLIP skip N the hidden
 * state N−1 layers before the last, passed through the final layer norm (N = 1: the last hidden state).
 */
public final class ClipTextNet {
    public static final String PREFIX = "cond_stage_model.transformer.text_model.";

    private ClipTextNet() {
    }

    public static void build(TfGraph.Builder b, TextEncoderConfig cfg, int tokens, int clipSkip) {
        if (clipSkip < 1 || clipSkip > cfg.layers()) {
            throw new IllegalArgumentException("clip skip " + clipSkip + " outside 1.." + cfg.layers());
        }
        if (tokens > cfg.maxPositions()) {
            throw new IllegalArgumentException(tokens + " tokens > " + cfg.maxPositions() + " positions");
        }
        Nn nn = b.nn;
        var tf = b.tf;
        Operand<TInt32> ids = b.input("ids", tf.placeholder(TInt32.class, Placeholder.shape(Shape.of(-1, tokens))));
        String p = PREFIX;
        Operand<TFloat32> tok = tf.gather(nn.w(p + "embeddings.token_embedding.weight"), ids, tf.constant(0));
        Operand<TFloat32> pos = nn.w(p + "embeddings.position_embedding.weight");
        if (tokens < cfg.maxPositions()) {
            pos = tf.slice(pos, tf.constant(new int[]{0, 0}), tf.constant(new int[]{tokens, -1}));
        }
        Operand<TFloat32> x = nn.add(tok, pos);
        Operand<TFloat32> mask = nn.causalMask(tokens);
        int run = cfg.layers() - (clipSkip - 1);
        double eps = cfg.layerNormEps();
        for (int l = 0; l < run; l++) {
            String lp = p + "encoder.layers." + l + ".";
            Operand<TFloat32> h = nn.layerNorm(x, lp + "layer_norm1", eps);
            Operand<TFloat32> q = nn.linear(h, lp + "self_attn.q_proj", true);
            Operand<TFloat32> k = nn.linear(h, lp + "self_attn.k_proj", true);
            Operand<TFloat32> v = nn.linear(h, lp + "self_attn.v_proj", true);
            Operand<TFloat32> a = nn.attention(q, k, v, cfg.heads(), mask);
            x = nn.add(x, nn.linear(a, lp + "self_attn.out_proj", true));
            h = nn.layerNorm(x, lp + "layer_norm2", eps);
            h = nn.activation(cfg.hiddenAct(), nn.linear(h, lp + "mlp.fc1", true));
            x = nn.add(x, nn.linear(h, lp + "mlp.fc2", true));
        }
        b.output("hidden", nn.toFloat32(nn.layerNorm(x, p + "final_layer_norm", eps)));
    }
}
