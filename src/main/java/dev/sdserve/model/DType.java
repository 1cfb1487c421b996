package dev.sdserve.model;

/** Element types of the safetensors format. */
public enum DType {
    F64(8), F32(4), F16(2), BF16(2), I64(8), I32(4), I16(2), I8(1), U8(1), BOOL(1);

    public final int bytes;

    DType(int bytes) {
        this.bytes = bytes;
    }

    public boolean floating() {
        return this == F64 || this == F32 || this == F16 || this == BF16;
    }

    public static DType parse(String s) {
        for (DType d : values()) {
            if (d.name().equals(s)) {
                return d;
            }
        }
        throw new IllegalArgumentException("unsupported dtype '" + s + "' (supported: F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL)");
    }
}
