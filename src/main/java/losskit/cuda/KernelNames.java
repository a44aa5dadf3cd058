package losskit.cuda;

import losskit.api.AlphaMode;
import losskit.api.Family;
import losskit.api.Form;
import losskit.api.Loss;
import losskit.api.ParamSpec;
import losskit.api.Precision;

/**
 * Kernel symbols, PTX modules and the generic parameter marshalling, all derived from the catalogue:
 * the symbol of a form is {@code losskit_<family>_<termKey>} with {@code -} and {@code /} written as
 * {@code _} (e.g. {@code losskit_ew_mse}, {@code losskit_rows_cross_entropy_soft}). The CUDA side stamps
 * one kernel per symbol from its family skeleton; the PTX check test compares the two.
 */
public final class KernelNames {
    /** Scalar parameter slots p0..p5 every kernel takes. */
    public static final int SCALAR_PARAMS = 6;
    /** Kernel parameter counts per family (see the skeleton comments in cuda-kernels/). */
    public static final int ELEMENTWISE_PARAMS = 15 + SCALAR_PARAMS;
    public static final int ROW_PARAMS = 23 + SCALAR_PARAMS;
    /** The MEAN pre-pass kernels. */
    public static final String EW_WEIGHT_SUM = "losskit_ew_weight_sum";
    public static final int EW_WEIGHT_SUM_PARAMS = 4;
    public static final String ROWS_DENOMINATOR = "losskit_rows_denominator";
    public static final int ROWS_DENOMINATOR_PARAMS = 12;
    /** The module (cuda-kernels/finish.cu) that folds block partials into a call's result record on the device. */
    public static final String FINISH_MODULE = "finish";
    /** The matrix losses' FAST kernels (cuda-kernels/matrix_fast.cu: float32 logits from tensor-core GEMMs). */
    public static final String MATRIX_FAST_MODULE = "matrix_fast";
    public static final String FINISH_DENOMINATOR = "losskit_finish_denominator";
    public static final int FINISH_DENOMINATOR_PARAMS = 4;
    public static final String FINISH_RESULT = "losskit_finish_result";
    public static final int FINISH_RESULT_PARAMS = 4;
    public static final String FINISH_SCALE = "losskit_finish_scale";
    public static final int FINISH_SCALE_PARAMS = 3;

    private KernelNames() {
    }

    /** The kernel of a loss's form (EXACT precision). */
    public static String symbol(String lossId, Form form) {
        return "losskit_" + prefix(form.family()) + "_" + form.termKey(lossId).replace('-', '_').replace('/', '_');
    }

    /**
     * The kernel of a loss's form in a precision: FAST kernels carry the suffix {@code _fast} (the matrix
     * family's symbol is its float64 row kernel; its FAST path, {@code CudaMatrixFast}, has a module of its
     * own, {@link #MATRIX_FAST_MODULE}).
     */
    public static String symbol(String lossId, Form form, Precision precision) {
        String base = symbol(lossId, form);
        return precision == Precision.FAST && hasFastKernels(form.family()) ? base + "_fast" : base;
    }

    /**
     * Whether a family has FAST (float32) twins of its per-loss kernels: every family but the matrix losses,
     * whose FAST path is GEMMs plus the kernels of {@link #MATRIX_FAST_MODULE}.
     */
    public static boolean hasFastKernels(Family family) {
        return family != Family.MATRIX;
    }

    /** The PTX module (cuda-kernels/&lt;module&gt;.cu) that holds a family's kernels. */
    public static String module(Family family) {
        return switch (family) {
            case ELEMENTWISE -> "elementwise";
            case ROWS -> "rows";
            case PAIRS -> "pairs";
            default -> "matrix";
        };
    }

    public static int parameterCount(Family family) {
        return family == Family.ELEMENTWISE ? ELEMENTWISE_PARAMS : ROW_PARAMS;
    }

    private static String prefix(Family family) {
        return switch (family) {
            case ELEMENTWISE -> "ew";
            case ROWS -> "rows";
            case PAIRS -> "pairs";
            default -> "matrix";
        };
    }

    /** Whether this build has CUDA kernels for a family (all: the matrix family is cuBLAS + matrix.cu). */
    public static boolean hasKernels(Family family) {
        return true;
    }

    /**
     * The loss's non-array parameters in catalogue order as p0..p5: reals as they are, flags as 0/1,
     * integers as their value, {@link AlphaMode} as its ordinal. Arrays (classWeight, posWeight) travel as
     * pointers. The CUDA term comments name which pk each parameter is.
     */
    public static double[] scalarParams(Loss loss) {
        double[] p = new double[SCALAR_PARAMS];
        int k = 0;
        for (ParamSpec<?> spec : loss.definition().params()) {
            Object v = loss.get(spec.param());
            if (spec.param().type() == float[].class) {
                continue;
            }
            if (k == SCALAR_PARAMS) {
                throw new IllegalStateException(loss.id() + " has more than " + SCALAR_PARAMS + " scalar parameters");
            }
            if (v instanceof Double d) {
                p[k++] = d;
            } else if (v instanceof Integer i) {
                p[k++] = i;
            } else if (v instanceof Boolean b) {
                p[k++] = b ? 1 : 0;
            } else if (v instanceof AlphaMode m) {
                p[k++] = m.ordinal();
            } else {
                throw new IllegalStateException(loss.id() + ": parameter " + spec.param().name() + " has no CUDA encoding");
            }
        }
        return p;
    }
}
