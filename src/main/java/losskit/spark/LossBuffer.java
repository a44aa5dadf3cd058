package losskit.spark;

import java.io.Serializable;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import losskit.api.Form;
import losskit.api.Loss;
import losskit.api.LossEngine;
import losskit.api.LossInputException;
import losskit.api.Partial;
import losskit.api.Reduction;
import org.apache.spark.TaskContext;
import org.apache.spark.sql.Row;

/**
 * The aggregation buffer of {@link LossAggregator}: LossKit's exact partial sums — {@code Σ s·l} and
 * {@code Σ s·d} in double-double, the element (or row) count — plus, in memory only, a bounded
 * {@link RowBatch} of rows not yet evaluated.
 *
 * <p>Rows are evaluated in batches: when the batch reaches the backend's batch size, when buffers merge,
 * when the result is read, and when Spark serialises the buffer to send it out of the task. Spark
 * serialises through the bean properties below, and reading any of them first evaluates the pending rows,
 * so what leaves a task is always the exact partial, never raw rows. A data error found while Spark
 * serialises (a label out of range) cannot be thrown there without Spark burying it in an encoder error,
 * so it travels in {@code error} and is thrown, with LossKit's message, by the merge or result that reads it.
 *
 * <p>A public Java bean only because Spark's bean encoder requires one; not an API to build by hand.
 */
public final class LossBuffer implements Serializable {
    private static final long serialVersionUID = 1L;
    private static final Map<String, Loss> PARSED = new ConcurrentHashMap<>();

    private String spec;
    private double lossHi;
    private double lossLo;
    private double weightHi;
    private double weightLo;
    private long count;
    private int width = -1;
    private String error;

    private transient Loss loss;
    private transient Form form;
    private transient RowBatch pending;
    private transient long batchElements;

    public LossBuffer() {
    }

    /** The parsed loss of a spec, parsed once per JVM. */
    static Loss parse(String spec) {
        Loss l = PARSED.get(spec);
        if (l == null) {
            l = Loss.parse(spec);
            PARSED.put(spec, l);
        }
        return l;
    }

    /** Adds one table row (columns {@code offset…}); rows with a null are skipped. */
    void add(String rowSpec, Signature sig, Row row, int offset) {
        throwIfFailed();
        if (pending == null || !rowSpec.equals(spec)) {
            bind(rowSpec, sig);
        }
        if (pending.hasNull(row, offset)) {
            return;
        }
        pending.add(row, offset, width, loss.id());
        width = pending.width();
        if (pending.elements() >= batchElements) {
            flush();
        }
    }

    private void bind(String rowSpec, Signature sig) {
        if (spec != null && !spec.equals(rowSpec)) {
            throw new IllegalArgumentException("losskit: one aggregate got two losses, " + spec + " and " + rowSpec
                    + " (expected the same loss on every row)");
        }
        Loss l = parse(rowSpec);
        this.form = sig.formFor(l.definition());
        this.loss = l;
        this.spec = rowSpec;
        this.pending = new RowBatch(sig);
        this.batchElements = ExecutorEngines.batchElements();
    }

    /** Evaluates the pending rows as one engine call and adds their partial. */
    void flush() {
        if (pending == null || pending.rows() == 0) {
            return;
        }
        LossEngine engine = ExecutorEngines.current();
        // NONE would also allocate per-row losses; its partial is SUM's
        Loss run = loss.reduction() == Reduction.NONE ? loss.reduction(Reduction.SUM) : loss;
        Partial batch;
        try {
            batch = engine.evaluate(run, pending.inputs(form)).partial();
        } catch (LossInputException e) {
            throw new IllegalArgumentException(e.getMessage() + " [index within a batch of " + pending.rows()
                    + " rows" + where() + "]", e);
        }
        ExecutorEngines.countBatch();
        pending.clear();
        Partial sum = partial().merge(Partial.of(loss, batch.components(), batch.count()));
        set(sum);
    }

    private static String where() {
        TaskContext tc = TaskContext.get();
        return tc == null ? "" : " of Spark partition " + tc.partitionId() + ", stage " + tc.stageId();
    }

    /** {@link #flush} for Spark's serialiser: a failure is kept in {@code error}, not thrown. */
    private void flushForSerialisation() {
        if (error == null) {
            try {
                flush();
            } catch (RuntimeException e) {
                error = e.getMessage() == null ? e.toString() : e.getMessage();
                pending.clear();
            }
        }
    }

    private void throwIfFailed() {
        if (error != null) {
            throw new IllegalArgumentException(error);
        }
    }

    /** Adds another buffer's rows and sums into this one. */
    LossBuffer merge(LossBuffer other) {
        throwIfFailed();
        other.throwIfFailed();
        if (other.spec == null) {
            return this;
        }
        other.flush();
        if (spec == null) {
            spec = other.spec;
            width = other.width;
            set(other.partial());
            return this;
        }
        if (!spec.equals(other.spec)) {
            throw new IllegalArgumentException("losskit: one aggregate got two losses, " + spec + " and " + other.spec
                    + " (expected the same loss on every row)");
        }
        if (width >= 0 && other.width >= 0 && width != other.width) {
            throw new IllegalArgumentException(parse(spec).id() + ": rows have arrays of " + width + " and of "
                    + other.width + " elements (expected one length per aggregate)");
        }
        width = Math.max(width, other.width);
        set(partial().merge(other.partial()));
        return this;
    }

    /** The exact partial of every row added, or null when no row was. */
    Partial result() {
        throwIfFailed();
        if (spec == null) {
            return null;
        }
        flush();
        return partial();
    }

    private Partial partial() {
        if (loss == null) {
            loss = parse(spec);
        }
        return Partial.of(loss, new double[]{lossHi, lossLo, weightHi, weightLo}, count);
    }

    private void set(Partial p) {
        double[] c = p.components();
        lossHi = c[0];
        lossLo = c[1];
        weightHi = c[2];
        weightLo = c[3];
        count = p.count();
    }

    // ---- Bean properties: what Spark serialises. Every getter evaluates the pending rows first.

    /** The loss in its CLI form ({@code bce-logits:posWeight=2}), null before the first row. */
    public String getSpec() {
        flushForSerialisation();
        return spec;
    }

    public void setSpec(String spec) {
        this.spec = spec;
    }

    /** {@code Σ s·l}, high part. */
    public double getLossHi() {
        flushForSerialisation();
        return lossHi;
    }

    public void setLossHi(double v) {
        lossHi = v;
    }

    /** {@code Σ s·l}, low part. */
    public double getLossLo() {
        flushForSerialisation();
        return lossLo;
    }

    public void setLossLo(double v) {
        lossLo = v;
    }

    /** {@code Σ s·d} (the MEAN denominator), high part. */
    public double getWeightHi() {
        flushForSerialisation();
        return weightHi;
    }

    public void setWeightHi(double v) {
        weightHi = v;
    }

    /** {@code Σ s·d}, low part. */
    public double getWeightLo() {
        flushForSerialisation();
        return weightLo;
    }

    public void setWeightLo(double v) {
        weightLo = v;
    }

    /** Elements (elementwise losses) or rows (row losses) evaluated. */
    public long getCount() {
        flushForSerialisation();
        return count;
    }

    public void setCount(long v) {
        count = v;
    }

    /** The array length every row of this aggregate has, −1 without array columns. */
    public int getWidth() {
        flushForSerialisation();
        return width;
    }

    public void setWidth(int v) {
        width = v;
    }

    /** A data error found while serialising, thrown by whoever merges or reads this buffer; else null. */
    public String getError() {
        flushForSerialisation();
        return error;
    }

    public void setError(String v) {
        error = v;
    }
}
