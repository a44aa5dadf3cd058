package losskit.spark;

import java.nio.FloatBuffer;
import java.nio.LongBuffer;
import java.util.Arrays;
import java.util.List;
import losskit.api.Family;
import losskit.api.Form;
import losskit.api.Inputs;
import losskit.api.Tensor;
import org.apache.spark.sql.Row;

/**
 * Table rows gathered column by column (float32 values, int64 labels, float32 weights) until they are
 * handed to the engine as one call. Arrays grow by doubling from a few rows, so a group with three rows
 * holds three rows; the owner flushes at {@link #elements()} ≥ the backend's batch size, so a batch never
 * grows past that plus one row. Reused after {@link #clear()}.
 */
final class RowBatch {
    private static final int INITIAL_ROWS = 16;

    private final Signature signature;
    private final float[][] values;
    private final long[][] labels;
    /** The current row's array columns, read once per row. */
    private final List<Object>[] lists;
    private float[] weights;
    private int capacity;
    private int rows;
    /** Elements per array column (all array columns of one form have the row's length); −1 before the first row. */
    private int width = -1;

    RowBatch(Signature signature) {
        this.signature = signature;
        int k = signature.kinds().size();
        this.values = new float[k][];
        this.labels = new long[k][];
        @SuppressWarnings("unchecked")
        List<Object>[] l = new List[k];
        this.lists = l;
    }

    int rows() {
        return rows;
    }

    /** Rows × the array width (1 for scalar columns): the size of the call this batch makes. */
    long elements() {
        return (long) rows * Math.max(1, width);
    }

    /** The array width the batch's rows share, or −1. */
    int width() {
        return width;
    }

    void clear() {
        rows = 0;
    }

    /**
     * Whether a row has a null in one of the columns read ({@code offset} onwards): such rows are skipped,
     * as SQL aggregates skip nulls.
     */
    boolean hasNull(Row row, int offset) {
        int n = signature.kinds().size() + (signature.weighted() ? 1 : 0);
        for (int c = 0; c < n; c++) {
            if (row.isNullAt(offset + c)) {
                return true;
            }
        }
        return false;
    }

    /**
     * Appends columns {@code offset…} of a row. {@code groupWidth} is the array width earlier batches of the
     * same aggregate saw (−1 if none): every row of one aggregate has the same number of classes.
     */
    void add(Row row, int offset, int groupWidth, String lossId) {
        List<Signature.Kind> kinds = signature.kinds();
        if (width < 0) {
            width = groupWidth;
        }
        for (int c = 0; c < kinds.size(); c++) {
            if (kinds.get(c) == Signature.Kind.ARRAY) {
                lists[c] = row.getList(offset + c);
                int len = lists[c].size();
                if (width < 0) {
                    width = len;
                } else if (len != width) {
                    throw new IllegalArgumentException(lossId + ": column " + (c + 1) + " has an array of " + len
                            + " elements where earlier rows have " + width + " (expected one length per aggregate)");
                }
            }
        }
        if (rows == capacity) {
            grow();
        }
        for (int c = 0; c < kinds.size(); c++) {
            int at = offset + c;
            switch (kinds.get(c)) {
                case SCALAR -> values[c][rows] = number(row.get(at), lossId, c, -1).floatValue();
                case LABEL -> labels[c][rows] = number(row.get(at), lossId, c, -1).longValue();
                case ARRAY -> {
                    List<Object> list = lists[c];
                    float[] dst = values[c];
                    int base = rows * width;
                    for (int j = 0; j < width; j++) {
                        dst[base + j] = number(list.get(j), lossId, c, j).floatValue();
                    }
                }
            }
        }
        if (signature.weighted()) {
            weights[rows] = number(row.get(offset + kinds.size()), lossId, kinds.size(), -1).floatValue();
        }
        rows++;
    }

    private static Number number(Object o, String lossId, int column, int element) {
        if (o instanceof Number n) {
            return n;
        }
        String where = "column " + (column + 1) + (element >= 0 ? " element " + element : "");
        throw new IllegalArgumentException(lossId + ": " + where + " = " + o + " is not a number");
    }

    private void grow() {
        int next = capacity == 0 ? INITIAL_ROWS : Math.multiplyExact(capacity, 2);
        List<Signature.Kind> kinds = signature.kinds();
        for (int c = 0; c < kinds.size(); c++) {
            switch (kinds.get(c)) {
                case SCALAR -> values[c] = values[c] == null ? new float[next] : Arrays.copyOf(values[c], next);
                case LABEL -> labels[c] = labels[c] == null ? new long[next] : Arrays.copyOf(labels[c], next);
                case ARRAY -> {
                    int size = Math.multiplyExact(next, Math.max(1, width));
                    values[c] = values[c] == null ? new float[size] : Arrays.copyOf(values[c], size);
                }
            }
        }
        if (signature.weighted()) {
            weights = weights == null ? new float[next] : Arrays.copyOf(weights, next);
        }
        capacity = next;
    }

    /**
     * The batch as one engine call on {@code form}: views of the column arrays, no copy. A per-row weight
     * of an elementwise loss over array columns applies to every element of its row.
     */
    Inputs inputs(Form form) {
        List<Signature.Kind> kinds = signature.kinds();
        Inputs in = Inputs.empty();
        for (int c = 0; c < kinds.size(); c++) {
            String slot = form.slots().get(c).name();
            Tensor t = switch (kinds.get(c)) {
                case SCALAR -> Tensor.of(FloatBuffer.wrap(values[c], 0, rows));
                case LABEL -> Tensor.labels(LongBuffer.wrap(labels[c], 0, rows));
                case ARRAY -> Tensor.of(FloatBuffer.wrap(values[c], 0, rows * width), rows, width);
            };
            in = in.with(slot, t);
        }
        if (signature.weighted()) {
            if (form.family() == Family.ELEMENTWISE && width >= 0) {
                float[] perElement = new float[rows * width];
                for (int r = 0; r < rows; r++) {
                    Arrays.fill(perElement, r * width, (r + 1) * width, weights[r]);
                }
                in = in.weights(perElement);
            } else {
                in = in.weights(Tensor.of(FloatBuffer.wrap(weights, 0, rows)));
            }
        }
        return in;
    }
}
