package losskit.io;

import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Opens an input named on the command line: {@code PATH[#key=value&key=value]}. {@code .npy} files carry
 * their own dtype and shape; {@code .csv}/{@code .tsv} take {@code cols=}; any other file is raw
 * little-endian binary and takes {@code dtype=} and {@code shape=} (e.g. {@code shape=1000x10}, one
 * dimension may be {@code -1}), defaulting to the command's {@code --dtype}/{@code --shape}.
 */
public final class Sources {
    private Sources() {
    }

    public static ArraySource open(String spec, DType defaultDtype, long[] defaultShape) {
        int hash = spec.lastIndexOf('#');
        String file = hash < 0 ? spec : spec.substring(0, hash);
        Map<String, String> opts = new LinkedHashMap<>();
        if (hash >= 0) {
            for (String kv : spec.substring(hash + 1).split("&")) {
                int eq = kv.indexOf('=');
                if (eq < 0) {
                    throw new IllegalArgumentException(spec + ": option '" + kv + "' has no value (expected key=value)");
                }
                opts.put(kv.substring(0, eq).trim(), kv.substring(eq + 1).trim());
            }
        }
        Path path = Path.of(file);
        String lower = file.toLowerCase();
        if (lower.endsWith(".npy")) {
            return ArrayFile.npy(path);
        }
        if (lower.endsWith(".csv") || lower.endsWith(".tsv")) {
            return CsvSource.read(path, opts.get("cols"));
        }
        DType dtype = opts.containsKey("dtype") ? DType.parse(opts.get("dtype")) : defaultDtype;
        long[] shape = opts.containsKey("shape") ? parseShape(opts.get("shape")) : defaultShape;
        if (dtype == null) {
            dtype = DType.FLOAT32;
        }
        if (shape == null) {
            shape = new long[]{-1};
        }
        return ArrayFile.raw(path, dtype, shape);
    }

    /** {@code 1000x10}, {@code 1000,10} or {@code -1x10}. */
    public static long[] parseShape(String s) {
        String[] parts = s.trim().split("[x,]");
        long[] shape = new long[parts.length];
        for (int i = 0; i < parts.length; i++) {
            try {
                shape[i] = Long.parseLong(parts[i].trim());
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException("shape = " + s + " is malformed (expected e.g. 1000x10)");
            }
        }
        return shape;
    }
}
