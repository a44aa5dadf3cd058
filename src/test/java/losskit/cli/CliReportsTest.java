package losskit.cli;

import static losskit.cli.LossKitCliTest.cli;
import static losskit.cli.LossKitCliTest.fixture;
import static losskit.cli.LossKitCliTest.json;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import losskit.api.Catalogue;
import losskit.api.Loss;
import losskit.api.LossDefinition;
import losskit.api.ParamSpec;
import losskit.cli.LossKitCliTest.NpyTestFiles;
import losskit.cli.LossKitCliTest.Run;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Reports and plots a person learns from (issue 14 §5): the CSV carries the per-class rows, the JSON says which
 * build, which parameters (defaults included) and which input files produced it, the per-class plot is sorted
 * worst first, labelled, covers every loss and says when classes are cut off, the histogram marks mean and
 * median, and the demo explains its data and what a good value is. The plots are checked through their SVG,
 * whose text JFreeSVG writes as {@code <text>} elements: what the assertions read is what the reader sees.
 */
class CliReportsTest {
    @TempDir
    Path tmp;

    /** The text elements of an SVG in document (drawing) order, entities decoded. */
    static List<String> svgTexts(Path svg) throws IOException {
        List<String> out = new ArrayList<>();
        Matcher m = Pattern.compile("<text[^>]*>([^<]*)</text>").matcher(Files.readString(svg));
        while (m.find()) {
            out.add(m.group(1).replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", "\"")
                    .replace("&#39;", "'").replace("&apos;", "'"));
        }
        return out;
    }

    static boolean anyContains(List<String> texts, String s) {
        return texts.stream().anyMatch(t -> t.contains(s));
    }

    /** CSV under --per-class: after the loss's own row, one row per class with the JSON's mean loss and count. */
    @Test
    void csvCarriesThePerClassRows() throws IOException {
        String[] args = {"eval", "--pred", fixture("pred_f32.npy"), "--target", fixture("labels_i32.npy"),
                "--loss", "cross-entropy", "--per-class"};
        Run csv = cli(concat(args, "--format", "csv"));
        assertEquals(0, csv.code(), csv.err());
        String[] lines = csv.out().strip().split("\n");
        assertEquals("loss,reduction,value,count,weight_sum,backend,seconds,gb_per_second,class", lines[0]);
        // the loss row (class empty) and the fixture's 4 classes
        assertEquals(1 + 1 + 4, lines.length, csv.out());
        assertTrue(lines[1].endsWith(","), "the loss's own row has an empty class: " + lines[1]);
        JsonNode perClass = json(cli(concat(args, "--format", "json"))).get("results").get(0).get("perClass");
        for (int i = 0; i < 4; i++) {
            String[] f = lines[2 + i].split(",");
            JsonNode c = perClass.get(i);
            assertEquals(c.get("class").asLong(), Long.parseLong(f[8]), lines[2 + i]);
            assertEquals(c.get("meanLoss").asDouble(), Double.parseDouble(f[2]), 0, lines[2 + i]);
            assertEquals(c.get("count").asLong(), Long.parseLong(f[3]), lines[2 + i]);
        }
        // without --per-class nothing is computed per class and there are no class rows
        Run plain = cli("eval", "--pred", fixture("pred_f32.npy"), "--target", fixture("labels_i32.npy"),
                "--loss", "cross-entropy", "--format", "csv");
        assertEquals(2, plain.out().strip().split("\n").length, plain.out());
    }

    /**
     * JSON: the version of the build, every parameter of every loss with the defaults filled in (the spec
     * names only what was given), and each input file's path, size and modification time.
     */
    @Test
    void jsonCarriesVersionParametersAndInputFiles() throws IOException {
        JsonNode doc = json(cli("eval", "--pred", fixture("pred_f32.npy"), "--target", fixture("labels_i64.npy"),
                "--loss", "cross-entropy:labelSmoothing=0.1", "--loss", "multi-margin", "--format", "json"));
        // the pom's version, filtered into the build: never the "unknown" of an unfiltered resource
        assertTrue(doc.get("losskit").asText().matches("\\d+\\.\\d+\\.\\d+.*"), doc.get("losskit").asText());
        assertEquals(Version.VERSION, doc.get("losskit").asText());
        for (JsonNode r : doc.get("results")) {
            LossDefinition d = Catalogue.get(r.get("id").asText());
            JsonNode params = r.get("params");
            assertEquals(d.params().size(), params.size(), r.toString());
            for (ParamSpec<?> p : d.params()) {
                assertTrue(params.has(p.param().name()), p.param().name() + " missing in " + params);
            }
        }
        JsonNode ce = doc.get("results").get(0).get("params");
        assertEquals(0.1, ce.get("labelSmoothing").asDouble(), 0); // given
        Loss defaults = Loss.of("cross-entropy");
        assertEquals(((Number) defaults.get(losskit.api.Param.IGNORE_INDEX)).longValue(), ce.get("ignoreIndex").asLong()); // default
        assertTrue(ce.get("classWeight").isNull(), "no class weights: null, not absent: " + ce);

        JsonNode files = doc.get("files");
        assertEquals(2, files.size(), files.toString());
        for (JsonNode f : files) {
            Path p = Path.of(f.get("path").asText());
            assertTrue(p.isAbsolute(), p.toString());
            assertEquals(Files.size(p), f.get("bytes").asLong(), f.toString());
            assertEquals(Files.getLastModifiedTime(p).toInstant().toString(), f.get("modified").asText());
        }
        assertEquals("input", files.get(0).get("slot").asText());
        assertEquals("target", files.get(1).get("slot").asText());
        assertTrue(files.get(1).get("path").asText().endsWith("labels_i64.npy"));
    }

    /** 50 classes, more than the plot draws: the worst 40, sorted, labelled, and a visible note about the other 10. */
    @Test
    void perClassPlotIsSortedLabelledAndSaysWhenClassesAreCutOff() throws IOException {
        int rows = 500;
        int classes = 50;
        float[] pred = new float[rows * classes];
        long[] labels = new long[rows];
        java.util.SplittableRandom rnd = new java.util.SplittableRandom(14);
        for (int i = 0; i < rows; i++) {
            labels[i] = i % classes;
            for (int c = 0; c < classes; c++) {
                // class k's true logit grows with k: the classes differ, so the order means something
                pred[i * classes + c] = (float) (rnd.nextGaussian() + (c == labels[i] ? 0.1 * c : 0));
            }
        }
        Path p = tmp.resolve("p.npy");
        Path y = tmp.resolve("y.npy");
        NpyTestFiles.write(p, pred, rows, classes);
        NpyTestFiles.writeLabels(y, labels);
        Path svg = tmp.resolve("classes.svg");
        Run r = cli("eval", "--pred", p.toString(), "--target", y.toString(), "--loss", "cross-entropy",
                "--loss", "multi-margin", "--per-class", "--plot", svg.toString(), "--format", "json");
        JsonNode doc = json(r);
        List<String> texts = svgTexts(svg);
        assertTrue(anyContains(texts, "showing the 40 worst of 50 classes"), texts.toString());
        // every loss gets its panel, not only the first
        assertTrue(anyContains(texts, "Mean cross-entropy per class"), texts.toString());
        assertTrue(anyContains(texts, "Mean multi-margin per class"), texts.toString());

        // the category labels of the first panel, top to bottom, are the 40 classes of highest mean loss, in order
        List<JsonNode> expected = new ArrayList<>();
        doc.get("results").get(0).get("perClass").forEach(expected::add);
        expected.sort((a, b) -> Double.compare(b.get("meanLoss").asDouble(), a.get("meanLoss").asDouble()));
        List<String> drawn = new ArrayList<>();
        for (String t : texts) {
            if (t.matches("class \\d+") && drawn.size() < 40) {
                drawn.add(t);
            }
        }
        List<String> worst = expected.subList(0, 40).stream().map(c -> "class " + c.get("class").asLong()).toList();
        assertEquals(worst, drawn);
        // each bar carries its mean loss and its row count: "2.345  (10)"
        Map<String, Integer> labelCount = new HashMap<>();
        for (String t : texts) {
            if (t.matches("\\S+  \\(\\d[\\d,]*\\)")) {
                labelCount.merge("bar", 1, Integer::sum);
            }
        }
        assertEquals(80, labelCount.getOrDefault("bar", 0), "40 labelled bars in each of 2 panels: " + texts);
        String worstLabel = Plots.num(expected.get(0).get("meanLoss").asDouble()) + "  (" + expected.get(0).get("count").asLong() + ")";
        assertTrue(texts.contains(worstLabel), worstLabel + " not among " + texts);

        // 4 classes: all drawn, no note
        Path small = tmp.resolve("small.svg");
        assertEquals(0, cli("eval", "--pred", fixture("pred_f32.npy"), "--target", fixture("labels_i32.npy"),
                "--loss", "cross-entropy", "--per-class", "--plot", small.toString()).code());
        assertFalse(anyContains(svgTexts(small), "worst of"), svgTexts(small).toString());
    }

    /** The histogram: one per loss, n with thousands separators, mean (exact) and median marked. */
    @Test
    void histogramMarksMeanAndMedianForEveryLoss() throws IOException {
        int n = 30_000;
        float[] pred = new float[n];
        float[] target = new float[n];
        for (int i = 0; i < n; i++) {
            pred[i] = (float) (i % 100) / 10f;
        }
        Path p = tmp.resolve("p.npy");
        Path t = tmp.resolve("t.npy");
        NpyTestFiles.write(p, pred, n);
        NpyTestFiles.write(t, target, n);
        Path svg = tmp.resolve("h.svg");
        JsonNode doc = json(cli("eval", "--pred", p.toString(), "--target", t.toString(), "--loss", "mse", "--loss", "mae",
                "--plot", svg.toString(), "--format", "json"));
        List<String> texts = svgTexts(svg);
        assertTrue(anyContains(texts, "Per-sample mse"), texts.toString());
        assertTrue(anyContains(texts, "Per-sample mae"), texts.toString());
        assertTrue(anyContains(texts, "n = 30,000"), texts.toString());
        // the MSE's per-sample values are (i%100/10)², 1% of them exactly 0: the mean marker says the report's value
        String mean = Plots.num(doc.get("results").get(0).get("value").asDouble());
        assertTrue(texts.contains("mean " + mean), "mean " + mean + " not among " + texts);
        assertTrue(anyContains(texts, "median ≈"), texts.toString());
        assertTrue(texts.stream().anyMatch(s -> s.startsWith("median ")), "no median marker: " + texts);
        assertTrue(anyContains(texts, "300 exactly 0"), texts.toString());
    }

    /**
     * The demo says what its data is, shows next to each value the same loss of a model that knows only the
     * averages (cross-entropy over 100 classes: ln 100; MSE: the target's variance), and has no GB/s column:
     * one cold pass over a few MB measures the JIT, not throughput.
     */
    @Test
    void demoExplainsItsDataAndWhatAGoodValueIs() throws IOException {
        Run table = cli("eval", "--demo", "--size", "20000");
        assertEquals(0, table.code(), table.err());
        String out = table.out();
        assertTrue(out.contains("synthetic"), out);
        assertTrue(out.contains("uninformed"), out);
        assertFalse(out.contains("GB/s"), out);

        JsonNode doc = json(cli("eval", "--demo", "--size", "20000", "--format", "json"));
        JsonNode ref = doc.get("uninformed");
        assertEquals(Math.log(100), ref.get("cross-entropy").asDouble(), 1e-5);
        double mse = 0;
        for (JsonNode r : doc.get("results")) {
            String id = r.get("id").asText();
            boolean none = id.equals("entropy") || id.equals("triplet");
            assertEquals(none, ref.get(r.get("loss").asText()).isNull(), id + " uninformed: " + ref);
            if (id.equals("mse")) {
                mse = r.get("value").asDouble();
            }
            // the demo's model is a useful one, so it beats the uninformed model on every loss: a loss where it
            // did not was fed the wrong data (poisson-nll got rates where it reads log-rates; wasserstein got the
            // classifier's logits, which its t·p scores as a bad critic; linear-cross-entropy got random weights).
            // focal is the exception, honestly: its alpha = 0.25 weighs the positives this weak classifier gets
            // right least, and the constant base rate scores lower on it than the classifier does
            if (!none && !id.startsWith("focal")) {
                double u = ref.get(r.get("loss").asText()).asDouble();
                assertTrue(r.get("value").asDouble() < u, id + ": " + r.get("value") + " not below uninformed " + u);
            }
        }
        // targets uniform in [-1.5, 1.5]: variance 0.75 (to sampling error), against the demo's noise 0.3² = 0.09
        assertEquals(0.75, ref.get("mse").asDouble(), 0.03);
        assertEquals(0.09, mse, 0.01);
    }

    static String[] concat(String[] a, String... b) {
        String[] out = java.util.Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, out, a.length, b.length);
        return out;
    }
}
