package losskit.cases;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import losskit.api.AlphaMode;
import losskit.api.Catalogue;
import losskit.api.Family;
import losskit.api.Form;
import losskit.api.Inputs;
import losskit.api.Loss;
import losskit.api.LossDefinition;
import losskit.api.Param;
import losskit.api.Reduction;
import losskit.api.Slot;
import losskit.api.Tensor;

/**
 * The one table the generic tests iterate over: for every catalogue entry and form, a generator of
 * valid random inputs and the parameter variants worth testing. Values sit on a 2⁻¹² grid so that
 * finite-difference steps of 2⁻¹² are exact in float32.
 */
public final class LossCases {
    public static final double GRID = 1.0 / 4096;

    private LossCases() {
    }

    /** A loss configuration and a form to call it with. */
    public record Variant(Loss loss, Form form) {
        @Override
        public String toString() {
            return loss + (form.name().equals("default") ? "" : " [" + form.name() + "]");
        }
    }

    /** Every catalogue entry (matrix losses excluded) × form × parameter variant, at the loss's default reduction. */
    public static List<Variant> variants() {
        List<Variant> out = new ArrayList<>();
        for (LossDefinition d : Catalogue.all()) {
            for (Form f : d.forms()) {
                for (Loss l : parameterVariants(d, f)) {
                    out.add(new Variant(l, f));
                }
            }
        }
        return out;
    }

    /** {@link #variants()} × every reduction the loss allows. */
    public static List<Variant> variantsWithReductions() {
        List<Variant> out = new ArrayList<>();
        for (Variant v : variants()) {
            for (Reduction r : v.loss().definition().reductions()) {
                out.add(new Variant(v.loss().reduction(r), v.form()));
            }
        }
        return out;
    }

    private static List<Loss> parameterVariants(LossDefinition d, Form f) {
        Loss base = Loss.of(d);
        List<Loss> out = new ArrayList<>();
        out.add(base);
        String id = d.id();
        switch (id) {
            case "huber" -> out.add(base.with(Param.DELTA, 0.3));
            case "smooth-l1" -> {
                out.add(base.with(Param.BETA, 0.4));
                out.add(base.with(Param.BETA, 0.0));
            }
            case "quantile" -> out.add(base.with(Param.TAU, 0.9));
            case "poisson-nll" -> {
                out.add(base.with(Param.FULL, true));
                out.add(base.with(Param.LOG_INPUT, false));
                out.add(base.with(Param.LOG_INPUT, false).with(Param.FULL, true).with(Param.EPS, 1e-3));
            }
            case "gaussian-nll" -> {
                out.add(base.with(Param.FULL, true));
                out.add(base.with(Param.EPS, 0.05));
            }
            case "bce" -> out.add(base.with(Param.EPS, 1e-3));
            case "bce-logits" -> out.add(base.with(Param.POS_WEIGHT, new float[]{2.5f}));
            case "focal", "focal-logits" -> {
                out.add(base.with(Param.GAMMA, 0.0));
                out.add(base.with(Param.GAMMA, 1.5).with(Param.ALPHA, 0.6));
                out.add(base.with(Param.ALPHA_MODE, AlphaMode.UNIFORM));
                out.add(base.with(Param.ALPHA_MODE, AlphaMode.NONE));
            }
            case "cross-entropy" -> {
                out.add(base.with(Param.LABEL_SMOOTHING, 0.1));
                out.add(base.with(Param.CLASS_WEIGHT, classWeights(5)).with(Param.LABEL_SMOOTHING, 0.2));
                if (f.name().equals("default")) {
                    out.add(base.with(Param.IGNORE_INDEX, -1));
                }
            }
            case "nll" -> {
                out.add(base.with(Param.CLASS_WEIGHT, classWeights(5)));
                out.add(base.with(Param.IGNORE_INDEX, -1));
            }
            case "categorical-cross-entropy", "sparse-categorical-cross-entropy" -> {
                out.add(base.with(Param.NORMALIZE, true));
                out.add(base.with(Param.EPS, 1e-3));
            }
            case "log-loss" -> out.add(base.with(Param.EPS, 1e-3));
            case "multi-margin" -> {
                out.add(base.with(Param.P, 2.0).with(Param.MARGIN, 0.7));
                out.add(base.with(Param.CLASS_WEIGHT, classWeights(5)));
            }
            case "kl-divergence" -> {
                out.add(base.with(Param.LOG_INPUT, true));
                out.add(base.with(Param.LOG_TARGET, true));
                out.add(base.with(Param.EPS, 1e-3));
            }
            case "entropy" -> out.add(base.with(Param.BASE, 2.0));
            case "distribution-cross-entropy" -> out.add(base.with(Param.EPS, 1e-3));
            case "cosine-embedding" -> out.add(base.with(Param.MARGIN, 0.2));
            case "contrastive" -> out.add(base.with(Param.MARGIN, 2.0));
            case "triplet" -> {
                out.add(base.with(Param.P, 1.0));
                out.add(base.with(Param.P, 3.0));
                out.add(base.with(Param.SWAP, true));
                out.add(base.with(Param.SQUARED, true).with(Param.MARGIN, 0.5));
            }
            case "dice" -> out.add(base.with(Param.SMOOTH, 0.0));
            case "info-nce" -> {
                out.add(base.with(Param.SYMMETRIC, true).with(Param.TEMPERATURE, 0.5));
                out.add(base.with(Param.CHUNK, 2));
            }
            case "linear-cross-entropy" -> {
                out.add(base.with(Param.LABEL_SMOOTHING, 0.1).with(Param.CHUNK, 2));
                out.add(base.with(Param.IGNORE_INDEX, -1));
                out.add(base.with(Param.SOFTCAP, 2.0).with(Param.Z_LOSS, 0.05));
            }
            case "tversky" -> out.add(base.with(Param.ALPHA, 0.7).with(Param.BETA, 0.3));
            default -> {
            }
        }
        return out;
    }

    private static float[] classWeights(int c) {
        float[] w = new float[c];
        for (int i = 0; i < c; i++) {
            w[i] = 0.5f + 0.25f * i;
        }
        return w;
    }

    /** Rows and row length this variant is generated with (class-weighted variants need 5 columns). */
    public static int columns(Variant v, int preferred) {
        Loss l = v.loss();
        if (l.definition().has(Param.CLASS_WEIGHT) && l.get(Param.CLASS_WEIGHT) != null) {
            return l.get(Param.CLASS_WEIGHT).length;
        }
        return preferred;
    }

    /**
     * Valid random inputs for a variant: {@code rows} rows of {@code columns} (elementwise: rows·columns
     * elements), drawn on the 2⁻¹² grid, inside each slot's domain and away from the domain edges.
     */
    public static Inputs inputs(Variant v, int rows, int columns, long seed, boolean withWeights) {
        SplittableRandom rnd = new SplittableRandom(seed);
        Form f = v.form();
        String id = v.loss().id();
        boolean elementwise = f.family() == Family.ELEMENTWISE;
        boolean binary = f.name().equals("binary");
        int c = binary ? 1 : columns(v, columns);
        int n = elementwise ? rows * c : rows * c;
        Inputs in = Inputs.empty();
        int vocabulary = 11;
        for (Slot s : f.slots()) {
            Tensor t;
            switch (s.kind()) {
                case MATRIX_ROWS -> {
                    float[] w = new float[vocabulary * c];
                    for (int i = 0; i < w.length; i++) {
                        w[i] = grid(rnd, -1, 1);
                    }
                    t = Tensor.of(w, vocabulary, c);
                }
                case LABELS -> {
                    int classes = binary ? 2 : f.family() == Family.MATRIX ? vocabulary : c;
                    long[] y = new long[rows];
                    for (int i = 0; i < rows; i++) {
                        y[i] = rnd.nextInt(classes);
                    }
                    if (v.loss().definition().has(Param.IGNORE_INDEX) && v.loss().get(Param.IGNORE_INDEX) != -100
                            && rows > 1) {
                        y[rows / 2] = v.loss().get(Param.IGNORE_INDEX);
                    }
                    t = Tensor.labels(y);
                }
                case ROW_VALUES -> {
                    float[] y = new float[rows];
                    for (int i = 0; i < rows; i++) {
                        boolean pos = rnd.nextBoolean();
                        y[i] = id.equals("contrastive") ? (pos ? 1 : 0) : (pos ? 1 : -1);
                    }
                    t = Tensor.of(y);
                }
                default -> {
                    float[] x = new float[n];
                    for (int i = 0; i < n; i++) {
                        x[i] = value(id, f, s.name(), v.loss(), rnd);
                    }
                    if (isDistribution(id, s.name(), v.loss())) {
                        normaliseRows(x, rows, c);
                    }
                    t = elementwise ? Tensor.of(x) : binary ? Tensor.of(x) : Tensor.of(x, rows, c);
                }
            }
            in = in.with(s.name(), t);
        }
        if (withWeights && !id.equals("info-nce")) {
            float[] w = new float[rows * (elementwise ? c : 1)];
            for (int i = 0; i < w.length; i++) {
                w[i] = grid(rnd, 0.25, 2.0);
            }
            in = in.weights(w);
        }
        return in;
    }

    private static boolean isDistribution(String id, String slot, Loss loss) {
        return switch (id) {
            case "kl-divergence" -> (slot.equals("input") && !loss.flag(Param.LOG_INPUT))
                    || (slot.equals("target") && !loss.flag(Param.LOG_TARGET));
            case "entropy", "distribution-cross-entropy", "categorical-cross-entropy",
                 "sparse-categorical-cross-entropy", "log-loss" -> true;
            case "cross-entropy" -> slot.equals("target");
            default -> false;
        };
    }

    private static void normaliseRows(float[] x, int rows, int c) {
        if (c == 1) {
            return;
        }
        for (int r = 0; r < rows; r++) {
            double s = 0;
            for (int j = 0; j < c; j++) {
                s += x[r * c + j];
            }
            for (int j = 0; j < c; j++) {
                x[r * c + j] = (float) (Math.rint(x[r * c + j] / s / GRID) * GRID);
                if (x[r * c + j] <= 0) {
                    x[r * c + j] = (float) GRID;
                }
            }
        }
    }

    private static float value(String id, Form f, String slot, Loss loss, SplittableRandom rnd) {
        boolean input = slot.equals("input") || slot.equals("distance");
        return switch (id) {
            case "mse", "mae", "rmse", "huber", "smooth-l1", "log-cosh", "quantile" -> grid(rnd, -2, 2);
            case "msle" -> grid(rnd, -0.5, 3);
            case "poisson-nll" -> input ? (loss.flag(Param.LOG_INPUT) ? grid(rnd, -2, 2) : grid(rnd, 0.2, 3))
                    : grid(rnd, 0, 4);
            case "gaussian-nll" -> slot.equals("var") ? grid(rnd, 0.1, 2) : grid(rnd, -2, 2);
            case "bce", "focal" -> input ? grid(rnd, 0.05, 0.95) : (rnd.nextBoolean() ? 1f : grid(rnd, 0, 1));
            case "bce-logits", "focal-logits" -> input ? grid(rnd, -4, 4) : (rnd.nextBoolean() ? 1f : grid(rnd, 0, 1));
            case "hinge", "squared-hinge", "wasserstein" -> input ? grid(rnd, -2, 2) : (rnd.nextBoolean() ? 1f : -1f);
            case "contrastive" -> slot.equals("distance") ? grid(rnd, 0.05, 2)
                    : slot.equals("target") ? (rnd.nextBoolean() ? 1f : 0f) : grid(rnd, -1.5, 1.5);
            case "cross-entropy", "multi-margin" -> input ? grid(rnd, -3, 3) : grid(rnd, 0.05, 1);
            case "nll" -> grid(rnd, -4, -0.05);
            case "kl-divergence" -> {
                boolean log = slot.equals("input") ? loss.flag(Param.LOG_INPUT) : loss.flag(Param.LOG_TARGET);
                yield log ? grid(rnd, -3, -0.1) : grid(rnd, 0.05, 1);
            }
            case "dice", "tversky" -> grid(rnd, 0.02, 0.98);
            case "info-nce", "linear-cross-entropy" -> grid(rnd, -1, 1);
            case "entropy", "distribution-cross-entropy", "categorical-cross-entropy",
                 "sparse-categorical-cross-entropy", "log-loss" -> grid(rnd, 0.05, 1);
            default -> grid(rnd, -1.5, 1.5);
        };
    }

    /** A value on the 2⁻¹² grid in [lo, hi]. */
    public static float grid(SplittableRandom rnd, double lo, double hi) {
        return (float) (Math.rint((lo + (hi - lo) * rnd.nextDouble()) / GRID) * GRID);
    }
}
