package losskit.cli;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.json.JsonWriteFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.json.JsonMapper;
import java.io.UncheckedIOException;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import losskit.api.Loss;
import losskit.api.Partial;
import losskit.io.StreamingEvaluation.ClassStat;
import losskit.io.StreamingEvaluation.LossOutcome;
import losskit.io.StreamingEvaluation.Outcome;

/**
 * The report of an evaluation in three renderings of the same fields: a table for people, one JSON
 * document (schema {@code losskit-report/1}, stable field names, exact partials so shards merge), and CSV.
 */
final class Report {
    static final String SCHEMA = "losskit-report/1";
    static final ObjectMapper JSON = JsonMapper.builder()
            .enable(JsonWriteFeature.WRITE_NAN_AS_STRINGS)
            .enable(SerializationFeature.INDENT_OUTPUT)
            .build();

    private Report() {
    }

    static String table(String title, String backendLine, Outcome o, boolean perClass) {
        return table(title, backendLine, o, perClass, null);
    }

    /**
     * @param perSampleFile where the per-sample losses of a {@code reduction none} loss went (the report
     *                      shows no single value for it: a sum printed as "none" was a wrong answer)
     */
    static String table(String title, String backendLine, Outcome o, boolean perClass, String perSampleFile) {
        return table(title, backendLine, o, perClass, perSampleFile, null);
    }

    /**
     * @param uninformed the demo's reference values, loss → the same loss of a model that knows only the averages
     *                   (NaN: none); non-null only for the demo, whose table shows them in place of the seconds and
     *                   GB/s: one cold pass over a few MB measures the JIT warming up, not throughput
     */
    static String table(String title, String backendLine, Outcome o, boolean perClass, String perSampleFile,
                        Map<Loss, Double> uninformed) {
        boolean demo = uninformed != null;
        StringBuilder b = new StringBuilder();
        b.append(title).append('\n').append("backend: ").append(backendLine).append('\n');
        if (demo) {
            b.append(String.format(Locale.ROOT, "%s evaluated%n%n", bytes(o.bytes())));
        } else {
            b.append(String.format(Locale.ROOT, "rows %,d of %,d, %s read in %.3f s (%.2f GB/s)%n%n", o.toRow() - o.fromRow(),
                    o.totalRows(), bytes(o.bytes()), o.seconds(), gbps(o.bytes(), o.seconds())));
        }
        String fmt = demo ? "%-36s %-10s %18s %18s %14s %-7s%n" : "%-36s %-10s %18s %14s %16s %-7s %9s %9s%n";
        if (demo) {
            b.append(String.format(Locale.ROOT, fmt, "loss", "reduction", "value", "uninformed", "count", "backend"));
            b.append(String.format(Locale.ROOT, fmt, "-".repeat(36), "-".repeat(10), "-".repeat(18), "-".repeat(18),
                    "-".repeat(14), "-".repeat(7)));
        } else {
            b.append(String.format(Locale.ROOT, fmt, "loss", "reduction", "value", "count", "weight sum", "backend", "seconds", "GB/s"));
            b.append(String.format(Locale.ROOT, fmt, "-".repeat(36), "-".repeat(10), "-".repeat(18), "-".repeat(14),
                    "-".repeat(16), "-".repeat(7), "-".repeat(9), "-".repeat(9)));
        }
        for (LossOutcome l : o.losses()) {
            Partial p = l.partial();
            boolean none = l.loss().reduction() == losskit.api.Reduction.NONE;
            String value = none ? "per sample, below" : String.format(Locale.ROOT, "%.10g", p.value());
            if (demo) {
                double u = uninformed.getOrDefault(l.loss(), Double.NaN);
                b.append(String.format(Locale.ROOT, fmt, l.loss(), l.loss().reduction().id(), value,
                        Double.isNaN(u) ? "-" : String.format(Locale.ROOT, "%.6g", u),
                        String.format(Locale.ROOT, "%,d", p.count()), l.backend()));
            } else {
                b.append(String.format(Locale.ROOT, fmt, l.loss(), l.loss().reduction().id(), value,
                        String.format(Locale.ROOT, "%,d", p.count()), String.format(Locale.ROOT, "%.8g", p.sumWeight()),
                        l.backend(), String.format(Locale.ROOT, "%.3f", l.seconds()),
                        String.format(Locale.ROOT, "%.2f", gbps(l.bytes(), l.seconds()))));
            }
            if (none) {
                b.append(String.format(Locale.ROOT, "    %,d per-sample losses written to %s%n", p.count(), perSampleFile));
            }
            if (perClass && !l.perClass().isEmpty()) {
                // worst first, as in the plot: the classes to look at are the ones the model gets most wrong
                List<ClassStat> cs = new ArrayList<>(l.perClass());
                cs.sort(java.util.Comparator.comparingDouble(ClassStat::mean).reversed().thenComparingLong(ClassStat::label));
                b.append(String.format(Locale.ROOT, "    %,d classes, worst (highest mean loss) first:%n", cs.size()));
                int shown = 0;
                for (ClassStat c : cs) {
                    if (shown++ == 20 && cs.size() > 21) {
                        b.append(String.format(Locale.ROOT, "    … %d more classes (every class: --format csv or json)%n",
                                cs.size() - 20));
                        break;
                    }
                    b.append(String.format(Locale.ROOT, "    class %-8d mean loss %14.8g over %,d rows%n", c.label(), c.mean(), c.count()));
                }
            }
        }
        return b.toString();
    }

    static Map<String, Object> document(String backendLine, Outcome o, Map<String, Object> extra) {
        return document(backendLine, o, extra, null);
    }

    /** @param perSampleFile as for {@link #table(String, String, Outcome, boolean, String)} */
    static Map<String, Object> document(String backendLine, Outcome o, Map<String, Object> extra, String perSampleFile) {
        Map<String, Object> doc = new LinkedHashMap<>();
        doc.put("schema", SCHEMA);
        doc.put("losskit", Version.VERSION); // which build computed these numbers
        doc.put("backend", backendLine);
        doc.putAll(extra);
        doc.put("rows", Map.of("from", o.fromRow(), "to", o.toRow(), "total", o.totalRows()));
        if (o.cpuFromRow() >= 0) {
            doc.put("cpuFromRow", o.cpuFromRow()); // the GPU failed: the rows from here on ran on the CPU
        }
        doc.put("bytes", o.bytes());
        doc.put("seconds", o.seconds());
        doc.put("gbPerSecond", gbps(o.bytes(), o.seconds()));
        List<Object> results = new ArrayList<>();
        for (LossOutcome l : o.losses()) {
            Map<String, Object> r = new LinkedHashMap<>();
            Partial p = l.partial();
            r.put("loss", l.loss().toString());
            r.put("id", l.loss().id());
            r.put("reduction", l.loss().reduction().id());
            r.put("params", params(l.loss()));
            boolean none = l.loss().reduction() == losskit.api.Reduction.NONE;
            r.put("value", none ? null : p.value());
            if (none) {
                r.put("perSampleFile", perSampleFile);
            }
            r.put("count", p.count());
            r.put("weightSum", p.sumWeight());
            r.put("lossSum", p.sumLoss());
            r.put("backend", l.backend());
            r.put("seconds", l.seconds());
            r.put("bytes", l.bytes());
            r.put("gbPerSecond", gbps(l.bytes(), l.seconds()));
            double[] c = p.components();
            Map<String, Object> partial = new LinkedHashMap<>();
            partial.put("lossHi", c[0]);
            partial.put("lossLo", c[1]);
            partial.put("weightHi", c[2]);
            partial.put("weightLo", c[3]);
            partial.put("count", p.count());
            r.put("partial", partial);
            if (!l.perClass().isEmpty()) {
                List<Object> cls = new ArrayList<>();
                for (ClassStat s : l.perClass()) {
                    cls.add(Map.of("class", s.label(), "count", s.count(), "lossSum", s.sumLoss(), "meanLoss", s.mean()));
                }
                r.put("perClass", cls);
            }
            results.add(r);
        }
        doc.put("results", results);
        return doc;
    }

    /**
     * Every parameter of the loss as it ran, the defaults included (the spec names only the ones given):
     * a report read a year later must say which delta or eps produced its value without the catalogue of
     * the LossKit version that wrote it. Arrays as JSON arrays; a parameter without value (e.g. no class
     * weights) as null.
     */
    static Map<String, Object> params(Loss loss) {
        Map<String, Object> out = new LinkedHashMap<>();
        for (losskit.api.ParamSpec<?> p : loss.definition().params()) {
            Object v = loss.get(p.param());
            if (v instanceof float[] a) {
                List<Double> list = new ArrayList<>();
                for (float f : a) {
                    list.add((double) f);
                }
                v = list;
            } else if (v instanceof Enum<?> e) {
                v = losskit.api.Param.format(e);
            }
            out.put(p.param().name(), v);
        }
        return out;
    }

    static String json(Map<String, Object> doc) {
        try {
            return JSON.writeValueAsString(doc) + "\n";
        } catch (JsonProcessingException e) {
            throw new UncheckedIOException(e);
        }
    }

    static String csv(Outcome o) {
        return csv(o, null);
    }

    /**
     * One row per loss, then (with --per-class) one row per class of each classification loss: its mean loss
     * in {@code value}, its rows in {@code count} and the label in the last column, {@code class}, which is
     * empty on the loss's own row (filter on it: {@code df[df["class"].isna()]}).
     *
     * @param perSampleFile as for {@link #table(String, String, Outcome, boolean, String)}: the value field names it
     */
    static String csv(Outcome o, String perSampleFile) {
        StringBuilder b = new StringBuilder("loss,reduction,value,count,weight_sum,backend,seconds,gb_per_second,class\n");
        for (LossOutcome l : o.losses()) {
            Partial p = l.partial();
            String loss = '"' + l.loss().toString().replace("\"", "\"\"") + '"';
            String red = l.loss().reduction().id();
            b.append(loss).append(',').append(red)
                    .append(',').append(l.loss().reduction() == losskit.api.Reduction.NONE
                            ? "\"per sample: " + perSampleFile + "\"" : String.valueOf(p.value())).append(',').append(p.count()).append(',').append(p.sumWeight())
                    .append(',').append(l.backend()).append(',').append(l.seconds()).append(',')
                    .append(gbps(l.bytes(), l.seconds())).append(",\n");
            for (ClassStat c : l.perClass()) {
                // per-class rows: mean loss and rows of the class; weight sum, seconds and GB/s are the loss's, not the class's
                b.append(loss).append(',').append(red).append(',').append(c.mean()).append(',').append(c.count())
                        .append(",,").append(l.backend()).append(",,,").append(c.label()).append('\n');
            }
        }
        return b.toString();
    }

    /** Reads the partials of a shard document back: loss spec → partial. */
    static Map<String, Partial> partials(JsonNode doc, String file) {
        if (!SCHEMA.equals(doc.path("schema").asText())) {
            throw new IllegalArgumentException(file + ": not a " + SCHEMA + " document");
        }
        Map<String, Partial> out = new LinkedHashMap<>();
        for (JsonNode r : doc.get("results")) {
            Loss loss = Loss.parse(r.get("loss").asText());
            if (loss.reduction() == losskit.api.Reduction.NONE) {
                throw new IllegalArgumentException(file + ": " + loss + " has reduction none: its values are the "
                        + "per-sample files, which merge by concatenation, not here");
            }
            JsonNode p = r.get("partial");
            out.put(loss.toString(), Partial.of(loss, new double[]{p.get("lossHi").asDouble(), p.get("lossLo").asDouble(),
                    p.get("weightHi").asDouble(), p.get("weightLo").asDouble()}, p.get("count").asLong()));
        }
        return out;
    }

    /** Per-class statistics of a shard document: loss spec → class → {loss sum, count}. */
    static Map<String, Map<Long, double[]>> perClass(JsonNode doc) {
        Map<String, Map<Long, double[]>> out = new LinkedHashMap<>();
        for (JsonNode r : doc.get("results")) {
            Map<Long, double[]> classes = new java.util.TreeMap<>();
            for (JsonNode c : r.path("perClass")) {
                classes.put(c.get("class").asLong(), new double[]{c.get("lossSum").asDouble(), c.get("count").asLong()});
            }
            out.put(Loss.parse(r.get("loss").asText()).toString(), classes);
        }
        return out;
    }

    static double gbps(long bytes, double seconds) {
        return seconds > 0 ? bytes / seconds / 1e9 : 0;
    }

    static String bytes(long b) {
        if (b >= 1L << 30) {
            return String.format(Locale.ROOT, "%.2f GiB", b / (double) (1L << 30));
        }
        if (b >= 1L << 20) {
            return String.format(Locale.ROOT, "%.2f MiB", b / (double) (1L << 20));
        }
        return String.format(Locale.ROOT, "%,d bytes", b);
    }
}
