package losskit.cli;

import java.util.SplittableRandom;
import losskit.api.Form;
import losskit.api.Inputs;
import losskit.api.LossDefinition;
import losskit.api.Tensor;

/**
 * The built-in, deterministic demo prediction set: a regression set, a binary classifier's logits and
 * probabilities, a 100-class classifier's logits and probabilities, and embedding pairs and triplets —
 * enough to evaluate every catalogue entry. Sized to show throughput (a few million elements) while
 * staying well inside a small heap.
 */
final class DemoSet {
    final int n;
    final int rows;
    final int classes;
    final int dim;
    // regression
    final float[] pred;
    final float[] target;
    final float[] positivePred;
    final float[] positiveTarget;
    final float[] variance;
    // binary
    final float[] logits;
    final float[] probs;
    final float[] labels01;
    final float[] labelsPm1;
    // multi-class
    final float[] classLogits;
    final float[] classLogProbs;
    final float[] classProbs;
    final float[] softTargets;
    final long[] classLabels;
    // embeddings and segmentation
    final float[] x1;
    final float[] x2;
    final float[] x3;
    final float[] pairPm1;
    final float[] pair01;
    final float[] distances;
    final float[] masks;

    DemoSet(int n, int rows, int classes, int dim, long seed) {
        this.n = n;
        this.rows = rows;
        this.classes = classes;
        this.dim = dim;
        SplittableRandom r = new SplittableRandom(seed);
        pred = new float[n];
        target = new float[n];
        positivePred = new float[n];
        positiveTarget = new float[n];
        variance = new float[n];
        logits = new float[n];
        probs = new float[n];
        labels01 = new float[n];
        labelsPm1 = new float[n];
        for (int i = 0; i < n; i++) {
            double truth = 3 * r.nextDouble() - 1.5;
            target[i] = (float) truth;
            pred[i] = (float) (truth + 0.3 * gaussian(r));
            positiveTarget[i] = (float) Math.exp(truth);
            positivePred[i] = (float) Math.exp(truth + 0.2 * gaussian(r));
            variance[i] = (float) (0.05 + 0.2 * r.nextDouble());
            boolean positive = r.nextDouble() < 0.4;
            labels01[i] = positive ? 1 : 0;
            labelsPm1[i] = positive ? 1 : -1;
            logits[i] = (float) ((positive ? 1.2 : -1.2) + 1.5 * gaussian(r));
            probs[i] = (float) (1 / (1 + Math.exp(-logits[i])));
        }
        classLogits = new float[rows * classes];
        classLogProbs = new float[rows * classes];
        classProbs = new float[rows * classes];
        softTargets = new float[rows * classes];
        classLabels = new long[rows];
        for (int i = 0; i < rows; i++) {
            int y = r.nextInt(classes);
            classLabels[i] = y;
            double max = Double.NEGATIVE_INFINITY;
            for (int c = 0; c < classes; c++) {
                double v = gaussian(r) + (c == y ? 3 : 0);
                classLogits[i * classes + c] = (float) v;
                max = Math.max(max, v);
            }
            double sum = 0;
            for (int c = 0; c < classes; c++) {
                sum += Math.exp(classLogits[i * classes + c] - max);
            }
            double lse = max + Math.log(sum);
            for (int c = 0; c < classes; c++) {
                double lp = classLogits[i * classes + c] - lse;
                classLogProbs[i * classes + c] = (float) lp;
                classProbs[i * classes + c] = (float) Math.exp(lp);
                softTargets[i * classes + c] = (float) (c == y ? 0.9 + 0.1 / classes : 0.1 / classes);
            }
        }
        x1 = new float[rows * dim];
        x2 = new float[rows * dim];
        x3 = new float[rows * dim];
        masks = new float[rows * dim];
        pairPm1 = new float[rows];
        pair01 = new float[rows];
        distances = new float[rows];
        for (int i = 0; i < rows; i++) {
            boolean similar = r.nextBoolean();
            pairPm1[i] = similar ? 1 : -1;
            pair01[i] = similar ? 1 : 0;
            double d2 = 0;
            for (int j = 0; j < dim; j++) {
                int k = i * dim + j;
                x1[k] = (float) gaussian(r);
                x2[k] = (float) (similar ? x1[k] + 0.3 * gaussian(r) : gaussian(r));
                x3[k] = (float) gaussian(r);
                masks[k] = x1[k] > 0 ? 1 : 0;
                d2 += (x1[k] - x2[k]) * (x1[k] - x2[k]);
            }
            distances[i] = (float) Math.sqrt(d2);
        }
    }

    private static double gaussian(SplittableRandom r) {
        // Box–Muller: SplittableRandom has no nextGaussian on Java 17
        double u = 1 - r.nextDouble();
        return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * r.nextDouble());
    }

    /** The demo inputs for a loss's usual form, or {@code null} when the demo has nothing fitting. */
    Inputs inputsFor(LossDefinition d) {
        Form form = d.forms().get(0);
        Tensor rowsTensor = Tensor.of(classProbs, rows, classes);
        return switch (d.id()) {
            case "msle" -> Inputs.of(positivePred, positiveTarget);
            // logInput=true (the default): the prediction is the log of the rate
            case "poisson-nll" -> Inputs.of(poissonInput(d), positiveTarget);
            case "gaussian-nll" -> Inputs.of(pred, target).with("var", variance);
            case "bce", "focal" -> Inputs.of(probs, labels01);
            case "bce-logits", "focal-logits" -> Inputs.of(logits, labels01);
            case "hinge", "squared-hinge" -> Inputs.of(logits, labelsPm1);
            // the critic loss t·p is lower when p opposes t: a good critic scores -logit
            case "wasserstein" -> Inputs.of(negated(logits), labelsPm1);
            case "cross-entropy", "multi-margin" -> Inputs.of(Tensor.of(classLogits, rows, classes), Tensor.labels(classLabels));
            case "nll" -> Inputs.of(Tensor.of(classLogProbs, rows, classes), Tensor.labels(classLabels));
            case "sparse-categorical-cross-entropy", "log-loss" -> Inputs.of(rowsTensor, Tensor.labels(classLabels));
            case "categorical-cross-entropy", "kl-divergence", "distribution-cross-entropy" ->
                    Inputs.of(rowsTensor, Tensor.of(softTargets, rows, classes));
            case "entropy" -> Inputs.empty().with("input", rowsTensor);
            case "cosine-proximity" -> Inputs.of(Tensor.of(x1, rows, dim), Tensor.of(x2, rows, dim));
            case "cosine-embedding" -> Inputs.empty().with("x1", x1, rows, dim).with("x2", x2, rows, dim)
                    .with("target", pairPm1);
            case "contrastive" -> Inputs.empty().with("distance", distances).with("target", pair01);
            case "triplet" -> Inputs.empty().with("anchor", x1, rows, dim).with("positive", x2, rows, dim)
                    .with("negative", x3, rows, dim);
            case "dice", "tversky" -> Inputs.of(Tensor.of(sigmoidOf(x1), rows, dim), Tensor.of(masks, rows, dim));
            // a batch of 512 pairs: every query is scored against every key (512² logits)
            case "info-nce" -> Inputs.empty().with("queries", unitRows(head(x1, batch() * dim)), batch(), dim)
                    .with("keys", unitRows(head(x2, batch() * dim)), batch(), dim);
            // 512 hidden states against a 1000-word classifier, never holding the 512×1000 logits at once
            case "linear-cross-entropy" -> Inputs.empty().with("hidden", head(x1, batch() * dim), batch(), dim)
                    .with("weight", trainedWeight(), classes * 10, dim)
                    .with("target", Tensor.labels(vocabularyLabels()));
            default -> form.family() == losskit.api.Family.ELEMENTWISE ? Inputs.of(pred, target) : null;
        };
    }

    private int batch() {
        return Math.min(rows, 512);
    }

    private long[] vocabularyLabels() {
        long[] y = new long[batch()];
        for (int i = 0; i < y.length; i++) {
            y[i] = (classLabels[i] * 7919 + i) % (classes * 10L);
        }
        return y;
    }

    /** Rows scaled to unit length, as CLIP normalises its embeddings before the temperature. */
    private float[] unitRows(float[] a) {
        for (int r = 0; r < a.length / dim; r++) {
            double s = 0;
            for (int j = 0; j < dim; j++) {
                s += a[r * dim + j] * a[r * dim + j];
            }
            double inv = s > 0 ? 1 / Math.sqrt(s) : 0;
            for (int j = 0; j < dim; j++) {
                a[r * dim + j] *= (float) inv;
            }
        }
        return a;
    }

    private static float[] head(float[] a, int n) {
        return java.util.Arrays.copyOf(a, n);
    }

    private float[] sigmoidOf(float[] x) {
        float[] p = new float[x.length];
        for (int i = 0; i < x.length; i++) {
            p[i] = (float) (1 / (1 + Math.exp(-x[i] - 0.1 * Math.sin(i))));
        }
        return p;
    }

    /** The demo inputs of a loss as streaming sources (so the demo takes the same path as files), or null. */
    java.util.Map<String, losskit.io.ArraySource> sourcesFor(LossDefinition d) {
        Inputs in = inputsFor(d);
        if (in == null) {
            return null;
        }
        java.util.Map<String, losskit.io.ArraySource> m = new java.util.LinkedHashMap<>();
        in.tensors().forEach((k, v) -> m.put(k, new losskit.io.MemorySource("demo:" + k, v)));
        return m;
    }

    /**
     * The demo inputs of a loss with its prediction replaced by an uninformed one, a model that knows only the
     * averages: the mean prediction, the base rate, zero logits (uniform probabilities), unrelated embeddings.
     * The loss of that model is what the demo's value is measured against ("what is a good value of this
     * loss?"); {@code null} where no prediction can be told apart from the data (entropy, triplet).
     */
    Inputs baselineFor(LossDefinition d) {
        int cells = rows * classes;
        Tensor uniformProbs = Tensor.of(filled(cells, 1f / classes), rows, classes);
        float baseRate = mean(labels01);
        return switch (d.id()) {
            case "msle" -> Inputs.of(filled(n, mean(positivePred)), positiveTarget);
            case "poisson-nll" -> Inputs.of(filled(n, mean(poissonInput(d))), positiveTarget);
            case "gaussian-nll" -> Inputs.of(filled(n, mean(pred)), target).with("var", filled(n, variance(target)));
            case "bce", "focal" -> Inputs.of(filled(n, baseRate), labels01);
            case "bce-logits", "focal-logits" -> Inputs.of(filled(n, (float) Math.log(baseRate / (1 - baseRate))), labels01);
            case "hinge", "squared-hinge", "wasserstein" -> Inputs.of(new float[n], labelsPm1);
            case "cross-entropy", "multi-margin" -> Inputs.of(Tensor.of(new float[cells], rows, classes), Tensor.labels(classLabels));
            case "nll" -> Inputs.of(Tensor.of(filled(cells, (float) -Math.log(classes)), rows, classes), Tensor.labels(classLabels));
            case "sparse-categorical-cross-entropy", "log-loss" -> Inputs.of(uniformProbs, Tensor.labels(classLabels));
            case "categorical-cross-entropy", "kl-divergence", "distribution-cross-entropy" ->
                    Inputs.of(uniformProbs, Tensor.of(softTargets, rows, classes));
            case "entropy", "triplet" -> null;
            case "cosine-proximity" -> Inputs.of(Tensor.of(x1, rows, dim), Tensor.of(x3, rows, dim));
            case "cosine-embedding" -> Inputs.empty().with("x1", x1, rows, dim).with("x2", x3, rows, dim)
                    .with("target", pairPm1);
            case "contrastive" -> Inputs.empty().with("distance", filled(rows, mean(distances))).with("target", pair01);
            case "dice", "tversky" -> Inputs.of(Tensor.of(filled(rows * dim, 0.5f), rows, dim), Tensor.of(masks, rows, dim));
            case "info-nce" -> Inputs.empty().with("queries", unitRows(head(x1, batch() * dim)), batch(), dim)
                    .with("keys", unitRows(head(x3, batch() * dim)), batch(), dim);
            case "linear-cross-entropy" -> Inputs.empty().with("hidden", head(x1, batch() * dim), batch(), dim)
                    .with("weight", new float[classes * 10 * dim], classes * 10, dim)
                    .with("target", Tensor.labels(vocabularyLabels()));
            default -> d.forms().get(0).family() == losskit.api.Family.ELEMENTWISE ? Inputs.of(filled(n, mean(pred)), target) : null;
        };
    }

    /** The predicted rates as poisson-nll reads them: their logs under logInput=true (its default). */
    private float[] poissonInput(LossDefinition d) {
        boolean log = d.params().stream().filter(p -> p.param() == losskit.api.Param.LOG_INPUT)
                .map(p -> (Boolean) p.fallback()).findFirst().orElse(false);
        if (!log) {
            return positivePred;
        }
        float[] a = new float[n];
        for (int i = 0; i < n; i++) {
            a[i] = (float) Math.log(positivePred[i]);
        }
        return a;
    }

    private static float[] negated(float[] a) {
        float[] b = new float[a.length];
        for (int i = 0; i < a.length; i++) {
            b[i] = -a[i];
        }
        return b;
    }

    /**
     * A classifier that has learnt something: each vocabulary word's weight row leans (0.1×) toward the hidden
     * states labelled with it, over the random rows (sd 0.3), so the true word's logit stands out of the others
     * (a random weight would make the demo's linear-cross-entropy worse than guessing).
     */
    private float[] trainedWeight() {
        int words = classes * 10;
        float[] w = head(x3, words * dim);
        for (int i = 0; i < w.length; i++) {
            w[i] *= 0.3f;
        }
        long[] y = vocabularyLabels();
        for (int i = 0; i < y.length; i++) {
            for (int j = 0; j < dim; j++) {
                w[(int) y[i] * dim + j] += 0.1f * x1[i * dim + j];
            }
        }
        return w;
    }

    private static float[] filled(int n, float v) {
        float[] a = new float[n];
        java.util.Arrays.fill(a, v);
        return a;
    }

    private static float mean(float[] a) {
        double s = 0;
        for (float v : a) {
            s += v;
        }
        return (float) (s / a.length);
    }

    private static float variance(float[] a) {
        double m = mean(a);
        double s = 0;
        for (float v : a) {
            s += (v - m) * (v - m);
        }
        return (float) (s / a.length);
    }

    /** What the demo data is and how to read its values, for the table's header. */
    String explain() {
        return String.format(java.util.Locale.ROOT, String.join("%n",
                "The demo data is synthetic (seeded, the same on every run):",
                "  regression  %,d targets uniform in [-1.5, 1.5]; prediction = target + Gaussian noise (sd 0.3)",
                "  binary      %,d labels, 40%% positive; logits +-1.2 + noise (sd 1.5); probabilities = sigmoid",
                "  classes     %,d rows x %d classes; logits = noise (sd 1) + 3 on the true class",
                "  embeddings  %,d pairs x %d; similar pairs (half) = x + noise (sd 0.3), the others unrelated",
                "Lower is better for every loss. 'uninformed' is the same loss for a model that knows only the",
                "averages (mean prediction, base rate, uniform probabilities, unrelated embeddings): a useful model",
                "is well below it; 0 is perfect for most losses (the log-likelihood ones can go below 0). entropy",
                "measures confidence, not correctness, and triplet has no such model: '-'.",
                "Timings of this small set are not throughput: measure that with 'losskit bench'."),
                n, n, rows, classes, rows, dim) + String.format("%n");
    }

    /** What the demo set is, for the report header. */
    String describe() {
        return String.format("demo set: %,d regression/binary elements, %,d rows × %d classes, %,d embedding rows × %d",
                n, rows, classes, rows, dim);
    }
}
