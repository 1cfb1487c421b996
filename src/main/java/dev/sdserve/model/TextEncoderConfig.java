package dev.sdserve.model;

/**
 * One text tower (a CLIP text transformer) of a checkpoint.
 *
 * @param hiddenAct     "quick_gelu" (OpenAI CLIP-L: SD 1.x, SDXL's first tower) or "gelu" (OpenCLIP: SD 2.x, SDXL's
 *                      second tower)
 * @param padToken      id used for padding after the end token (49407 for CLIP-L towers; 0, i.e. {@code !}, for
 *                      OpenCLIP towers, as {@code open_clip.tokenize} pads)
 * @param layout        how the file names the tower's tensors: {@link #CLIP} (transformers' names, separate
 *                      q/k/v) or {@link #OPEN_CLIP} (OpenCLIP's names, fused {@code in_proj}, {@code text_projection})
 * @param prefix        the tensors' key prefix in the file, e.g. {@code cond_stage_model.transformer.text_model.}
 * @param projectionDim width of {@code text_projection} (OpenCLIP towers; 0 for none)
 */
public record TextEncoderConfig(int vocabSize, int hiddenSize, int intermediateSize, int layers, int heads,
                                int maxPositions, String hiddenAct, double layerNormEps, int bosToken, int eosToken,
                                int padToken, String layout, String prefix, int projectionDim) {
    /** transformers' CLIPTextModel names ({@code embeddings.*}, {@code encoder.layers.N.self_attn.q_proj}, ...). */
    public static final String CLIP = "clip";
    /** OpenCLIP's names ({@code token_embedding}, {@code transformer.resblocks.N.attn.in_proj_weight}, ...). */
    public static final String OPEN_CLIP = "open_clip";

    public TextEncoderConfig {
        if (!CLIP.equals(layout) && !OPEN_CLIP.equals(layout)) {
            throw new IllegalArgumentException("text encoder layout must be clip or open_clip, got " + layout);
        }
    }

    /** An SD 1.x text encoder (transformers' names under {@code cond_stage_model.transformer.text_model.}). */
    public TextEncoderConfig(int vocabSize, int hiddenSize, int intermediateSize, int layers, int heads,
                             int maxPositions, String hiddenAct, double layerNormEps, int bosToken, int eosToken,
                             int padToken) {
        this(vocabSize, hiddenSize, intermediateSize, layers, heads, maxPositions, hiddenAct, layerNormEps, bosToken,
                eosToken, padToken, CLIP, ModelConfigs.TEXT, 0);
    }

    public boolean openClip() {
        return OPEN_CLIP.equals(layout);
    }

    /** The same tower under another key prefix. */
    public TextEncoderConfig withPrefix(String p) {
        return new TextEncoderConfig(vocabSize, hiddenSize, intermediateSize, layers, heads, maxPositions, hiddenAct,
                layerNormEps, bosToken, eosToken, padToken, layout, p, projectionDim);
    }
}
