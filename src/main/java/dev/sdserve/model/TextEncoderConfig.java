package dev.sdserve.model;

/**
 * CLIP text transformer (diffusers/transformers names).
 *
 * @param hiddenAct "quick_gelu" (SD 1.x) or "gelu" (SD 2.x OpenCLIP)
 * @param padToken  id used for padding after the end token (49407 for SD 1.x)
 */
public record TextEncoderConfig(int vocabSize, int hiddenSize, int intermediateSize, int layers, int heads,
                                int maxPositions, String hiddenAct, double layerNormEps, int bosToken, int eosToken,
                                int padToken) {
}
