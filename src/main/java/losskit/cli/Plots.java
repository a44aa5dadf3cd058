package losskit.cli;

import java.awt.Color;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import losskit.io.AtomicOutput;
import losskit.io.Histogram;
import losskit.io.StreamingEvaluation.ClassStat;
import losskit.io.StreamingEvaluation.LossOutcome;
import org.jfree.chart.ChartFactory;
import org.jfree.chart.ChartUtils;
import org.jfree.chart.JFreeChart;
import org.jfree.chart.axis.LogAxis;
import org.jfree.chart.plot.CategoryPlot;
import org.jfree.chart.plot.PlotOrientation;
import org.jfree.chart.plot.XYPlot;
import org.jfree.chart.renderer.xy.XYBarRenderer;
import org.jfree.data.category.DefaultCategoryDataset;
import org.jfree.data.xy.XYIntervalSeries;
import org.jfree.data.xy.XYIntervalSeriesCollection;
import org.jfree.svg.SVGGraphics2D;

/** The loss-distribution plot (and per-class bars): JFreeChart, rendered to PNG or SVG by the file's name. */
final class Plots {
    private static final int WIDTH = 900;
    private static final int HEIGHT = 520;

    private Plots() {
    }

    /** The extension is checked before the pass ({@link #checkName}); the file is renamed into place by {@code batch}. */
    static void write(Path file, LossOutcome l, boolean perClass, AtomicOutput.Batch batch) {
        JFreeChart chart = perClass && !l.perClass().isEmpty() ? perClassChart(l) : histogramChart(l);
        String name = file.getFileName().toString().toLowerCase();
        if (name.endsWith(".svg")) {
            SVGGraphics2D g = new SVGGraphics2D(WIDTH, HEIGHT);
            chart.draw(g, new java.awt.Rectangle(0, 0, WIDTH, HEIGHT));
            AtomicOutput.writeString(file, g.getSVGDocument(), batch);
        } else if (name.endsWith(".png")) {
            ByteArrayOutputStream out = new ByteArrayOutputStream();
            try {
                ChartUtils.writeChartAsPNG(out, chart, WIDTH, HEIGHT);
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
            AtomicOutput.writeBytes(file, out.toByteArray(), batch);
        } else {
            throw new IllegalArgumentException("--plot " + file + ": unknown image type (expected .png or .svg)");
        }
    }

    /** Rejects a plot name that is neither .png nor .svg, before any work is done. */
    static void checkName(Path file) {
        String name = file.getFileName().toString().toLowerCase();
        if (!name.endsWith(".svg") && !name.endsWith(".png")) {
            throw new IllegalArgumentException("--plot " + file + ": unknown image type (expected .png or .svg)");
        }
    }

    private static JFreeChart histogramChart(LossOutcome l) {
        Histogram h = l.histogram();
        XYIntervalSeries s = new XYIntervalSeries("samples");
        long[] bins = h.bins();
        for (int i = 0; i < bins.length; i++) {
            if (bins[i] > 0) {
                double lo = Histogram.lowerEdge(i);
                double hi = Histogram.lowerEdge(i + 1);
                double mid = Math.sqrt(lo * hi);
                s.add(mid, lo, hi, bins[i], bins[i], bins[i]);
            }
        }
        XYIntervalSeriesCollection data = new XYIntervalSeriesCollection();
        data.addSeries(s);
        JFreeChart chart = ChartFactory.createXYBarChart("Per-sample " + l.loss().id() + " (n = " + l.partial().count()
                        + (h.zero() > 0 ? ", " + h.zero() + " exactly 0" : "") + ")", "loss (log scale)", false, "samples",
                data, PlotOrientation.VERTICAL, false, false, false);
        XYPlot plot = chart.getXYPlot();
        LogAxis axis = new LogAxis("loss (log scale)");
        axis.setSmallestValue(1e-8);
        plot.setDomainAxis(axis);
        ((XYBarRenderer) plot.getRenderer()).setSeriesPaint(0, new Color(0x3b6ea8));
        plot.setBackgroundPaint(Color.WHITE);
        chart.setBackgroundPaint(Color.WHITE);
        return chart;
    }

    private static JFreeChart perClassChart(LossOutcome l) {
        DefaultCategoryDataset data = new DefaultCategoryDataset();
        int shown = 0;
        for (ClassStat c : l.perClass()) {
            if (shown++ >= 60) {
                break;
            }
            data.addValue(c.mean(), "mean loss", Long.toString(c.label()));
        }
        JFreeChart chart = ChartFactory.createBarChart("Mean " + l.loss().id() + " per class", "class", "mean loss", data);
        CategoryPlot plot = chart.getCategoryPlot();
        plot.getRenderer().setSeriesPaint(0, new Color(0x3b6ea8));
        plot.setBackgroundPaint(Color.WHITE);
        chart.setBackgroundPaint(Color.WHITE);
        return chart;
    }

}
