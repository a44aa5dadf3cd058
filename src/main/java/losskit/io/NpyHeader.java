package losskit.io;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The header of a NumPy {@code .npy} file: magic, version, and the dict literal
 * {@code {'descr': '<f4', 'fortran_order': False, 'shape': (N, C), }}. Written by hand because it is a
 * few lines, and the maintained Java readers cannot map files beyond 2³¹ elements.
 */
record NpyHeader(DType dtype, long[] shape, long dataOffset) {
    private static final byte[] MAGIC = {(byte) 0x93, 'N', 'U', 'M', 'P', 'Y'};
    private static final Pattern DESCR = Pattern.compile("'descr'\\s*:\\s*'([^']*)'");
    private static final Pattern FORTRAN = Pattern.compile("'fortran_order'\\s*:\\s*(True|False)");
    private static final Pattern SHAPE = Pattern.compile("'shape'\\s*:\\s*\\(([^)]*)\\)");

    /** Whether these leading bytes are the .npy magic (the file is NumPy's whatever its name). */
    static boolean hasMagic(byte[] head, int length) {
        if (length < MAGIC.length) {
            return false;
        }
        for (int i = 0; i < MAGIC.length; i++) {
            if (head[i] != MAGIC[i]) {
                return false;
            }
        }
        return true;
    }

    static NpyHeader read(FileChannel ch, String file) {
        try {
            ByteBuffer pre = ByteBuffer.allocate(12).order(ByteOrder.LITTLE_ENDIAN);
            int got = ch.read(pre, 0);
            long[] lengths = prefix(pre, got, file);
            long headerLen = lengths[0];
            int headerStart = (int) lengths[1];
            if (headerStart + headerLen > ch.size()) {
                throw new IllegalArgumentException(file + ": .npy header length " + headerLen + " runs past the end of the file");
            }
            ByteBuffer hb = ByteBuffer.allocate((int) headerLen);
            ch.read(hb, headerStart);
            return dict(hb.array(), pre.get(6), headerStart + headerLen, file);
        } catch (IOException e) {
            throw new UncheckedIOException(file + ": " + e.getMessage(), e);
        }
    }

    /**
     * Reads the header from a stream (a pipe, standard input), leaving the stream at the first data byte:
     * nothing of the header is ever taken as data.
     */
    static NpyHeader read(InputStream in, String file) {
        try {
            byte[] first = in.readNBytes(10);
            ByteBuffer pre = ByteBuffer.allocate(12).order(ByteOrder.LITTLE_ENDIAN);
            pre.put(first);
            int got = first.length;
            if (got == 10 && (first[6] == 2 || first[6] == 3)) {
                byte[] more = in.readNBytes(2);
                pre.put(more);
                got += more.length;
            }
            long[] lengths = prefix(pre, got, file);
            byte[] h = in.readNBytes((int) lengths[0]);
            if (h.length < lengths[0]) {
                throw new IllegalArgumentException(file + ": .npy header length " + lengths[0] + " runs past the end of the stream");
            }
            return dict(h, pre.get(6), lengths[1] + lengths[0], file);
        } catch (IOException e) {
            throw new UncheckedIOException(file + ": " + e.getMessage(), e);
        }
    }

    /** Magic and version from the first {@code got} bytes: {header length, header start}. */
    private static long[] prefix(ByteBuffer pre, int got, String file) {
        if (got < 10) {
            throw new IllegalArgumentException(file + ": not a .npy file (only " + Math.max(got, 0) + " bytes)");
        }
        if (!hasMagic(pre.array(), got)) {
            throw new IllegalArgumentException(file + ": not a .npy file (bad magic)");
        }
        int major = pre.get(6);
        long headerLen;
        int headerStart;
        if (major == 1) {
            headerLen = Short.toUnsignedInt(pre.getShort(8));
            headerStart = 10;
        } else if (major == 2 || major == 3) {
            if (got < 12) {
                throw new IllegalArgumentException(file + ": .npy header is truncated");
            }
            headerLen = Integer.toUnsignedLong(pre.getInt(8));
            headerStart = 12;
        } else {
            throw new IllegalArgumentException(file + ": .npy format version " + major + " is not supported (expected 1, 2 or 3)");
        }
        if (headerLen > 1 << 20) {
            throw new IllegalArgumentException(file + ": .npy header length " + headerLen + " runs past the end of the file");
        }
        return new long[]{headerLen, headerStart};
    }

    private static NpyHeader dict(byte[] bytes, int major, long dataOffset, String file) {
        String h = new String(bytes, major == 3 ? StandardCharsets.UTF_8 : StandardCharsets.ISO_8859_1);
        Matcher d = DESCR.matcher(h);
        Matcher f = FORTRAN.matcher(h);
        Matcher s = SHAPE.matcher(h);
        if (!d.find() || !f.find() || !s.find()) {
            throw new IllegalArgumentException(file + ": .npy header is malformed: " + h.trim());
        }
        DType dtype = DType.fromNpy(d.group(1), file);
        if (f.group(1).equals("True")) {
            throw new IllegalArgumentException(file + ": Fortran-ordered arrays are not supported (save with np.ascontiguousarray)");
        }
        String dims = s.group(1).trim();
        long[] shape;
        if (dims.isEmpty()) {
            shape = new long[0];
        } else {
            String[] parts = dims.split(",");
            int n = 0;
            long[] tmp = new long[parts.length];
            for (String p : parts) {
                if (!p.isBlank()) {
                    try {
                        tmp[n++] = Long.parseLong(p.trim());
                    } catch (NumberFormatException e) {
                        throw new IllegalArgumentException(file + ": .npy shape (" + dims + ") is malformed");
                    }
                    if (tmp[n - 1] < 0) {
                        throw new IllegalArgumentException(file + ": .npy shape (" + dims + ") has a negative dimension");
                    }
                }
            }
            shape = java.util.Arrays.copyOf(tmp, n);
        }
        return new NpyHeader(dtype, shape, dataOffset);
    }

    /** A version 1.0 header (padded to 64 bytes, as NumPy writes it) for a C-ordered array. */
    static byte[] write(DType dtype, long[] shape) {
        StringBuilder dims = new StringBuilder();
        for (long d : shape) {
            dims.append(d).append(", ");
        }
        String s = shape.length == 1 ? shape[0] + "," : dims.length() > 0 ? dims.substring(0, dims.length() - 2) : "";
        String dict = "{'descr': '" + dtype.npyDescr + "', 'fortran_order': False, 'shape': (" + s + "), }";
        int total = 10 + dict.length() + 1;
        int pad = (64 - total % 64) % 64;
        String header = dict + " ".repeat(pad) + "\n";
        ByteBuffer b = ByteBuffer.allocate(10 + header.length()).order(ByteOrder.LITTLE_ENDIAN);
        b.put(MAGIC).put((byte) 1).put((byte) 0).putShort((short) header.length());
        b.put(header.getBytes(StandardCharsets.ISO_8859_1));
        return b.array();
    }
}
