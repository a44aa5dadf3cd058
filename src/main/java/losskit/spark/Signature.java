package losskit.spark;

import java.io.Serializable;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import losskit.api.Family;
import losskit.api.Form;
import losskit.api.LossDefinition;
import losskit.api.Slot;
import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructField;
import org.apache.spark.sql.types.StructType;

/**
 * The columns a LossKit aggregate takes, in order: one per input slot of the loss's form (in the form's
 * slot order: {@code input, target} for most losses, {@code x1, x2, target} for pairs), then a per-sample
 * weight when {@link #weighted()} ({@link #withWeight()}). The kinds pick the form: {@code cross-entropy} over
 * {@code (ARRAY, LABEL)} takes class labels, over {@code (ARRAY, ARRAY)} soft targets; {@code log-loss} over
 * {@code (SCALAR, LABEL)} takes the probability of class 1.
 *
 * <p>The SQL types are what Spark casts the arguments to (numeric columns of any type are accepted):
 * {@code SCALAR} = FLOAT, {@code ARRAY} = ARRAY&lt;FLOAT&gt;, {@code LABEL} = BIGINT, the weight FLOAT.
 * LossKit's inputs are float32, so a DOUBLE column is rounded to float32 exactly as
 * {@code losskit eval} rounds a float64 {@code .npy} file.
 *
 * <p>Serializable because Spark ships it inside the aggregator; its serial form is not a contract.
 *
 * @param kinds    one per input column
 * @param weighted whether a weight column follows the inputs
 * @serial exclude
 */
public record Signature(List<Kind> kinds, boolean weighted) implements Serializable {

    /** What one input column holds per table row. */
    public enum Kind {
        /** One float per row: a prediction, a target, a variance, a distance (SQL FLOAT). */
        SCALAR,
        /** A float array per row: class scores, probabilities, soft targets, an embedding (SQL ARRAY&lt;FLOAT&gt;). */
        ARRAY,
        /** An integer class label per row (SQL BIGINT). */
        LABEL;

        DataType sqlType() {
            return switch (this) {
                case SCALAR -> DataTypes.FloatType;
                case ARRAY -> DataTypes.createArrayType(DataTypes.FloatType, true);
                case LABEL -> DataTypes.LongType;
            };
        }
    }

    /**
     * Checks and copies the kinds.
     *
     * @param kinds    one per input column, at least one
     * @param weighted whether a weight column follows
     * @throws IllegalArgumentException when {@code kinds} is empty
     */
    public Signature {
        if (kinds.isEmpty()) {
            throw new IllegalArgumentException("a signature needs at least one input column");
        }
        kinds = List.copyOf(kinds);
    }

    /**
     * Unweighted columns of the given kinds.
     *
     * @param kinds one per input column, in the form's slot order
     * @return the signature
     * @throws IllegalArgumentException when no kind is given
     */
    public static Signature of(Kind... kinds) {
        return new Signature(List.of(kinds), false);
    }

    /** {@return the same columns followed by a weight column} */
    public Signature withWeight() {
        return new Signature(kinds, true);
    }

    /**
     * The columns of a loss's usual (first) form: {@code (SCALAR, SCALAR)} for elementwise losses,
     * {@code (ARRAY, LABEL)} for {@code cross-entropy}, {@code (ARRAY, ARRAY, SCALAR)} for
     * {@code cosine-embedding}, …
     *
     * @param loss a catalogue entry
     * @return its usual form's columns, unweighted
     * @throws IllegalArgumentException for a matrix loss, which is not a per-row aggregate
     */
    public static Signature defaultFor(LossDefinition loss) {
        Form f = loss.forms().get(0);
        List<Kind> k = new ArrayList<>();
        for (Slot s : f.slots()) {
            Kind kind = kindOf(f, s);
            if (kind == null) {
                throw notPerRow(loss);
            }
            k.add(kind);
        }
        return new Signature(k, false);
    }

    /**
     * Matrix losses ({@code info-nce}, {@code linear-cross-entropy}) couple the rows of one call (every
     * query is every other query's negative; a weight matrix is one operand, not a column), so their value
     * over a table is not a sum of per-batch partials: they are not Spark aggregates.
     */
    private static IllegalArgumentException notPerRow(LossDefinition loss) {
        return new IllegalArgumentException(loss.id() + ": a matrix loss couples all rows of a call, so it is not "
                + "a sum over rows and has no Spark aggregate (evaluate it with LossEngine on whole batches)");
    }

    /**
     * The form of {@code loss} these columns feed: the first whose slots match the kinds. Throws with the
     * forms the loss has when none does, or for a matrix loss, which is not a per-row aggregate.
     *
     * @param loss a catalogue entry
     * @return the form
     * @throws IllegalArgumentException when no form fits, or for a matrix loss
     */
    public Form formFor(LossDefinition loss) {
        if (loss.forms().stream().allMatch(f -> f.family() == Family.MATRIX)) {
            throw notPerRow(loss);
        }
        for (Form f : loss.forms()) {
            if (fits(f)) {
                return f;
            }
        }
        StringBuilder forms = new StringBuilder();
        for (Form f : loss.forms()) {
            StringBuilder cols = new StringBuilder();
            boolean ok = true;
            for (Slot s : f.slots()) {
                Kind k = kindOf(f, s);
                ok &= k != null;
                cols.append(cols.length() == 0 ? "" : ", ").append(s.name()).append(' ')
                        .append(k == null ? "(not a per-row column)" : k.name().toLowerCase(Locale.ROOT));
            }
            forms.append(forms.length() == 0 ? "" : " or ").append('(').append(cols).append(')');
            if (!ok) {
                forms.append(" [not available on Spark]");
            }
        }
        throw new IllegalArgumentException(loss.id() + ": columns (" + this + ") do not match the loss's inputs (expected "
                + forms + (weighted ? ", then a weight" : "") + ")");
    }

    private boolean fits(Form f) {
        if (f.slots().size() != kinds.size()) {
            return false;
        }
        for (int i = 0; i < kinds.size(); i++) {
            Slot s = f.slots().get(i);
            Kind k = kinds.get(i);
            boolean ok;
            if (f.family() == Family.ELEMENTWISE && s.kind() == Slot.Kind.VALUES) {
                // elementwise losses run over scalars or over equally long arrays (multi-label)
                ok = k != Kind.LABEL && k == kinds.get(0);
            } else {
                ok = k == kindOf(f, s);
            }
            if (!ok) {
                return false;
            }
        }
        return true;
    }

    /** The column kind a slot takes, or null for slots that are not per-row data (matrix operands). */
    private static Kind kindOf(Form f, Slot s) {
        if (f.family() == Family.MATRIX) {
            return null;
        }
        switch (s.kind()) {
            case VALUES:
                return f.family() == Family.ELEMENTWISE || f.name().equals("binary") ? Kind.SCALAR : Kind.ARRAY;
            case LABELS:
                return Kind.LABEL;
            case ROW_VALUES:
                return Kind.SCALAR;
            default:
                return null;
        }
    }

    /** The aggregate's SQL argument types: the loss spec (when it is an argument), the inputs, the weight. */
    StructType schema(boolean withSpec) {
        List<StructField> fields = new ArrayList<>();
        if (withSpec) {
            fields.add(DataTypes.createStructField("loss", DataTypes.StringType, true));
        }
        for (int i = 0; i < kinds.size(); i++) {
            fields.add(DataTypes.createStructField("column" + (i + 1), kinds.get(i).sqlType(), true));
        }
        if (weighted) {
            fields.add(DataTypes.createStructField("weight", DataTypes.FloatType, true));
        }
        return DataTypes.createStructType(fields);
    }

    /** {@return the kinds in lower case, e.g. {@code scalar, scalar, weight}} */
    @Override
    public String toString() {
        StringBuilder b = new StringBuilder();
        for (Kind k : kinds) {
            b.append(b.length() == 0 ? "" : ", ").append(k.name().toLowerCase(Locale.ROOT));
        }
        return weighted ? b + ", weight" : b.toString();
    }
}
