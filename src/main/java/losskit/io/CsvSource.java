package losskit.io;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import losskit.api.Tensor;

/**
 * Selected columns of a CSV file (comma, or tab for {@code .tsv}), read into memory: CSV is for small and
 * medium sets; huge sets belong in {@code .npy} or raw files, which stream. A first line with a
 * non-numeric field is a header, and columns may be named by it or by 0-based index ({@code 3},
 * {@code 2-11}).
 */
public final class CsvSource implements ArraySource {
    private final String name;
    private final double[] values;
    private final long rows;
    private final int cols;
    private final boolean integral;

    private CsvSource(String name, double[] values, long rows, int cols) {
        this.name = name;
        this.values = values;
        this.rows = rows;
        this.cols = cols;
        boolean all = true;
        for (double v : values) {
            all &= v == Math.rint(v) && Math.abs(v) < 1L << 53;
        }
        this.integral = all;
    }

    /** @param columns comma-separated names, indices or index ranges; {@code null} for every column */
    public static CsvSource read(Path path, String columns) {
        try (BufferedReader in = Files.newBufferedReader(path, StandardCharsets.UTF_8)) {
            return read(path.toString(), in, path.toString().toLowerCase().endsWith(".tsv") ? '\t' : 0, columns);
        } catch (NoSuchFileException e) {
            throw new IllegalArgumentException(path + ": no such file");
        } catch (IOException e) {
            throw new UncheckedIOException(path + ": " + e.getMessage(), e);
        }
    }

    /**
     * Reads text: CSV, TSV, whitespace-separated columns or one number per line.
     *
     * @param sep {@code ','} or {@code '\t'}, or 0 to decide from the first line: a comma makes it CSV, else
     *            a tab TSV, else fields are separated by runs of blanks (one column when there are none)
     */
    public static CsvSource read(String name, BufferedReader in, char sep, String columns) throws IOException {
        String line = in.readLine();
        long lineNo = 1;
        while (line != null && line.isBlank()) {
            line = in.readLine();
            lineNo++;
        }
        if (line == null) {
            throw new IllegalArgumentException(name + ": empty text file (no rows)");
        }
        if (sep == 0) {
            sep = line.indexOf(',') >= 0 ? ',' : line.indexOf('\t') >= 0 ? '\t' : ' ';
        }
        String[] first = split(line, sep);
        boolean header = false;
        for (String f : first) {
            if (!isNumber(f)) {
                header = true;
                break;
            }
        }
        int[] pick = select(name, columns, first, header);
        List<double[]> data = new ArrayList<>();
        if (!header) {
            data.add(parse(name, first, pick, lineNo));
        }
        while ((line = in.readLine()) != null) {
            lineNo++;
            if (line.isBlank()) {
                continue;
            }
            data.add(parse(name, split(line, sep), pick, lineNo));
        }
        double[] v = new double[data.size() * pick.length];
        for (int r = 0; r < data.size(); r++) {
            System.arraycopy(data.get(r), 0, v, r * pick.length, pick.length);
        }
        String label = name + (columns == null ? "" : "#cols=" + columns);
        return new CsvSource(label, v, data.size(), pick.length);
    }

    private static int[] select(String path, String columns, String[] first, boolean header) {
        if (columns == null) {
            int[] all = new int[first.length];
            for (int i = 0; i < all.length; i++) {
                all[i] = i;
            }
            return all;
        }
        List<Integer> out = new ArrayList<>();
        for (String c : columns.split(",")) {
            String s = c.trim();
            int dash = s.indexOf('-', 1);
            if (s.matches("\\d+-\\d+") && dash > 0) {
                int a = Integer.parseInt(s.substring(0, dash));
                int b = Integer.parseInt(s.substring(dash + 1));
                for (int i = a; i <= b; i++) {
                    out.add(i);
                }
            } else if (s.matches("\\d+")) {
                out.add(Integer.parseInt(s));
            } else {
                int found = -1;
                for (int i = 0; header && i < first.length; i++) {
                    if (first[i].trim().equals(s)) {
                        found = i;
                    }
                }
                if (found < 0) {
                    throw new IllegalArgumentException(path + ": no column named '" + s + "'");
                }
                out.add(found);
            }
        }
        int[] pick = out.stream().mapToInt(Integer::intValue).toArray();
        for (int p : pick) {
            if (p >= first.length) {
                throw new IllegalArgumentException(path + ": column " + p + " does not exist (the file has " + first.length + ")");
            }
        }
        return pick;
    }

    private static double[] parse(String path, String[] fields, int[] pick, long line) {
        double[] row = new double[pick.length];
        for (int i = 0; i < pick.length; i++) {
            if (pick[i] >= fields.length) {
                throw new IllegalArgumentException(path + ":" + line + ": has " + fields.length + " fields, column " + pick[i] + " is missing");
            }
            String f = fields[pick[i]].trim();
            try {
                row[i] = Double.parseDouble(f);
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException(path + ":" + line + ": '" + f + "' is not a number");
            }
        }
        return row;
    }

    private static boolean isNumber(String s) {
        try {
            Double.parseDouble(s.trim());
            return true;
        } catch (NumberFormatException e) {
            return false;
        }
    }

    private static String[] split(String line, char sep) {
        return sep == ' ' ? line.trim().split("\\s+") : line.split(sep == '\t' ? "\t" : ",", -1);
    }

    @Override
    public String name() {
        return name;
    }

    @Override
    public DType dtype() {
        // a column of whole numbers can serve as class labels; as values it reads the same either way
        return integral ? DType.INT64 : DType.FLOAT64;
    }

    @Override
    public long[] shape() {
        return cols == 1 ? new long[]{rows} : new long[]{rows, cols};
    }

    @Override
    public long rows() {
        return rows;
    }

    @Override
    public long rowLength() {
        return cols;
    }

    @Override
    public Tensor floats(long fromRow, int count) {
        float[] f = new float[count * cols];
        for (int i = 0; i < f.length; i++) {
            f[i] = (float) values[(int) (fromRow * cols) + i];
        }
        return cols == 1 ? Tensor.of(f) : Tensor.of(f, count, cols);
    }

    @Override
    public Tensor labels(long fromRow, int count) {
        if (cols != 1) {
            throw new IllegalArgumentException(name + ": labels must be one column, got " + cols);
        }
        long[] y = new long[count];
        for (int i = 0; i < count; i++) {
            double v = values[(int) fromRow + i];
            if (v != Math.rint(v)) {
                throw new IllegalArgumentException(name + "[" + (fromRow + i) + "] = " + v + " is not an integer (class labels must be integers)");
            }
            y[i] = (long) v;
        }
        return Tensor.labels(y);
    }

    @Override
    public void close() {
    }
}
