package dev.sdserve.engine.tf;

import org.tensorflow.Operand;
import org.tensorflow.types.TFloat32;

/**
 * The networks' one LoRA hook: a term added to a linear projection (or 1×1 convolution) of every network an
 * {@link Nn} builds, while the graph is built ({@link Nn#linearHook}). Serving installs {@link LowRank} (each
 * sample's LoRAs as gated low-rank factors fed at run time, so any mix of LoRA sets shares one graph run); training
 * ({@code train.LoraTrainer}) installs its factors as trainable variables. The term is added to {@code x·Wᵀ} before
 * the bias.
 */
@FunctionalInterface
public interface LinearHook {
    /**
     * @param weightKey the projection's weight key ({@code <prefix>.weight}, or a fused one such as OpenCLIP's
     *                  {@code attn.in_proj_weight})
     * @param x2     the projection's input flattened to [rows, in] (rows = samples × positions)
     * @param dims   the input's dims before flattening ([B, in] or [B, ..., in])
     * @param out    the projection's output width
     * @return the term to add, [rows, out], or null to leave the projection alone
     */
    Operand<TFloat32> extra(Nn nn, String weightKey, Operand<TFloat32> x2, long[] dims, long out);
}
