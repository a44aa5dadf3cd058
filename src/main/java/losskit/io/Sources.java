package losskit.io;

import java.io.BufferedInputStream;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Opens an input named on the command line: {@code PATH[#key=value&key=value]}, {@code -} for standard input.
 * The format is decided by the content, never by the name alone, so no input is misread:
 * <ol>
 * <li>a file or stream that starts with the {@code .npy} magic is NumPy's, whatever its name (its header
 *     gives dtype and shape);</li>
 * <li>an explicit dtype ({@code PATH#dtype=float32}, the short {@code PATH#float32}, or the command's
 *     {@code --dtype}) makes it raw little-endian binary, with {@code shape=} (e.g. {@code shape=1000x10}, one
 *     dimension may be {@code -1}) or the command's {@code --shape};</li>
 * <li>{@code .csv}/{@code .tsv}, and any file whose first 8 KiB are text, are parsed as text (CSV, TSV,
 *     blank-separated columns or one number per line, {@code cols=} to select);</li>
 * <li>anything else is rejected with a message saying how to pass raw binary: raw binary has no header,
 *     and guessing float32 read a text file's bytes as numbers.</li>
 * </ol>
 * Pipes and standard input are read sequentially: {@code .npy} streams row by row (see
 * {@link ArrayFile#npy(String, InputStream)}), text into memory; raw binary from a pipe is rejected (its
 * row count is unknown before the end).
 */
public final class Sources {
    /** Bytes looked at to tell text from binary. */
    static final int SNIFF = 8192;

    private Sources() {
    }

    public static ArraySource open(String spec, DType defaultDtype, long[] defaultShape) {
        return open(spec, defaultDtype, defaultShape, System.in);
    }

    /** As {@link #open(String, DType, long[])}, {@code -} reading {@code stdin}. */
    public static ArraySource open(String spec, DType defaultDtype, long[] defaultShape, InputStream stdin) {
        int hash = spec.lastIndexOf('#');
        String file = hash < 0 ? spec : spec.substring(0, hash);
        Map<String, String> opts = new LinkedHashMap<>();
        if (hash >= 0) {
            for (String kv : spec.substring(hash + 1).split("&")) {
                int eq = kv.indexOf('=');
                if (eq < 0) {
                    if (isDtype(kv)) {
                        opts.put("dtype", kv.trim()); // PATH#float32
                        continue;
                    }
                    throw new IllegalArgumentException(spec + ": option '" + kv + "' has no value (expected key=value, "
                            + "e.g. #dtype=float32&shape=1000x10, #cols=0-3, or a dtype alone: #float32)");
                }
                opts.put(kv.substring(0, eq).trim(), kv.substring(eq + 1).trim());
            }
        }
        for (String k : opts.keySet()) {
            if (!k.equals("dtype") && !k.equals("shape") && !k.equals("cols")) {
                throw new IllegalArgumentException(spec + ": unknown option '" + k + "' (expected dtype, shape or cols)");
            }
        }
        DType explicit = opts.containsKey("dtype") ? DType.parse(opts.get("dtype")) : null;
        if (file.equals("-")) {
            return stream("-", stdin, explicit != null || defaultDtype != null, opts);
        }
        Path path = Path.of(file);
        if (!Files.exists(path)) {
            throw new IllegalArgumentException(file + ": no such file");
        }
        if (Files.isDirectory(path)) {
            throw new IllegalArgumentException(file + ": is a directory, not a data file");
        }
        if (!Files.isRegularFile(path)) {
            // a named pipe, /dev/stdin, a process substitution: no positional reads
            try {
                // FileInputStream, not Files.newInputStream: the channel stream's available() seeks ("Illegal seek")
                return stream(file, new java.io.FileInputStream(path.toFile()), explicit != null || defaultDtype != null, opts);
            } catch (IOException e) {
                throw new UncheckedIOException(file + ": " + e.getMessage(), e);
            }
        }
        byte[] head = new byte[SNIFF];
        int got;
        try (InputStream in = Files.newInputStream(path)) {
            got = in.readNBytes(head, 0, head.length);
        } catch (NoSuchFileException e) {
            throw new IllegalArgumentException(file + ": no such file");
        } catch (IOException e) {
            throw new UncheckedIOException(file + ": " + e.getMessage(), e);
        }
        if (NpyHeader.hasMagic(head, got)) {
            return ArrayFile.npy(path);
        }
        String lower = file.toLowerCase();
        boolean textName = lower.endsWith(".csv") || lower.endsWith(".tsv");
        if (lower.endsWith(".npy")) {
            throw new IllegalArgumentException(file + ": not a .npy file (bad magic: it does not start with \\x93NUMPY)");
        }
        if (explicit != null) {
            return raw(path, explicit, opts, defaultShape);
        }
        boolean text = looksLikeText(head, got);
        if (textName || text) {
            if (!text) {
                throw new IllegalArgumentException(file + ": named like text but holds binary data; for raw binary "
                        + "pass " + file + "#dtype=float32 (and &shape=ROWSxCOLS)");
            }
            if (defaultDtype != null && !textName) {
                throw new IllegalArgumentException(file + ": is text, but --dtype asks for raw binary; drop --dtype to "
                        + "read it as text, or name its dtype on the file alone (" + file + "#dtype=float32)");
            }
            return CsvSource.read(path, opts.get("cols"));
        }
        if (defaultDtype != null) {
            return raw(path, defaultDtype, opts, defaultShape);
        }
        throw new IllegalArgumentException(file + ": is neither a .npy file nor text; raw binary has no header, so "
                + "name its dtype: " + file + "#dtype=float32&shape=ROWSxCOLS (or --dtype float32 --shape -1xCOLS)");
    }

    private static ArraySource raw(Path path, DType dtype, Map<String, String> opts, long[] defaultShape) {
        long[] shape = opts.containsKey("shape") ? parseShape(opts.get("shape")) : defaultShape;
        return ArrayFile.raw(path, dtype, shape == null ? new long[]{-1} : shape);
    }

    /** A pipe or standard input, told apart by its first bytes as files are. */
    private static ArraySource stream(String name, InputStream raw, boolean dtypeGiven, Map<String, String> opts) {
        BufferedInputStream in = new BufferedInputStream(raw, 1 << 16);
        try {
            in.mark(SNIFF);
            byte[] head = in.readNBytes(SNIFF);
            in.reset();
            if (NpyHeader.hasMagic(head, head.length)) {
                return ArrayFile.npy(name, in);
            }
            if (dtypeGiven) {
                throw new IllegalArgumentException(name + ": raw binary cannot be read from a pipe or standard input "
                        + "(it has no header, so its length is unknown until its end); write it to a file, or pipe a "
                        + ".npy stream (np.save(sys.stdout.buffer, a)) or text");
            }
            if (!looksLikeText(head, head.length)) {
                throw new IllegalArgumentException(name + ": the stream is neither .npy nor text; pipe a .npy stream "
                        + "or CSV/one number per line, or write raw binary to a file and pass FILE#dtype=float32");
            }
            try (BufferedReader r = new BufferedReader(new InputStreamReader(in, StandardCharsets.UTF_8))) {
                return CsvSource.read(name, r, (char) 0, opts.get("cols"));
            }
        } catch (IOException e) {
            throw new UncheckedIOException(name + ": " + e.getMessage(), e);
        }
    }

    /**
     * Text: no NUL, no control bytes but tab, CR, LF and form feed (UTF-8's bytes above 0x7F pass). Binary
     * numbers almost always hold some (float32 0.5 is {@code 00 00 00 3F}).
     */
    static boolean looksLikeText(byte[] head, int length) {
        for (int i = 0; i < length; i++) {
            int b = head[i] & 0xFF;
            if ((b < 0x20 && b != '\t' && b != '\n' && b != '\r' && b != '\f') || b == 0x7F) {
                return false;
            }
        }
        return true;
    }

    private static boolean isDtype(String s) {
        try {
            DType.parse(s);
            return true;
        } catch (IllegalArgumentException e) {
            return false;
        }
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
