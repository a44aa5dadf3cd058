package losskit.cli;

import java.awt.BasicStroke;
import java.awt.Color;
import java.awt.Font;
import java.awt.Graphics2D;
import java.awt.Rectangle;
import java.awt.RenderingHints;
import java.awt.image.BufferedImage;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import javax.imageio.ImageIO;
import losskit.io.AtomicOutput;
import losskit.io.Histogram;
import losskit.io.StreamingEvaluation.ClassStat;
import losskit.io.StreamingEvaluation.LossOutcome;
import org.jfree.chart.ChartFactory;
import org.jfree.chart.JFreeChart;
import org.jfree.chart.axis.LogAxis;
import org.jfree.chart.labels.CategoryItemLabelGenerator;
import org.jfree.chart.labels.ItemLabelAnchor;
import org.jfree.chart.labels.ItemLabelPosition;
import org.jfree.chart.plot.CategoryPlot;
import org.jfree.chart.plot.PlotOrientation;
import org.jfree.chart.plot.ValueMarker;
import org.jfree.chart.plot.XYPlot;
import org.jfree.chart.renderer.category.BarRenderer;
import org.jfree.chart.renderer.category.StandardBarPainter;
import org.jfree.chart.renderer.xy.StandardXYBarPainter;
import org.jfree.chart.renderer.xy.XYBarRenderer;
import org.jfree.chart.title.TextTitle;
import org.jfree.chart.ui.RectangleAnchor;
import org.jfree.chart.ui.TextAnchor;
import org.jfree.data.category.CategoryDataset;
import org.jfree.data.category.DefaultCategoryDataset;
import org.jfree.data.xy.XYIntervalSeries;
import org.jfree.data.xy.XYIntervalSeriesCollection;
import org.jfree.svg.SVGGraphics2D;

/**
 * The plot of an evaluation, rendered to PNG or SVG by the file's name: one panel per loss, stacked. A
 * classification loss under --per-class gets its classes as bars, worst (highest mean loss) first, each
 * labelled with its mean loss and row count; every other loss gets the distribution of its per-sample losses
 * with the mean and median marked.
 */
final class Plots {
    static final int WIDTH = 900;
    static final int HISTOGRAM_HEIGHT = 440;
    /** Classes drawn per loss (the worst ones); a note on the panel says how many more there are. */
    static final int MAX_CLASSES = 40;
    private static final Color BAR = new Color(0x3b6ea8);
    private static final Color MEAN = new Color(0xc0392b);
    private static final Color MEDIAN = new Color(0x27874a);

    private Plots() {
    }

    /** The extension is checked before the pass ({@link #checkName}); the file is renamed into place by {@code batch}. */
    static void write(Path file, List<LossOutcome> losses, boolean perClass, AtomicOutput.Batch batch) {
        List<JFreeChart> charts = new ArrayList<>();
        List<Integer> heights = new ArrayList<>();
        for (LossOutcome l : losses) {
            if (perClass && !l.perClass().isEmpty()) {
                charts.add(perClassChart(l));
                heights.add(perClassHeight(Math.min(MAX_CLASSES, l.perClass().size())));
            } else if (l.histogram() != null) {
                charts.add(histogramChart(l));
                heights.add(HISTOGRAM_HEIGHT);
            }
        }
        if (charts.isEmpty()) {
            throw new IllegalArgumentException("--plot " + file + ": no loss has per-sample values to plot");
        }
        int height = heights.stream().mapToInt(Integer::intValue).sum();
        String name = file.getFileName().toString().toLowerCase(Locale.ROOT);
        if (name.endsWith(".svg")) {
            SVGGraphics2D g = new SVGGraphics2D(WIDTH, height);
            draw(g, charts, heights);
            AtomicOutput.writeString(file, g.getSVGDocument(), batch);
        } else if (name.endsWith(".png")) {
            BufferedImage image = new BufferedImage(WIDTH, height, BufferedImage.TYPE_INT_RGB);
            Graphics2D g = image.createGraphics();
            g.setRenderingHint(RenderingHints.KEY_ANTIALIASING, RenderingHints.VALUE_ANTIALIAS_ON);
            g.setRenderingHint(RenderingHints.KEY_TEXT_ANTIALIASING, RenderingHints.VALUE_TEXT_ANTIALIAS_ON);
            draw(g, charts, heights);
            g.dispose();
            ByteArrayOutputStream out = new ByteArrayOutputStream();
            try {
                ImageIO.write(image, "png", out);
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
            AtomicOutput.writeBytes(file, out.toByteArray(), batch);
        } else {
            throw new IllegalArgumentException("--plot " + file + ": unknown image type (expected .png or .svg)");
        }
    }

    private static void draw(Graphics2D g, List<JFreeChart> charts, List<Integer> heights) {
        int y = 0;
        for (int i = 0; i < charts.size(); i++) {
            charts.get(i).draw(g, new Rectangle(0, y, WIDTH, heights.get(i)));
            y += heights.get(i);
        }
    }

    /** Rejects a plot name that is neither .png nor .svg, before any work is done. */
    static void checkName(Path file) {
        String name = file.getFileName().toString().toLowerCase(Locale.ROOT);
        if (!name.endsWith(".svg") && !name.endsWith(".png")) {
            throw new IllegalArgumentException("--plot " + file + ": unknown image type (expected .png or .svg)");
        }
    }

    static int perClassHeight(int bars) {
        return 150 + 22 * bars;
    }

    /** A loss value for a label: 4 significant digits. */
    static String num(double v) {
        if (v == 0 || !Double.isFinite(v)) {
            return String.valueOf(v == 0 ? "0" : v);
        }
        double a = Math.abs(v);
        return a >= 1e5 || a < 1e-3 ? String.format(Locale.ROOT, "%.3e", v) : String.format(Locale.ROOT, "%.4g", v);
    }

    private static JFreeChart histogramChart(LossOutcome l) {
        Histogram h = l.histogram();
        XYIntervalSeries s = new XYIntervalSeries("samples");
        long[] bins = h.bins();
        for (int i = 0; i < bins.length; i++) {
            if (bins[i] > 0) {
                double lo = Histogram.lowerEdge(i);
                double hi = Histogram.lowerEdge(i + 1);
                s.add(Math.sqrt(lo * hi), lo, hi, bins[i], bins[i], bins[i]);
            }
        }
        XYIntervalSeriesCollection data = new XYIntervalSeriesCollection();
        data.addSeries(s);
        JFreeChart chart = ChartFactory.createXYBarChart("Per-sample " + l.loss(), "loss per sample (log scale)", false,
                "samples", data, PlotOrientation.VERTICAL, false, false, false);
        double mean = h.mean();
        double median = h.quantile(0.5);
        chart.addSubtitle(new TextTitle(String.format(Locale.ROOT, "n = %,d   mean %s   median ≈ %s", h.count(), num(mean),
                Double.isNaN(median) ? "(among the negative values)" : num(median))));
        List<String> unplotted = new ArrayList<>();
        if (h.zero() > 0) {
            unplotted.add(String.format(Locale.ROOT, "%,d exactly 0", h.zero()));
        }
        if (h.negative() > 0) {
            unplotted.add(String.format(Locale.ROOT, "%,d negative", h.negative()));
        }
        if (h.nonFinite() > 0) {
            unplotted.add(String.format(Locale.ROOT, "%,d NaN or infinite", h.nonFinite()));
        }
        if (h.below() > 0) {
            unplotted.add(String.format(Locale.ROOT, "%,d below 1e-8", h.below()));
        }
        if (h.above() > 0) {
            unplotted.add(String.format(Locale.ROOT, "%,d above 1e8", h.above()));
        }
        if (!unplotted.isEmpty()) {
            chart.addSubtitle(note("not drawn on the log axis: " + String.join(", ", unplotted)));
        }
        XYPlot plot = chart.getXYPlot();
        LogAxis axis = new LogAxis("loss per sample (log scale)");
        axis.setSmallestValue(1e-8);
        axis.setTickUnit(new org.jfree.chart.axis.NumberTickUnit(1)); // one tick per decade (no 3.162E-4)
        axis.setMinorTickCount(0);
        axis.setNumberFormatOverride(new java.text.DecimalFormat("0E0"));
        plot.setDomainAxis(axis);
        XYBarRenderer r = (XYBarRenderer) plot.getRenderer();
        r.setBarPainter(new StandardXYBarPainter());
        r.setShadowVisible(false);
        r.setSeriesPaint(0, BAR);
        if (mean > 0) {
            plot.addDomainMarker(marker(mean, "mean " + num(mean), MEAN, TextAnchor.TOP_LEFT, RectangleAnchor.TOP_RIGHT));
        }
        if (median > 0) {
            plot.addDomainMarker(marker(median, "median " + num(median), MEDIAN, TextAnchor.TOP_RIGHT, RectangleAnchor.TOP_LEFT));
        }
        plot.setBackgroundPaint(Color.WHITE);
        plot.setDomainGridlinePaint(Color.LIGHT_GRAY);
        plot.setRangeGridlinePaint(Color.LIGHT_GRAY);
        chart.setBackgroundPaint(Color.WHITE);
        return chart;
    }

    private static ValueMarker marker(double at, String label, Color color, TextAnchor text, RectangleAnchor anchor) {
        ValueMarker m = new ValueMarker(at, color, new BasicStroke(2f, BasicStroke.CAP_BUTT, BasicStroke.JOIN_MITER, 10f,
                new float[]{6f, 4f}, 0f));
        m.setLabel(label);
        m.setLabelPaint(color);
        m.setLabelFont(new Font(Font.SANS_SERIF, Font.BOLD, 12));
        m.setLabelAnchor(anchor);
        m.setLabelTextAnchor(text);
        m.setLabelBackgroundColor(new Color(255, 255, 255, 210));
        return m;
    }

    private static TextTitle note(String text) {
        TextTitle t = new TextTitle(text, new Font(Font.SANS_SERIF, Font.ITALIC, 12));
        t.setPaint(new Color(0x9a5b00));
        return t;
    }

    private static JFreeChart perClassChart(LossOutcome l) {
        List<ClassStat> sorted = new ArrayList<>(l.perClass());
        // worst first: the classes a model gets most wrong are the ones to look at
        sorted.sort(Comparator.comparingDouble(ClassStat::mean).reversed().thenComparingLong(ClassStat::label));
        DefaultCategoryDataset data = new DefaultCategoryDataset();
        Map<String, ClassStat> byKey = new HashMap<>();
        for (ClassStat c : sorted.subList(0, Math.min(MAX_CLASSES, sorted.size()))) {
            String key = "class " + c.label();
            byKey.put(key, c);
            data.addValue(c.mean(), "mean loss", key);
        }
        JFreeChart chart = ChartFactory.createBarChart("Mean " + l.loss() + " per class, worst first", null,
                "mean loss of the class's rows", data, PlotOrientation.HORIZONTAL, false, false, false);
        double sum = 0;
        long rows = 0;
        for (ClassStat c : sorted) {
            sum += c.sumLoss();
            rows += c.count();
        }
        chart.addSubtitle(new TextTitle(String.format(Locale.ROOT, "%,d classes, %,d rows; each bar: mean loss (rows)",
                sorted.size(), rows)));
        if (sorted.size() > MAX_CLASSES) {
            chart.addSubtitle(note(String.format(Locale.ROOT, "showing the %d worst of %,d classes; "
                    + "%,d more are not drawn (every class: --format csv or json)", MAX_CLASSES, sorted.size(),
                    sorted.size() - MAX_CLASSES)));
        }
        CategoryPlot plot = chart.getCategoryPlot();
        BarRenderer r = (BarRenderer) plot.getRenderer();
        r.setBarPainter(new StandardBarPainter());
        r.setShadowVisible(false);
        r.setSeriesPaint(0, BAR);
        r.setMaximumBarWidth(0.08);
        r.setDefaultItemLabelGenerator(new CategoryItemLabelGenerator() {
            @Override
            public String generateRowLabel(CategoryDataset dataset, int row) {
                return null;
            }

            @Override
            public String generateColumnLabel(CategoryDataset dataset, int column) {
                return null;
            }

            @Override
            public String generateLabel(CategoryDataset dataset, int row, int column) {
                ClassStat c = byKey.get((String) dataset.getColumnKey(column));
                return String.format(Locale.ROOT, "%s  (%,d)", num(c.mean()), c.count());
            }
        });
        r.setDefaultItemLabelsVisible(true);
        r.setDefaultItemLabelFont(new Font(Font.SANS_SERIF, Font.PLAIN, 11));
        r.setDefaultPositiveItemLabelPosition(new ItemLabelPosition(ItemLabelAnchor.OUTSIDE3, TextAnchor.CENTER_LEFT));
        plot.getRangeAxis().setUpperMargin(0.22); // room for the labels right of the longest bar
        if (rows > 0) {
            double mean = sum / rows;
            ValueMarker m = marker(mean, "all classes " + num(mean), MEAN, TextAnchor.BOTTOM_LEFT, RectangleAnchor.BOTTOM_RIGHT);
            plot.addRangeMarker(m, org.jfree.chart.ui.Layer.FOREGROUND);
        }
        plot.setBackgroundPaint(Color.WHITE);
        plot.setRangeGridlinePaint(Color.LIGHT_GRAY);
        chart.setBackgroundPaint(Color.WHITE);
        return chart;
    }
}
