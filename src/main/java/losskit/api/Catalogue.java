package losskit.api;

import static losskit.api.Form.Denominator.ELEMENTS;
import static losskit.api.Form.Denominator.LABEL_CLASS_WEIGHT;
import static losskit.api.Form.Denominator.ONE;
import static losskit.api.Slot.grad;
import static losskit.api.Slot.labels;
import static losskit.api.Slot.rowValues;
import static losskit.api.Slot.values;

import java.util.ArrayList;
import java.util.Collections;
import java.util.EnumSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;

/**
 * Every loss LossKit computes, as specified in LOSSES.md. Generic code (validation, drivers, kernels'
 * launch tables, tests, CLI listing) iterates over this list; nothing else names losses one by one
 * except the two term-function tables (Java and CUDA).
 */
public final class Catalogue {
    private static final Set<Reduction> STANDARD = EnumSet.of(Reduction.NONE, Reduction.SUM, Reduction.MEAN);
    private static final List<LossDefinition> ALL = new ArrayList<>();
    private static final Map<String, LossDefinition> BY_NAME = new LinkedHashMap<>();

    private Catalogue() {
    }

    static {
        // ---- Regression (elementwise)
        elementwise("mse", "mean squared error: e²", "torch mse_loss");
        entry("mae", List.of("l1", "abs"), "mean absolute error: |e|", "torch l1_loss",
                List.of(elementwiseForm()), List.of(), STANDARD, Reduction.MEAN, LossDefinition.Outer.IDENTITY);
        entry("rmse", List.of(), "root mean squared error: √(mean e²)", "—",
                List.of(elementwiseForm()), List.of(), EnumSet.of(Reduction.MEAN), Reduction.MEAN,
                LossDefinition.Outer.SQRT);
        entry("msle", List.of("log-mse"), "mean squared log error: (log1p p − log1p t)²", "seed \"log MSE\"",
                List.of(elementwiseForm()), List.of(), STANDARD, Reduction.MEAN, LossDefinition.Outer.IDENTITY);
        elementwise("huber", "½e² inside δ, linear outside", "torch huber_loss",
                ParamSpec.real(Param.DELTA, 1.0, v -> v > 0 && v < Double.POSITIVE_INFINITY, "> 0"));
        elementwise("smooth-l1", "½e²/β inside β, |e| − ½β outside", "torch smooth_l1_loss",
                ParamSpec.real(Param.BETA, 1.0, v -> v >= 0 && v < Double.POSITIVE_INFINITY, ">= 0"));
        elementwise("log-cosh", "log(cosh(e))", "Keras log_cosh");
        elementwise("quantile", "pinball loss max(τu, (τ−1)u), u = t − p", "pinball loss",
                ParamSpec.real(Param.TAU, 0.5, v -> v >= 0 && v <= 1, "in [0, 1]"));
        elementwise("poisson-nll", "Poisson negative log likelihood", "torch poisson_nll_loss",
                ParamSpec.flag(Param.LOG_INPUT, true), ParamSpec.flag(Param.FULL, false),
                ParamSpec.real(Param.EPS, 1e-8, v -> v >= 0 && v < Double.POSITIVE_INFINITY, ">= 0"));
        entry("gaussian-nll", List.of(), "Gaussian negative log likelihood with predicted variance",
                "torch gaussian_nll_loss",
                List.of(new Form("default", Family.ELEMENTWISE, List.of(grad("input"), values("target"), grad("var")), ONE)),
                List.of(ParamSpec.real(Param.EPS, 1e-6, v -> v >= 0 && v < Double.POSITIVE_INFINITY, ">= 0"),
                        ParamSpec.flag(Param.FULL, false)),
                STANDARD, Reduction.MEAN, LossDefinition.Outer.IDENTITY);

        // ---- Binary classification (elementwise)
        elementwise("bce", "binary cross-entropy on probabilities", "torch binary_cross_entropy",
                ParamSpec.real(Param.EPS, 0.0, v -> v >= 0 && v < 0.5, "in [0, 0.5)"));
        elementwise("bce-logits", "binary cross-entropy on logits", "torch binary_cross_entropy_with_logits",
                ParamSpec.weights(Param.POS_WEIGHT));
        elementwise("hinge", "max(0, 1 − t·p), t = ±1", "seed, sklearn hinge_loss");
        elementwise("squared-hinge", "max(0, 1 − t·p)², t = ±1", "Keras squared_hinge");
        ParamSpec<Double> gamma = ParamSpec.real(Param.GAMMA, 2.0, v -> v >= 0 && v < Double.POSITIVE_INFINITY, ">= 0");
        ParamSpec<Double> alpha = ParamSpec.real(Param.ALPHA, 0.25, v -> v >= 0 && v <= 1, "in [0, 1]");
        ParamSpec<AlphaMode> alphaMode = new ParamSpec<>(Param.ALPHA_MODE, AlphaMode.BALANCED, v -> true,
                "BALANCED, UNIFORM or NONE");
        elementwise("focal", "focal loss on probabilities", "torchvision sigmoid_focal_loss (probabilities)",
                gamma, alpha, alphaMode, ParamSpec.real(Param.EPS, 0.0, v -> v >= 0 && v < 0.5, "in [0, 0.5)"));
        // No eps on logits: σ(x) is never clipped, the softplus form is already finite everywhere.
        elementwise("focal-logits", "focal loss on logits", "torchvision sigmoid_focal_loss", gamma, alpha, alphaMode);
        elementwise("wasserstein", "critic loss t·p, t = ±1", "seed, Keras WGAN");

        // ---- Multi-class (rows)
        ParamSpec<float[]> classWeight = ParamSpec.weights(Param.CLASS_WEIGHT);
        ParamSpec<Integer> ignoreIndex = new ParamSpec<>(Param.IGNORE_INDEX, -100, v -> true, "any integer");
        ParamSpec<Double> probEps = ParamSpec.real(Param.EPS, 1e-15, v -> v >= 0 && v < 0.5, "in [0, 0.5)");
        ParamSpec<Boolean> normalize = ParamSpec.flag(Param.NORMALIZE, false);
        entry("cross-entropy", List.of("ce"), "softmax cross-entropy on logits, labels or soft targets",
                "torch cross_entropy",
                List.of(new Form("default", Family.ROWS, List.of(grad("input"), labels("target")), LABEL_CLASS_WEIGHT),
                        new Form("soft", Family.ROWS, List.of(grad("input"), values("target")), ONE)),
                List.of(classWeight, ignoreIndex,
                        ParamSpec.real(Param.LABEL_SMOOTHING, 0.0, v -> v >= 0 && v <= 1, "in [0, 1]")),
                STANDARD, Reduction.MEAN, LossDefinition.Outer.IDENTITY);
        rows("nll", "negative log likelihood on log-probabilities", "torch nll_loss",
                List.of(grad("input"), labels("target")), LABEL_CLASS_WEIGHT, classWeight, ignoreIndex);
        rows("categorical-cross-entropy", "cross-entropy on probabilities and one-hot/soft targets", "seed",
                List.of(grad("input"), values("target")), ONE, probEps, normalize);
        rows("sparse-categorical-cross-entropy", "cross-entropy on probabilities and labels", "seed",
                List.of(grad("input"), labels("target")), ONE, probEps, normalize);
        entry("log-loss", List.of(), "scikit-learn log loss (rows normalised, then clipped)", "sklearn log_loss",
                List.of(new Form("default", Family.ROWS, List.of(grad("input"), labels("target")), ONE),
                        new Form("binary", Family.ROWS, List.of(grad("input"), labels("target")), ONE)),
                List.of(probEps), STANDARD, Reduction.MEAN, LossDefinition.Outer.IDENTITY);
        rows("multi-margin", "multi-class hinge loss", "torch multi_margin_loss",
                List.of(grad("input"), labels("target")), ONE,
                ParamSpec.real(Param.MARGIN, 1.0, Double::isFinite, "finite"),
                ParamSpec.real(Param.P, 1.0, v -> v == 1 || v == 2, "1 or 2"), classWeight);
        entry("kl-divergence", List.of("kl"), "Kullback-Leibler divergence P(log P − log Q)", "torch kl_div",
                List.of(new Form("default", Family.ROWS, List.of(grad("input"), values("target")), ELEMENTS)),
                List.of(ParamSpec.flag(Param.LOG_INPUT, false), ParamSpec.flag(Param.LOG_TARGET, false),
                        ParamSpec.real(Param.EPS, 0.0, v -> v >= 0 && v < 1, "in [0, 1)")),
                EnumSet.allOf(Reduction.class), Reduction.BATCHMEAN, LossDefinition.Outer.IDENTITY);
        rows("entropy", "Shannon entropy −Σ P log P", "seed", List.of(grad("input")), ONE,
                ParamSpec.real(Param.BASE, Math.E, v -> v > 0 && v != 1 && v < Double.POSITIVE_INFINITY, "> 0 and != 1"));
        rows("distribution-cross-entropy", "cross-entropy between distributions −Σ P log Q", "seed",
                List.of(grad("input"), values("target")), ONE,
                ParamSpec.real(Param.EPS, 0.0, v -> v >= 0 && v < 1, "in [0, 1)"));

        // ---- Embeddings and pairs
        pairs("cosine-proximity", "negative cosine similarity", "seed, Keras cosine_proximity",
                List.of(grad("input"), values("target")),
                ParamSpec.real(Param.EPS, 1e-8, v -> v >= 0 && v < Double.POSITIVE_INFINITY, ">= 0"));
        pairs("cosine-embedding", "1 − cos for similar pairs, max(0, cos − margin) for dissimilar",
                "torch cosine_embedding_loss", List.of(grad("x1"), grad("x2"), rowValues("target")),
                ParamSpec.real(Param.MARGIN, 0.0, Double::isFinite, "finite"));
        entry("contrastive", List.of(), "y·d² + (1−y)·max(0, m − d)², y = 1 for similar pairs",
                "seed (Hadsell et al.)",
                List.of(new Form("default", Family.ELEMENTWISE, List.of(grad("distance"), values("target")), ONE),
                        new Form("pairs", Family.PAIRS, List.of(grad("x1"), grad("x2"), rowValues("target")), ONE)),
                List.of(ParamSpec.real(Param.MARGIN, 1.0, Double::isFinite, "finite")),
                STANDARD, Reduction.MEAN, LossDefinition.Outer.IDENTITY);
        pairs("triplet", "max(d(a,p) − d(a,n) + margin, 0)", "torch triplet_margin_loss",
                List.of(grad("anchor"), grad("positive"), grad("negative")),
                ParamSpec.real(Param.MARGIN, 1.0, Double::isFinite, "finite"),
                ParamSpec.real(Param.P, 2.0, v -> v > 0 && v < Double.POSITIVE_INFINITY, "> 0"),
                ParamSpec.real(Param.EPS, 1e-6, v -> v >= 0 && v < Double.POSITIVE_INFINITY, ">= 0"),
                ParamSpec.flag(Param.SWAP, false), ParamSpec.flag(Param.SQUARED, false));
        pairs("dice", "1 − (2Σpt + s)/(Σp + Σt + s) per row", "segmentation",
                List.of(grad("input"), values("target")),
                ParamSpec.real(Param.SMOOTH, 1.0, v -> v >= 0 && v < Double.POSITIVE_INFINITY, ">= 0"));
        pairs("tversky", "1 − (Σpt + s)/(Σpt + αΣp(1−t) + βΣ(1−p)t + s) per row", "segmentation",
                List.of(grad("input"), values("target")),
                ParamSpec.real(Param.ALPHA, 0.5, v -> v >= 0 && v < Double.POSITIVE_INFINITY, ">= 0"),
                ParamSpec.real(Param.BETA, 0.5, v -> v >= 0 && v < Double.POSITIVE_INFINITY, ">= 0"),
                ParamSpec.real(Param.SMOOTH, 1.0, v -> v >= 0 && v < Double.POSITIVE_INFINITY, ">= 0"));
    }

    /** The matrix losses, evaluated block by block without materialising the product. */
    static {
        ParamSpec<Integer> chunk = new ParamSpec<>(Param.CHUNK, 0, v -> v >= 0, ">= 0 (0 = auto)");
        entry("info-nce", List.of("clip"), "InfoNCE: cross-entropy over the rows of q·kᵀ/τ, diagonal labels (CLIP if symmetric)",
                "CLIP / SimCLR (composed in PyTorch)",
                List.of(new Form("default", Family.MATRIX, List.of(grad("queries"), grad("keys")), ONE)),
                List.of(ParamSpec.real(Param.TEMPERATURE, 0.07, v -> v > 0 && v < Double.POSITIVE_INFINITY, "> 0"),
                        ParamSpec.flag(Param.SYMMETRIC, false), chunk),
                STANDARD, Reduction.MEAN, LossDefinition.Outer.IDENTITY);
        entry("linear-cross-entropy", List.of(), "cross-entropy(h·Wᵀ, y) without materialising the N×V logits",
                "F.cross_entropy(h @ W.T, y)",
                List.of(new Form("default", Family.MATRIX, List.of(grad("hidden"), Slot.matrixRows("weight"), labels("target")),
                        LABEL_CLASS_WEIGHT)),
                List.of(new ParamSpec<>(Param.IGNORE_INDEX, -100, v -> true, "any integer"),
                        ParamSpec.real(Param.LABEL_SMOOTHING, 0.0, v -> v >= 0 && v <= 1, "in [0, 1]"), chunk,
                        ParamSpec.real(Param.SOFTCAP, 0.0, v -> v >= 0 && v < Double.POSITIVE_INFINITY,
                                "0 (off) or finite and > 0"),
                        ParamSpec.real(Param.Z_LOSS, 0.0, v -> v >= 0 && v < Double.POSITIVE_INFINITY,
                                "finite and >= 0"),
                        new ParamSpec<>(Param.SHIFT, 0, v -> v >= 0, "0 (off) or a sequence length >= 1")),
                STANDARD, Reduction.MEAN, LossDefinition.Outer.IDENTITY);
    }

    private static Form elementwiseForm() {
        return new Form("default", Family.ELEMENTWISE, List.of(grad("input"), values("target")), ONE);
    }

    private static void elementwise(String id, String summary, String reference, ParamSpec<?>... params) {
        entry(id, List.of(), summary, reference, List.of(elementwiseForm()), List.of(params), STANDARD,
                Reduction.MEAN, LossDefinition.Outer.IDENTITY);
    }

    private static void rows(String id, String summary, String reference, List<Slot> slots,
                             Form.Denominator denominator, ParamSpec<?>... params) {
        entry(id, List.of(), summary, reference, List.of(new Form("default", Family.ROWS, slots, denominator)),
                List.of(params), STANDARD, Reduction.MEAN, LossDefinition.Outer.IDENTITY);
    }

    private static void pairs(String id, String summary, String reference, List<Slot> slots, ParamSpec<?>... params) {
        entry(id, List.of(), summary, reference, List.of(new Form("default", Family.PAIRS, slots, ONE)),
                List.of(params), STANDARD, Reduction.MEAN, LossDefinition.Outer.IDENTITY);
    }

    private static void entry(String id, List<String> aliases, String summary, String reference, List<Form> forms,
                              List<ParamSpec<?>> params, Set<Reduction> reductions, Reduction defaultReduction,
                              LossDefinition.Outer outer) {
        LossDefinition d = new LossDefinition(id, aliases, summary, reference, forms, params,
                Collections.unmodifiableSet(EnumSet.copyOf(reductions)), defaultReduction, outer);
        ALL.add(d);
        BY_NAME.put(id, d);
        for (String a : aliases) {
            BY_NAME.put(a, d);
        }
    }

    /** {@return every loss, in LOSSES.md order (unmodifiable)} */
    public static List<LossDefinition> all() {
        return Collections.unmodifiableList(ALL);
    }

    /**
     * The entry for an id or alias, case-insensitive, surrounding blanks ignored.
     *
     * @param idOrAlias e.g. {@code cross-entropy}, {@code ce}, {@code L1}
     * @return the entry
     * @throws IllegalArgumentException when no loss has that name (the message lists every id and alias)
     */
    public static LossDefinition get(String idOrAlias) {
        LossDefinition d = BY_NAME.get(idOrAlias.trim().toLowerCase(Locale.ROOT));
        if (d == null) {
            throw new IllegalArgumentException("loss = " + idOrAlias + " is unknown (expected one of "
                    + String.join(", ", BY_NAME.keySet()) + ")");
        }
        return d;
    }
}
