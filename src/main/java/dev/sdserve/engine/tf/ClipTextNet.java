package dev.sdserve.engine.tf;

import dev.sdserve.model.TextEncoderConfig;
import org.tensorflow.Operand;
import org.tensorflow.ndarray.Shape;
import org.tensorflow.op.core.Gather;
import org.tensorflow.op.core.Placeholder;
import org.tensorflow.types.TFloat32;
import org.tensorflow.types.TInt32;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A CLIP text transformer under its key prefix ({@link TextEncoderConfig#prefix()}), in either naming: transformers'
 * (SD 1.x, SDXL's CLIP-L: separate q/k/v projections, {@code final_layer_norm}) or OpenCLIP's (SD 2.x, SDXL's bigG:
 * fused {@code in_proj}, {@code ln_final}, {@code text_projection}). Token + position embeddings, pre-LN layers with
 * causal self-attention and an MLP (quick_gelu or exact gelu), a final layer norm.
 *
 * <p>Graph input {@code ids} int32 [B, tokens]; output {@code hidden} [B, tokens, width]: the output of the layer
 * {@link Request#fromEnd} − 1 layers before the last (1: the last layer), through the final layer norm or not. With
 * {@link Request#pooled}, also input {@code eos} int32 [B] (each row's end-of-text position: the first argmax of its
 * ids) and output {@code pooled} [B, projection]: the final layer norm of the LAST layer at that position, times
 * {@code text_projection} ({@code x @ P}).
 */
public final class ClipTextNet {
    /** SD 1.x's prefix. */
    public static final String PREFIX = "cond_stage_model.transformer.text_model.";

    /**
     * Which hidden state a graph returns.
     *
     * @param fromEnd   1 = the last layer's output, 2 = the penultimate (transformers' {@code hidden_states[-2]}), …
     * @param finalNorm pass it through the final layer norm (SD 1.x, SD 2.x) or not (SDXL)
     * @param pooled    also the pooled, projected output (SDXL's second tower)
     */
    public record Request(int fromEnd, boolean finalNorm, boolean pooled) {
        /** SD 1.x's CLIP skip: the last layer (1) or an earlier one, through the final norm. */
        public static Request clipSkip(int skip) {
            return new Request(skip, true, false);
        }

        String key() {
            return "h" + fromEnd + (finalNorm ? "n" : "r") + (pooled ? "p" : "");
        }
    }

    private ClipTextNet() {
    }

    /** SD 1.x: {@code hidden} for CLIP skip {@code clipSkip} (through the final layer norm). */
    public static void build(TfGraph.Builder b, TextEncoderConfig cfg, int tokens, int clipSkip) {
        build(b, cfg, tokens, Request.clipSkip(clipSkip));
    }

    public static void build(TfGraph.Builder b, TextEncoderConfig cfg, int tokens, Request req) {
        build(b, cfg, tokens, req, 1);
    }

    /**
     * As {@link #build(TfGraph.Builder, TextEncoderConfig, int, Request)} in {@code lanes} per-sample lanes
     * ({@link Lanes}; the batch must divide evenly; 1 = the plain graph).
     */
    public static void build(TfGraph.Builder b, TextEncoderConfig cfg, int tokens, Request req, int lanes) {
        int fromEnd = req.fromEnd();
        if (fromEnd < 1 || fromEnd > cfg.layers()) {
            throw new IllegalArgumentException("clip skip " + fromEnd + " outside 1.." + cfg.layers());
        }
        if (tokens > cfg.maxPositions()) {
            throw new IllegalArgumentException(tokens + " tokens > " + cfg.maxPositions() + " positions");
        }
        if (req.pooled() && cfg.projectionDim() <= 0) {
            throw new IllegalArgumentException("text tower " + cfg.prefix() + " has no text_projection for a pooled output");
        }
        var tf = b.tf;
        Map<String, Operand<TInt32>> in = new LinkedHashMap<>();
        in.put("ids", b.input("ids", tf.placeholder(TInt32.class, Placeholder.shape(Shape.of(-1, tokens)))));
        if (req.pooled()) {
            in.put("eos", b.input("eos", tf.placeholder(TInt32.class, Placeholder.shape(Shape.of(-1)))));
        }
        List<Map<String, Operand<TFloat32>>> outs = new ArrayList<>();
        // a text tower's products are all few-row (tokens per sample): every weight held transposed was 0.85-0.92x
        // the time of narrowing ones only, at batch 1 and 2 (bench --ab-props 'sdserve.linearWt=all;-')
        b.nn.textTower(true);
        for (Map<String, Operand<TInt32>> part : Lanes.split(tf, in, lanes)) {
            outs.add(encode(b.nn, tf, cfg, tokens, req, part.get("ids"), part.get("eos")));
        }
        Lanes.join(tf, outs).forEach(b::output);
        b.lanes(lanes);
    }

    /** One part of the batch through the tower: {@code hidden} and, when asked, {@code pooled}. */
    private static Map<String, Operand<TFloat32>> encode(Nn nn, org.tensorflow.op.Ops tf, TextEncoderConfig cfg,
                                                         int tokens, Request req, Operand<TInt32> ids,
                                                         Operand<TInt32> eos) {
        Map<String, Operand<TFloat32>> out = new LinkedHashMap<>();
        Names n = cfg.openClip() ? Names.OPEN_CLIP : Names.CLIP;
        String p = cfg.prefix();
        int fromEnd = req.fromEnd();
        Operand<TFloat32> tok = tf.gather(nn.w(p + n.tokenEmbedding), ids, tf.constant(0));
        Operand<TFloat32> pos = nn.w(p + n.positionEmbedding);
        if (tokens < cfg.maxPositions()) {
            pos = tf.slice(pos, tf.constant(new int[]{0, 0}), tf.constant(new int[]{tokens, -1}));
        }
        Operand<TFloat32> x = nn.add(tok, pos);
        Operand<TFloat32> mask = nn.causalMask(tokens);
        int hiddenAfter = cfg.layers() - (fromEnd - 1);
        int run = req.pooled() ? cfg.layers() : hiddenAfter;
        double eps = cfg.layerNormEps();
        float scale = (float) (1.0 / Math.sqrt(cfg.hiddenSize() / cfg.heads()));
        for (int l = 0; l < run; l++) {
            String lp = p + n.layer + l + ".";
            Operand<TFloat32> h = nn.layerNorm(x, lp + n.ln1, eps);
            // q, k, v as one product where the tower's copies are held (the 1/√d scale folded into q's rows)
            List<String> ws = cfg.openClip() ? List.of(lp + "attn.in_proj_weight")
                    : List.of(lp + "self_attn.q_proj.weight", lp + "self_attn.k_proj.weight",
                    lp + "self_attn.v_proj.weight");
            List<String> bs = cfg.openClip() ? List.of(lp + "attn.in_proj_bias")
                    : List.of(lp + "self_attn.q_proj.bias", lp + "self_attn.k_proj.bias", lp + "self_attn.v_proj.bias");
            // -Dsdserve.qkvAttention=split (read at graph build): the stacked product split into q, k, v and the
            // per-tensor transposes, for comparison with the packed attention (README, "q, k and v as one product")
            Operand<TFloat32> packed = "split".equals(System.getProperty("sdserve.qkvAttention")) ? null
                    : nn.packedProjections(h, ws, bs, 3, scale);
            Operand<TFloat32> a;
            if (packed != null) {
                a = nn.attentionPacked(packed, cfg.heads(), mask);
            } else {
                List<Operand<TFloat32>> qkv = nn.projections(h, ws, bs, 3, scale);
                a = nn.attention(qkv.get(0), qkv.get(1), qkv.get(2), cfg.heads(), mask, true);
            }
            x = nn.add(x, nn.linear(a, lp + n.outProj, true));
            h = nn.layerNorm(x, lp + n.ln2, eps);
            h = nn.activation(cfg.hiddenAct(), nn.linear(h, lp + n.fc1, true));
            x = nn.add(x, nn.linear(h, lp + n.fc2, true));
            if (l == hiddenAfter - 1) {
                out.put("hidden", nn.toFloat32(req.finalNorm() ? nn.layerNorm(x, p + n.finalNorm, eps) : x));
            }
        }
        if (req.pooled()) {
            Operand<TFloat32> last = nn.layerNorm(x, p + n.finalNorm, eps);
            Operand<TFloat32> at = tf.gather(last, eos, tf.constant(1), Gather.batchDims(1L)); // [B, width]
            Operand<TFloat32> proj = nn.w(p + "text_projection", at);
            out.put("pooled", nn.toFloat32(tf.linalg.matMul(at, proj)));
        }
        return out;
    }

    /** The end-of-text position of each row: the first index of its largest id (CLIP's EOS is the largest id). */
    public static int[] eosPositions(int[][] ids) {
        int[] out = new int[ids.length];
        for (int r = 0; r < ids.length; r++) {
            int best = 0;
            for (int i = 1; i < ids[r].length; i++) {
                if (ids[r][i] > ids[r][best]) {
                    best = i;
                }
            }
            out[r] = best;
        }
        return out;
    }

    /** Key names of the two layouts (relative to the tower's prefix). */
    private enum Names {
        CLIP("embeddings.token_embedding.weight", "embeddings.position_embedding.weight", "encoder.layers.",
                "layer_norm1", "self_attn.out_proj", "layer_norm2", "mlp.fc1", "mlp.fc2", "final_layer_norm"),
        OPEN_CLIP("token_embedding.weight", "positional_embedding", "transformer.resblocks.",
                "ln_1", "attn.out_proj", "ln_2", "mlp.c_fc", "mlp.c_proj", "ln_final");

        final String tokenEmbedding, positionEmbedding, layer, ln1, outProj, ln2, fc1, fc2, finalNorm;

        Names(String tokenEmbedding, String positionEmbedding, String layer, String ln1, String outProj, String ln2,
              String fc1, String fc2, String finalNorm) {
            this.tokenEmbedding = tokenEmbedding;
            this.positionEmbedding = positionEmbedding;
            this.layer = layer;
            this.ln1 = ln1;
            this.outProj = outProj;
            this.ln2 = ln2;
            this.fc1 = fc1;
            this.fc2 = fc2;
            this.finalNorm = finalNorm;
        }
    }
}
