package losskit.io;

import java.util.Locale;

/**
 * Element types LossKit reads from files. float32, float16 ({@code <f2}) and bfloat16 (raw files only: NumPy has
 * no bfloat16) reach the engine as they are stored (16-bit values are widened exactly by the engine); float64
 * and integers are converted to float32 where a value is expected.
 */
public enum DType {
    FLOAT32(4, "<f4"), FLOAT64(8, "<f8"), FLOAT16(2, "<f2"), BFLOAT16(2, null), INT32(4, "<i4"), INT64(8, "<i8");

    final int bytes;
    final String npyDescr;

    DType(int bytes, String npyDescr) {
        this.bytes = bytes;
        this.npyDescr = npyDescr;
    }

    public int bytes() {
        return bytes;
    }

    public boolean isInteger() {
        return this == INT32 || this == INT64;
    }

    public String id() {
        return name().toLowerCase(Locale.ROOT);
    }

    /** The engine tensor type this file type is handed over as without conversion, or null (converted to float32). */
    public losskit.api.Tensor.DType tensorType() {
        return switch (this) {
            case FLOAT32 -> losskit.api.Tensor.DType.FLOAT32;
            case FLOAT16 -> losskit.api.Tensor.DType.FLOAT16;
            case BFLOAT16 -> losskit.api.Tensor.DType.BFLOAT16;
            default -> null;
        };
    }

    public static DType parse(String s) {
        for (DType d : values()) {
            if (d.id().equals(s.trim().toLowerCase(Locale.ROOT))) {
                return d;
            }
        }
        throw new IllegalArgumentException("dtype = " + s + " is not supported (expected float32, float64, float16, "
                + "bfloat16, int32 or int64)");
    }

    /** The dtype of a NumPy descr string, or an exception naming what NumPy wrote. */
    static DType fromNpy(String descr, String file) {
        String d = descr.replace('|', '<').replace('=', '<');
        for (DType t : values()) {
            if (d.equals(t.npyDescr)) {
                return t;
            }
        }
        if (d.startsWith(">")) {
            throw new IllegalArgumentException(file + ": dtype '" + descr + "' is big-endian (expected little-endian float32, float64, float16, int32 or int64)");
        }
        throw new IllegalArgumentException(file + ": dtype '" + descr + "' is not supported (expected float32, float64, float16, int32 or int64)");
    }
}
