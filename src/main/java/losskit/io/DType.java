package losskit.io;

import java.util.Locale;

/** Element types LossKit reads from files. */
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

    public static DType parse(String s) {
        for (DType d : values()) {
            if (d.id().equals(s.trim().toLowerCase(Locale.ROOT))) {
                return d;
            }
        }
        throw new IllegalArgumentException("dtype = " + s + " is not supported (expected float32, float64, int32 or int64)");
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
            throw new IllegalArgumentException(file + ": dtype '" + descr + "' is big-endian (expected little-endian float32, float64, int32 or int64)");
        }
        throw new IllegalArgumentException(file + ": dtype '" + descr + "' is not supported (expected float32, float64, int32 or int64)");
    }
}
