package dev.sdserve.engine.tf;

import java.util.Locale;

/**
 * The precision the networks compute in ({@code sdserve.compute-dtype}). {@link #FP32} is the default and the only
 * fast choice on a CPU. {@link #FP16} is meant for GPUs: matmuls, convolutions and elementwise ops run in half
 * precision while normalisation statistics, softmax and the timestep embedding stay in float32 (as torch's autocast
 * does); inputs and outputs of every graph stay float32. On this project's CPUs TensorFlow has half kernels for
 * every op the nets use, so FP16 runs (slowly: Eigen emulates half arithmetic through float32 conversions); a
 * device without a half kernel fails the call with an error naming the op.
 */
public enum ComputeDType {
    FP32, FP16;

    /** The system property the assembly sets from {@code sdserve.compute-dtype}. */
    public static final String PROPERTY = "sdserve.computeDtype";

    public static ComputeDType parse(String s) {
        String v = s == null ? "" : s.trim().toLowerCase(Locale.ROOT);
        return switch (v) {
            case "fp32", "float32", "" -> FP32;
            case "fp16", "float16", "half" -> FP16;
            default -> throw new IllegalArgumentException("compute dtype must be fp32 or fp16, got '" + s + "'");
        };
    }

    /** From {@value #PROPERTY} (default fp32). */
    public static ComputeDType configured() {
        return parse(System.getProperty(PROPERTY, "fp32"));
    }
}
