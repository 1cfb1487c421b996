package dev.sdserve.engine.tf;

import org.tensorflow.Operand;
import org.tensorflow.types.TFloat32;

/**
 * Adds a term to a network's linear projection while the graph is built (LoRA training adds {@code x·Aᵀ·Bᵀ·scale}).
 * Called with the projection's LDM prefix (the weight key without {@code .weight}) and its input {@code x}
 * [..., in]; returns a tensor of the projection's output shape [..., out], or null to leave the projection alone.
 */
@FunctionalInterface
public interface LinearHook {
    Operand<TFloat32> extra(Nn nn, String prefix, Operand<TFloat32> x);
}
