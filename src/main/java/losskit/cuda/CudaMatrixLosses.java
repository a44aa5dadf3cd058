package losskit.cuda;

import static jcuda.driver.JCudaDriver.cuCtxGetDevice;
import static jcuda.driver.JCudaDriver.cuCtxSynchronize;
import static jcuda.driver.JCudaDriver.cuDeviceGetAttribute;
import static jcuda.driver.JCudaDriver.cuLaunchKernel;
import static jcuda.driver.JCudaDriver.cuMemAlloc;
import static jcuda.driver.JCudaDriver.cuMemFree;
import static jcuda.driver.JCudaDriver.cuMemcpyDtoH;
import static jcuda.driver.JCudaDriver.cuMemcpyHtoD;

import java.nio.Buffer;
import java.nio.FloatBuffer;
import java.nio.IntBuffer;
import java.nio.LongBuffer;
import java.nio.ShortBuffer;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.function.Function;
import jcuda.CudaException;
import jcuda.Pointer;
import jcuda.driver.CUdevice;
import jcuda.driver.CUdevice_attribute;
import jcuda.driver.CUdeviceptr;
import jcuda.driver.CUfunction;
import jcuda.jcublas.JCublas2;
import jcuda.jcublas.cublasAtomicsMode;
import jcuda.jcublas.cublasHandle;
import jcuda.jcublas.cublasMath;
import jcuda.jcublas.cublasOperation;
import jcuda.jcublas.cublasPointerMode;
import jcuda.jcublas.cublasStatus;
import jcuda.runtime.cudaStream_t;
import losskit.api.HalfFloats;
import losskit.api.LossInputException;
import losskit.api.Param;
import losskit.api.Partial;
import losskit.api.Precision;
import losskit.api.Reduction;
import losskit.api.Tensor;
import losskit.api.ValidatedCall;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The matrix losses on CUDA: {@code linear-cross-entropy} and {@code info-nce} without the N×V (N×N)
 * logits ever existing. Rows are processed in blocks whose logits fit a bounded workspace: per block, a
 * cuBLAS GEMM ({@code cublasDgemm_v2} through JCublas2) writes the logits, a row kernel of
 * {@code cuda-kernels/matrix.cu} reduces them (online log-sum-exp, the rows' losses) and turns them into
 * the gradient G in place, and two more GEMMs multiply it back: {@code dh = G·W} for the block's rows and
 * {@code dW += Gᵀ·h} (β = 1 after the first block). {@code info-nce} needs every row's logits before its
 * column log-sum-exps are known: pass 1 folds them block by block in row order, pass 2 recomputes each
 * block's logits for the gradient.
 *
 * <p><b>Precision: float64 GEMMs.</b> The operands are widened to float64 on the device and the three
 * products are DGEMMs; the gradients are rounded to float32 once, at the end. float32 GEMMs (SGEMM, each
 * logit off by about 2⁻²⁴·Σ|h_k·W_k|) were measured against the PyTorch float64 golden cases: gradient
 * elements where rows or classes cancel were off by 1e-4 to 1e-3 of themselves (V = 7, D = 256:
 * dW[371] = 1.28290e-5 for 1.28260e-5), against the contract's 1e-5 — at every D, not only 256 — and
 * finite differences of an SGEMM value are rounding noise. So the GPU path keeps the CPU oracle's
 * precision (float64 dot products): on GPUs with full-rate FP64 (A100, H100, H200) a DGEMM costs what
 * an SGEMM does; on GPUs with 1/32–1/64-rate FP64 the matrix losses are correspondingly slower.
 *
 * <p><b>16-bit operands.</b> bfloat16 and float16 operands (in any mix with float32) are widened exactly
 * to the same float64 copies — host data by {@code HalfFloats} on the host, device data by
 * {@code losskit_matrix_widen_half} — so they give the value of their float32 widening bit for bit.
 * Gradients and NONE losses are rounded once from float64 into their destination's dtype (float32, or the
 * operand's 16-bit dtype: {@code HalfFloats.doubleToBf16}/{@code doubleToF16} on the host,
 * {@code losskit_matrix_narrow_half} for device destinations), never through float32.
 *
 * <p><b>LM-head parameters.</b> {@code softcap}, {@code zLoss} and {@code shift} go to the row kernel as
 * arguments; with a shift the host checks (and the kernel reads) the label of row i + 1, and the last row of
 * every sequence is ignored (docs/SEMANTICS.md).
 *
 * <p><b>Device memory.</b> The operands live on the device as float64 copies ({@code hidden},
 * {@code weight} and their gradients: 8 bytes per element, twice their float32 size, converted on the
 * host on the way in and out; labels and weights as given). Beyond them, the workspace holds the logits
 * block (rows × width × 8 bytes), the per-row statistics (8 bytes per
 * row for linear-cross-entropy, 48 for info-nce) and the cuBLAS workspace (given to cuBLAS with
 * {@code cublasSetWorkspace}, so that it allocates none of its own: 4 MiB, 32 MiB from compute
 * capability 9.0, as cuBLAS's default). The rows per block are the {@code chunk} parameter, or as many as
 * fit the budget — {@value #DEFAULT_BUDGET_MIB} MiB, or the system property
 * {@code losskit.cuda.matrixWorkspace} (bytes, or with a K/M/G suffix) read when the backend opens — and at
 * least one. The plan of the last call is {@link #lastPlan()}, logged at debug.
 *
 * <p><b>Determinism.</b> No atomics: every reduction is a fixed tree or a fixed-order fold, blocks run in
 * row order, the value is folded on the host in row order in double-double (as the CPU backend folds it),
 * and cuBLAS (one handle, one stream, its own workspace, atomics not allowed) is bitwise reproducible on
 * the same GPU model and cuBLAS version.
 *
 * <p><b>Streams.</b> Everything runs on the legacy default stream, which the device's blocking streams
 * are ordered with, and the call waits for its results: a matrix call is synchronous (the backend's
 * {@code computeAsync} completes it at once) and ignores {@code Inputs.onStream}. Not thread-safe: the
 * backend serialises calls on the device and makes its context current before each.
 */
final class CudaMatrixLosses implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(CudaMatrixLosses.class);

    /** The workspace budget when neither {@code chunk} nor the system property says otherwise. */
    static final long DEFAULT_BUDGET_MIB = 64;
    /**
     * The FAST path's workspace cap when the property is not set: its budget is a quarter of the device's free
     * memory, at most this (issue 17: ≤ 1.2 GB beyond the operands and gradients at the Gemma-2 head shape).
     */
    static final long FAST_BUDGET_CAP_MIB = 1024;
    static final String BUDGET_PROPERTY = "losskit.cuda.matrixWorkspace";
    /** The largest block of a matrix kernel (LOSSKIT_MATRIX_BLOCK in matrix.cu). */
    static final int BLOCK = 256;
    private static final int MAX_GRID = 1024;
    private static final long ALLOCATION_GRANULE = 64 << 10;
    /** float64 values converted on the host per copy when widening operands and narrowing gradients. */
    private static final int HOST_PIECE = 1 << 17;

    /** The kernels of matrix.cu besides the per-loss ones (named by {@link KernelNames#symbol}). */
    static final String NCE_COLUMNS = "losskit_matrix_info_nce_columns";
    static final String NCE_FINISH = "losskit_matrix_info_nce_finish";
    static final String NCE_GRADIENT = "losskit_matrix_info_nce_gradient";
    static final String WIDEN = "losskit_matrix_widen";
    static final String NARROW = "losskit_matrix_narrow";
    /** bfloat16/float16 → float64 copies of device-resident 16-bit operands (a dtype argument). */
    static final String WIDEN_HALF = "losskit_matrix_widen_half";
    /** float64 → bfloat16/float16 gradients into 16-bit device destinations, rounded once. */
    static final String NARROW_HALF = "losskit_matrix_narrow_half";
    /** The dtype codes of {@link #WIDEN_HALF} and {@link #NARROW_HALF} (include/dtype.cuh's LK_DT_BF16/_F16). */
    private static final int DT_BF16 = 1;
    private static final int DT_F16 = 2;
    /** Every matrix kernel and the parameter count the Java side passes (checked against the PTX). */
    static final Map<String, Integer> KERNEL_PARAMS = kernelParams();

    private final Function<String, CUfunction> kernels;
    private final Function<String, CUfunction> fastKernels;
    private final long budget;
    private final boolean budgetSet;
    private final CudaMatrixFast fast = new CudaMatrixFast(this);
    private final DeviceBuffer operands = new DeviceBuffer("row operands");
    private final DeviceBuffer matrixIn = new DeviceBuffer("weight/keys");
    private final DeviceBuffer matrixGrad = new DeviceBuffer("weight/keys gradient");
    private final DeviceBuffer work = new DeviceBuffer("workspace");
    private final DeviceBuffer cublasWork = new DeviceBuffer("cuBLAS workspace");
    private cublasHandle handle;
    private String cublasUnavailable;
    private Plan lastPlan;
    /** The GEMMs of the last call as they ran: "routine (compute type)" → {calls, flops}, in first-call order. */
    private final Map<String, long[]> lastGemms = new LinkedHashMap<>();
    private boolean warnedOverBudget;

    /**
     * How a call was split.
     *
     * @param rows        rows per block
     * @param blocks      number of blocks
     * @param logitsBytes the logits block
     * @param statsBytes  per-row float64 statistics
     * @param cublasBytes the workspace given to cuBLAS
     * @param budget      the budget the rows were fitted to (the chunk parameter overrides it)
     */
    record Plan(int rows, int blocks, long logitsBytes, long statsBytes, long cublasBytes, long budget) {
        /** Device memory beyond inputs and outputs. */
        long workspaceBytes() {
            return logitsBytes + statsBytes + cublasBytes;
        }
    }

    /**
     * @param kernels     finds a kernel of the matrix module (cuda-kernels/matrix.cu) by symbol
     * @param fastKernels finds a kernel of the FAST matrix module (cuda-kernels/matrix_fast.cu) by symbol
     */
    CudaMatrixLosses(Function<String, CUfunction> kernels, Function<String, CUfunction> fastKernels) {
        this.kernels = kernels;
        this.fastKernels = fastKernels;
        String property = System.getProperty(BUDGET_PROPERTY);
        this.budget = budgetFrom(property);
        this.budgetSet = property != null && !property.isBlank();
    }

    private static Map<String, Integer> kernelParams() {
        Map<String, Integer> m = new LinkedHashMap<>();
        m.put("losskit_matrix_linear_cross_entropy", 18);
        m.put("losskit_matrix_info_nce", 6);
        m.put(NCE_COLUMNS, 7);
        m.put(NCE_FINISH, 8);
        m.put(NCE_GRADIENT, 8);
        m.put(WIDEN, 3);
        m.put(NARROW, 3);
        m.put(WIDEN_HALF, 4);
        m.put(NARROW_HALF, 4);
        return java.util.Collections.unmodifiableMap(m);
    }

    /** The budget in bytes from {@code losskit.cuda.matrixWorkspace} ({@code 67108864}, {@code 64M}, …). */
    static long budgetFrom(String value) {
        if (value == null || value.isBlank()) {
            return DEFAULT_BUDGET_MIB << 20;
        }
        String v = value.trim().toUpperCase(Locale.ROOT);
        int shift = switch (v.charAt(v.length() - 1)) {
            case 'K' -> 10;
            case 'M' -> 20;
            case 'G' -> 30;
            default -> 0;
        };
        try {
            long n = Long.parseLong(shift == 0 ? v : v.substring(0, v.length() - 1));
            if (n > 0 && n <= Long.MAX_VALUE >> shift) {
                return n << shift;
            }
        } catch (NumberFormatException e) {
            // reported below
        }
        throw new IllegalArgumentException(BUDGET_PROPERTY + " = " + value + " is invalid (expected a positive number "
                + "of bytes, optionally with K, M or G)");
    }

    /** The split of the last call, or null before the first. */
    Plan lastPlan() {
        return lastPlan;
    }

    long budget() {
        return budget;
    }

    /**
     * The FAST path's workspace budget: the {@value #BUDGET_PROPERTY} property when set, else a quarter of the
     * device's free memory capped at {@value #FAST_BUDGET_CAP_MIB} MiB (the EXACT budget when the driver does not
     * say how much is free).
     */
    long fastBudget() {
        if (budgetSet) {
            return budget;
        }
        long free = CudaMatrixFast.freeMemory();
        return free <= 0 ? budget : Math.max(budget, Math.min(FAST_BUDGET_CAP_MIB << 20, free / 4));
    }

    /** The matrix workspace budgets as {@code losskit info} prints them. */
    String describeBudgets() {
        String fastFrom = budgetSet ? BUDGET_PROPERTY : "a quarter of free device memory, at most " + FAST_BUDGET_CAP_MIB + " MiB";
        return "matrix workspace: EXACT " + (budget >> 20) + " MiB, FAST " + (fastBudget() >> 20) + " MiB (" + fastFrom + ")";
    }

    /** A kernel of the FAST module (cuda-kernels/matrix_fast.cu). */
    CUfunction fastKernel(String symbol) {
        return fastKernels.apply(symbol);
    }

    /** Sets the handle's workspace again (after cublasSetStream, which resets it to cuBLAS's own pool). */
    void restoreCublasWorkspace() {
        check(JCublas2.cublasSetWorkspace(handle, cublasWork.ptr, cublasWork.capacity), "cublasSetWorkspace_v2",
                cublasWork.capacity + " bytes");
    }



    /**
     * The GEMMs the last call ran, counted where they are launched: "routine (compute type)" → {calls,
     * flops} with 2·m·n·k flops per GEMM (empty before the first call). What a benchmark reports as the
     * GEMM dtype and its FLOPs, so that it asks rather than assumes.
     */
    Map<String, long[]> lastGemms() {
        Map<String, long[]> copy = new LinkedHashMap<>();
        lastGemms.forEach((k, v) -> copy.put(k, v.clone()));
        return copy;
    }

    /** Device bytes this path holds between calls: operands, gradients, workspace and cuBLAS's workspace. */
    long deviceBytesHeld() {
        return operands.capacity + matrixIn.capacity + matrixGrad.capacity + work.capacity + cublasWork.capacity
                + fast.deviceBytesHeld();
    }

    /**
     * Runs a matrix loss; its result is ready when this returns. Inputs and destinations may be host data
     * or device-resident ({@code Tensor.onDevice}): float operands are widened on the device then, labels
     * and weights (N values) read back for the checks the host makes, and device destinations written in
     * place. Device data is first waited for: everything queued on the context, the caller's stream too.
     */
    Partial run(ValidatedCall call) {
        ensureCublas();
        lastGemms.clear();
        if (call.hasDeviceData()) {
            try {
                cuCtxSynchronize();
            } catch (CudaException e) {
                throw wrap(e, "cuCtxSynchronize", "before reading device-resident operands");
            }
        }
        String symbol = KernelNames.symbol(call.loss().id(), call.form());
        CUfunction rowKernel = kernels.apply(symbol);
        // FAST multiplies on tensor cores, which take one dtype for both operands: mixed dtypes (bf16 hidden,
        // float32 weight, …) take the float64 path, which widens each exactly
        if (call.precision() == Precision.FAST && call.slot(0).dtype() == call.slot(1).dtype()) {
            Partial p = call.loss().id().equals("info-nce") ? fast.infoNce(call, handle)
                    : fast.linearCrossEntropy(call, handle, checkRows(call));
            if (Double.isFinite(p.sumLoss())) {
                return p;
            }
            // a NaN or ∞: float32 logits overflow where float64 ones do not (|h·W| beyond 3.4e38 from finite
            // operands), so the call is computed again in float64, which also gives the NaN of non-finite data
            LOG.debug("{}: FAST gave {}, computing the call again in float64", call.loss().id(), p.sumLoss());
            lastGemms.clear();
        }
        return switch (call.loss().id()) {
            case "linear-cross-entropy" -> linearCrossEntropy(call, rowKernel, symbol);
            case "info-nce" -> infoNce(call, rowKernel, symbol);
            default -> throw new IllegalStateException("no CUDA matrix path for " + call.loss().id());
        };
    }

    // ---- linear-cross-entropy --------------------------------------------------------------------------

    private Partial linearCrossEntropy(ValidatedCall call, CUfunction rowKernel, String symbol) {
        String id = call.loss().id();
        int n = (int) call.rows();
        int d = (int) call.rowLength();
        int v = call.classes();
        RowChecks checks = checkRows(call);
        Tensor labels = checks.labels();
        Tensor weights = checks.weights();
        boolean gh = wants(call, 0);
        boolean gw = wants(call, 1);
        boolean hasIgnore = checks.hasIgnore();
        int ignoreIndex = checks.ignoreIndex();
        boolean[] ignored = checks.ignored();
        double denominator = checks.denominator();
        double scale = checks.scale();
        double softcap = call.loss().real(Param.SOFTCAP);
        double zLoss = call.loss().real(Param.Z_LOSS);
        int shift = call.loss().get(Param.SHIFT);

        boolean lse = wantsLse(call);
        Plan plan = plan(call, n, v, (lse ? 16L : 8L) * n);
        long hElems = (long) n * d;
        long wElems = (long) v * d;
        boolean int64 = labels.dtype() == Tensor.DType.INT64;
        long yBytes = (long) n * (int64 ? 8 : 4);
        long sBytes = weights == null ? 0 : 4L * n;
        long uBytes = checks.upstream() == null ? 0 : 4L * n;
        long ghAt = align(8 * hElems) + align(yBytes) + align(sBytes);
        CUdeviceptr base = operands.ensure(ghAt + (gh ? align(8 * hElems) : 0) + uBytes);
        CUdeviceptr dh0 = base;
        CUdeviceptr dy = base.withByteOffset(align(8 * hElems));
        CUdeviceptr ds = weights == null ? null : dy.withByteOffset(align(yBytes));
        CUdeviceptr dgh = gh ? base.withByteOffset(ghAt) : null;
        CUdeviceptr du = uBytes == 0 ? null : base.withByteOffset(ghAt + (gh ? align(8 * hElems) : 0));
        CUdeviceptr dW = matrixIn.ensure(8 * wElems);
        CUdeviceptr dgW = gw ? matrixGrad.ensure(8 * wElems) : null;
        CUdeviceptr ws = work.ensure(align(plan.statsBytes()) + plan.logitsBytes());
        CUdeviceptr rowLoss = ws;
        CUdeviceptr rowLse = lse ? ws.withByteOffset(8L * n) : null;
        CUdeviceptr z = ws.withByteOffset(align(plan.statsBytes()));
        if (du != null) {
            upload(du, Pointer.to(checks.upstream()), uBytes, "lossesGradient");
        }

        widen(call.slot(0), hElems, dh0, "hidden");
        widen(call.slot(1), wElems, dW, "weight");
        upload(dy, hostPointer(int64 ? labels.longs() : labels.ints()), yBytes, "target");
        if (ds != null) {
            upload(ds, hostPointer(weights.floats()), sBytes, "weights");
        }
        int flags = (gh || gw ? 1 : 0) | (hasIgnore ? 2 : 0) | (gw ? 4 : 0);
        double eps = call.loss().real(Param.LABEL_SMOOTHING);
        for (int first = 0; first < n; first += plan.rows()) {
            int count = Math.min(plan.rows(), n - first);
            CUdeviceptr h = dh0.withByteOffset(8L * first * d);
            String where = "rows [" + first + ", " + (first + count) + ") of " + n + ", V " + v + ", D " + d;
            // z (column-major V × count, i.e. row-major count × V) = W (V × D) · h_blockᵀ
            gemm(cublasOperation.CUBLAS_OP_T, cublasOperation.CUBLAS_OP_N, v, count, d, dW, d, h, d, 0, z, v,
                    "logits, " + where);
            launch(symbol, rowKernel, count, block(v), List.of(ptr(z), i64(v), ptr(int64 ? null : dy),
                    ptr(int64 ? dy : null), ptr(ds), ptr(dh0), i64(d), ptr(rowLoss), i64(first), f64(scale), f64(eps),
                    i32(ignoreIndex), i32(flags), f64(softcap), f64(zLoss), i64(shift), ptr(rowLse), ptr(du)), where);
            linearBackward(z, v, count, d, h, dW, dgh, dgW, first, "h", "W", where);
            synchronize(symbol, where);
        }
        double[] sum = foldRowLosses(call, rowLoss, n, ignored);
        double[] zSum = lse ? storeLse(call, rowLse, n, checks) : new double[2];
        if (gh) {
            storeGradient(call, 0, dgh, hElems, "hidden gradient");
        }
        if (gw) {
            storeGradient(call, 1, dgW, wElems, "weight gradient");
        }
        return new Partial(id, call.loss().reduction(), call.loss().definition().outer(), sum[0], sum[1], denominator, 0, n,
                zSum[0], zSum[1]);
    }

    /** Whether the kernels write lse per row: the caller asked for it, or the z-loss term is reported. */
    static boolean wantsLse(ValidatedCall call) {
        return call.lse() != null || call.loss().real(Param.Z_LOSS) != 0;
    }

    /**
     * Downloads the per-row lse (float64), writes it rounded to float32 into the call's lse destination (host or
     * device) when there is one, and returns the z-loss term Σ s·ζ·lse² over the rows that count, folded in row
     * order in double-double (the CPU oracle's order): {hi, lo}.
     */
    static double[] storeLse(ValidatedCall call, CUdeviceptr rowLse, int n, RowChecks checks) {
        double[] lse = new double[n];
        download(Pointer.to(lse), rowLse, 8L * n, "row lse");
        Tensor dest = call.lse();
        if (dest != null) {
            float[] f = new float[n];
            for (int i = 0; i < n; i++) {
                f[i] = (float) lse[i];
            }
            if (dest.isOnDevice()) {
                upload(JCudaInterop.deviceptr(dest.devicePointer()), Pointer.to(f), 4L * n, "lse");
            } else {
                dest.floats().put(0, f, 0, n);
            }
        }
        double zLoss = call.loss().real(Param.Z_LOSS);
        double hi = 0;
        double lo = 0;
        if (zLoss != 0) {
            for (int i = 0; i < n; i++) {
                if (checks.ignored()[i]) {
                    continue;
                }
                double si = checks.weights() == null ? 1 : checks.weights().floats().get(i);
                double[] s = Partial.DoubleDouble.add(hi, lo, si * zLoss * lse[i] * lse[i], 0);
                hi = s[0];
                lo = s[1];
            }
        }
        return new double[]{hi, lo};
    }

    /**
     * What the host checks and derives from a linear-cross-entropy call's labels and weights, before any
     * kernel runs: both on the host (device-resident ones read back, N values each), which rows are ignored,
     * Σ s over the rows that count (the MEAN denominator, needed before the first block's gradient) and the
     * gradient scale.
     */
    record RowChecks(Tensor labels, Tensor weights, boolean[] ignored, double denominator, double scale,
                     boolean hasIgnore, int ignoreIndex, float[] upstream) {
    }

    /** The CPU backend's checks, in its order (row by row: weight, then label), with its messages. */
    static RowChecks checkRows(ValidatedCall call) {
        String id = call.loss().id();
        int n = (int) call.rows();
        int v = call.classes();
        Tensor labels = onHost(call.slot(2), "target");
        Tensor weights = call.weights() == null ? null : onHost(call.weights(), "weights");
        boolean hasIgnore = call.loss().definition().has(Param.IGNORE_INDEX);
        int ignoreIndex = hasIgnore ? call.loss().get(Param.IGNORE_INDEX) : 0;
        boolean[] ignored = new boolean[n];
        double denominator = 0;
        String expected = "[0, " + v + ")" + (hasIgnore ? " or ignoreIndex " + ignoreIndex : "");
        int shift = call.loss().get(Param.SHIFT);
        float[] upstream = null;
        if (call.lossesGradient() != null) {
            upstream = new float[n];
            onHost(call.lossesGradient(), "lossesGradient").floats().get(0, upstream, 0, n);
        }
        for (int i = 0; i < n; i++) {
            double si = weights == null ? 1 : weights.floats().get(i);
            if (!(si >= 0 && si < Double.POSITIVE_INFINITY)) {
                throw new LossInputException(id, "weights", i, format(si), "is out of the domain", "finite and >= 0");
            }
            if (upstream != null && !Float.isFinite(upstream[i])) {
                throw new LossInputException(id, "lossesGradient", i, format(upstream[i]), "is out of the domain",
                        "finite");
            }
            // with a shift, row i is scored against label i + 1, and the last row of a sequence against none
            int at = shift > 0 ? (i % shift == shift - 1 ? -1 : i + 1) : i;
            if (at < 0) {
                ignored[i] = true;
                continue;
            }
            long label = labels.label(at);
            if (hasIgnore && label == ignoreIndex) {
                ignored[i] = true;
                continue;
            }
            if (label < 0 || label >= v) {
                throw new LossInputException(id, "target", at, Long.toString(label), "is out of range", expected);
            }
            denominator += si;
        }
        double scale = call.loss().gradScale();
        if (divides(call)) {
            scale = denominator == 0 ? 0 : scale / denominator;
        }
        return new RowChecks(labels, weights, ignored, denominator, scale, hasIgnore, ignoreIndex, upstream);
    }

    // ---- info-nce --------------------------------------------------------------------------------------

    private Partial infoNce(ValidatedCall call, CUfunction rowKernel, String symbol) {
        String id = call.loss().id();
        int n = (int) call.rows();
        int d = (int) call.rowLength();
        double tau = call.loss().real(Param.TEMPERATURE);
        int symmetric = call.loss().flag(Param.SYMMETRIC) ? 1 : 0;
        boolean gq = wants(call, 0);
        boolean gk = wants(call, 1);

        Plan plan = plan(call, n, n, 48L * n);
        long elems = (long) n * d;
        CUdeviceptr dq = operands.ensure(align(8 * elems) + (gq ? align(8 * elems) : 0));
        CUdeviceptr dgq = gq ? dq.withByteOffset(align(8 * elems)) : null;
        CUdeviceptr dk = matrixIn.ensure(8 * elems);
        CUdeviceptr dgk = gk ? matrixGrad.ensure(8 * elems) : null;
        long vec = align(8L * n);
        CUdeviceptr ws = work.ensure(6 * vec + plan.logitsBytes());
        CUdeviceptr rowLoss = ws;
        CUdeviceptr rowLse = ws.withByteOffset(vec);
        CUdeviceptr diag = ws.withByteOffset(2 * vec);
        CUdeviceptr colMax = ws.withByteOffset(3 * vec);
        CUdeviceptr colSum = ws.withByteOffset(4 * vec);
        CUdeviceptr colLse = ws.withByteOffset(5 * vec);
        CUdeviceptr z = ws.withByteOffset(6 * vec);
        widen(call.slot(0), elems, dq, "queries");
        widen(call.slot(1), elems, dk, "keys");

        CUfunction columns = kernels.apply(NCE_COLUMNS);
        int rowBlock = block(n);
        int columnGrid = grid(n, rowBlock);
        for (int first = 0; first < n; first += plan.rows()) {
            int count = Math.min(plan.rows(), n - first);
            String where = "rows [" + first + ", " + (first + count) + ") of " + n + ", D " + d;
            CUdeviceptr q = dq.withByteOffset(8L * first * d);
            // S_block (column-major N × count) = k (N × D) · q_blockᵀ
            gemm(cublasOperation.CUBLAS_OP_T, cublasOperation.CUBLAS_OP_N, n, count, d, dk, d, q, d, 0, z, n,
                    "logits, " + where);
            launch(symbol, rowKernel, count, rowBlock, List.of(ptr(z), i64(n), i64(first), f64(tau), ptr(rowLse),
                    ptr(diag)), where);
            launch(NCE_COLUMNS, columns, columnGrid, rowBlock, List.of(ptr(z), i64(n), i64(count), f64(tau), ptr(colMax),
                    ptr(colSum), i32(first == 0 ? 1 : 0)), where);
            synchronize(symbol, where);
        }
        launch(NCE_FINISH, kernels.apply(NCE_FINISH), columnGrid, rowBlock, List.of(ptr(rowLse), ptr(diag), ptr(colMax),
                ptr(colSum), ptr(colLse), ptr(rowLoss), i64(n), i32(symmetric)), n + " rows");
        if (gq || gk) {
            double g = call.loss().gradScale() / (divides(call) ? n : 1) / tau;
            CUfunction gradient = kernels.apply(NCE_GRADIENT);
            for (int first = 0; first < n; first += plan.rows()) {
                int count = Math.min(plan.rows(), n - first);
                String where = "gradient, rows [" + first + ", " + (first + count) + ") of " + n + ", D " + d;
                CUdeviceptr q = dq.withByteOffset(8L * first * d);
                gemm(cublasOperation.CUBLAS_OP_T, cublasOperation.CUBLAS_OP_N, n, count, d, dk, d, q, d, 0, z, n,
                        "logits, " + where);
                launch(NCE_GRADIENT, gradient, count, rowBlock, List.of(ptr(z), i64(n), i64(first), f64(tau), ptr(rowLse),
                        ptr(colLse), f64(g), i32(symmetric)), where);
                linearBackward(z, n, count, d, q, dk, dgq, dgk, first, "q", "k", where);
                synchronize(NCE_GRADIENT, where);
            }
        }
        double[] sum = foldRowLosses(call, rowLoss, n, null);
        if (gq) {
            storeGradient(call, 0, dgq, elems, "queries gradient");
        }
        if (gk) {
            storeGradient(call, 1, dgk, elems, "keys gradient");
        }
        return new Partial(id, call.loss().reduction(), call.loss().definition().outer(), sum[0], sum[1], n, 0, n);
    }

    // ---- shared by both losses -------------------------------------------------------------------------

    /**
     * The gradient GEMMs of a block of linear logits z = B·A_blockᵀ (column-major {@code classes × count})
     * whose entries now hold G = ∂l/∂z: dA_block = G·B into {@code dA} at the block's rows, and
     * dB += Gᵀ·A_block (overwritten by the first block). A null destination is skipped.
     */
    private void linearBackward(CUdeviceptr g, int classes, int count, int d, CUdeviceptr aBlock, CUdeviceptr b,
                                CUdeviceptr dA, CUdeviceptr dB, int first, String aName, String bName, String where) {
        if (dA != null) {
            // dA_block (column-major D × count) = Bᵀ (D × classes) · Gᵀ (classes × count)
            gemm(cublasOperation.CUBLAS_OP_N, cublasOperation.CUBLAS_OP_N, d, count, classes, b, d, g, classes, 0,
                    dA.withByteOffset(8L * first * d), d, "d" + aName + " = G·" + bName + ", " + where);
        }
        if (dB != null) {
            // dBᵀ (column-major D × classes) += A_blockᵀ (D × count) · G (count × classes)
            gemm(cublasOperation.CUBLAS_OP_N, cublasOperation.CUBLAS_OP_T, d, classes, count, aBlock, d, g, classes,
                    first == 0 ? 0 : 1, dB, d, "d" + bName + " += Gᵀ·" + aName + ", " + where);
        }
    }

    /**
     * Downloads the per-row losses, stores them for a NONE reduction and folds them in row order in
     * double-double (the CPU backend's order): {hi, lo}. Rows marked in {@code ignored} (may be null) add
     * nothing and get loss 0.
     */
    double[] foldRowLosses(ValidatedCall call, CUdeviceptr rowLoss, int n, boolean[] ignored) {
        double[] losses = new double[n];
        download(Pointer.to(losses), rowLoss, 8L * n, "row losses");
        double hi = 0;
        double lo = 0;
        for (int i = 0; i < n; i++) {
            if (ignored != null && ignored[i]) {
                losses[i] = 0;
                continue;
            }
            double[] s = Partial.DoubleDouble.add(hi, lo, losses[i], 0);
            hi = s[0];
            lo = s[1];
        }
        storeLosses(call, losses);
        return new double[]{hi, lo};
    }

    // ---- planning --------------------------------------------------------------------------------------

    /**
     * Rows per block for {@code n} rows of {@code width} float64 logits: the chunk parameter, else as many
     * as fit the budget next to the statistics and the cuBLAS workspace, at least one.
     */
    private Plan plan(ValidatedCall call, int n, int width, long statsBytes) {
        return plan(call, n, 8L * width, statsBytes, budget);
    }

    /**
     * Rows per block for {@code n} rows of {@code rowBytes} of workspace each: the chunk parameter, else as
     * many as fit {@code budget} next to the statistics and the cuBLAS workspace, at least one.
     */
    Plan plan(ValidatedCall call, int n, long rowBytes, long statsBytes, long budget) {
        int chunk = call.loss().get(Param.CHUNK);
        long width = rowBytes;
        long cublasBytes = cublasWork.capacity;
        long rows = chunk > 0 ? Math.max(1, Math.min(n, chunk)) : rowsFor(budget, n, rowBytes, statsBytes, cublasBytes);
        int blocks = (int) ((n + rows - 1) / rows);
        Plan p = new Plan((int) rows, blocks, rows * rowBytes, statsBytes, cublasBytes, budget);
        lastPlan = p;
        if (chunk == 0 && p.workspaceBytes() > budget && !warnedOverBudget) {
            warnedOverBudget = true;
            LOG.warn("{}: one row of {} workspace bytes does not fit the matrix workspace budget of {} bytes next to the row "
                    + "statistics and cuBLAS's workspace: using {} bytes ({})", call.loss().id(), width, budget,
                    p.workspaceBytes(), BUDGET_PROPERTY);
        }
        if (LOG.isDebugEnabled()) {
            LOG.debug("{}: {} rows x {} workspace bytes in {} block(s) of {} rows; workspace {} bytes (logits {}, row "
                            + "statistics {}, cuBLAS {}){}", call.loss().id(), n, width, blocks, rows, p.workspaceBytes(),
                    p.logitsBytes(), statsBytes, cublasBytes, chunk > 0 ? " (chunk " + chunk + ")" : ", budget " + budget);
        }
        return p;
    }

    /** Rows per block that fit {@code budget} next to the statistics and cuBLAS's workspace: in [1, n]. */
    static long rowsFor(long budget, long n, long rowBytes, long statsBytes, long cublasBytes) {
        return Math.max(1, Math.min(n, (budget - statsBytes - cublasBytes) / rowBytes));
    }

    /** Threads per block for rows of {@code width}: a power of two in [32, 256] (the kernels' tree needs one). */
    static int block(long width) {
        int b = 32;
        while (b < width && b < BLOCK) {
            b <<= 1;
        }
        return b;
    }

    static int grid(long threads, int block) {
        return (int) Math.max(1, Math.min(MAX_GRID, (threads + block - 1) / block));
    }

    static boolean divides(ValidatedCall call) {
        Reduction r = call.loss().reduction();
        return r == Reduction.MEAN || r == Reduction.BATCHMEAN;
    }

    // ---- cuBLAS ----------------------------------------------------------------------------------------

    /**
     * Creates the cuBLAS handle on first use (so a host without cuBLAS runs every other family): the
     * legacy default stream the kernels run on, host pointer mode (α, β from Java), the default math
     * mode, no atomics, and a workspace of our own so that cuBLAS allocates nothing.
     */
    private void ensureCublas() {
        if (handle != null) {
            return;
        }
        if (cublasUnavailable != null) {
            throw new UnsupportedOperationException(cublasUnavailable);
        }
        try {
            JCublas2.initialize();
        } catch (LinkageError e) {
            cublasUnavailable = "the matrix losses on CUDA need cuBLAS 12 (libcublas.so.12 on the library path), "
                    + "which JCublas2 could not load: " + e.getMessage();
            throw new UnsupportedOperationException(cublasUnavailable, e);
        }
        int[] major = new int[1];
        try {
            CUdevice dev = new CUdevice();
            cuCtxGetDevice(dev);
            cuDeviceGetAttribute(major, CUdevice_attribute.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, dev);
        } catch (CudaException e) {
            throw wrap(e, "cuDeviceGetAttribute", "compute capability");
        }
        long cublasBytes = (major[0] >= 9 ? 32L : 4L) << 20;
        cublasHandle h = new cublasHandle();
        check(JCublas2.cublasCreate(h), "cublasCreate_v2", "");
        try {
            check(JCublas2.cublasSetStream(h, new cudaStream_t()), "cublasSetStream_v2", "legacy default stream");
            check(JCublas2.cublasSetPointerMode(h, cublasPointerMode.CUBLAS_POINTER_MODE_HOST), "cublasSetPointerMode_v2",
                    "host");
            check(JCublas2.cublasSetMathMode(h, cublasMath.CUBLAS_DEFAULT_MATH), "cublasSetMathMode", "default");
            check(JCublas2.cublasSetAtomicsMode(h, cublasAtomicsMode.CUBLAS_ATOMICS_NOT_ALLOWED), "cublasSetAtomicsMode",
                    "not allowed");
            // after cublasSetStream, which resets the workspace to cuBLAS's own pool
            CUdeviceptr ws = cublasWork.ensure(cublasBytes);
            check(JCublas2.cublasSetWorkspace(h, ws, cublasWork.capacity), "cublasSetWorkspace_v2",
                    cublasWork.capacity + " bytes");
        } catch (RuntimeException e) {
            JCublas2.cublasDestroy(h);
            cublasWork.free();
            throw e;
        }
        handle = h;
        LOG.info("CUDA backend: cuBLAS ready for the matrix losses (workspace budget {} bytes, cuBLAS workspace {} bytes)",
                budget, cublasWork.capacity);
    }

    private void gemm(int transa, int transb, int m, int n, int k, CUdeviceptr a, int lda, CUdeviceptr b, int ldb,
                      double beta, CUdeviceptr c, int ldc, String what) {
        int status = JCublas2.cublasDgemm(handle, transa, transb, m, n, k, Pointer.to(new double[]{1}), a, lda, b, ldb,
                Pointer.to(new double[]{beta}), c, ldc);
        check(status, "cublasDgemm_v2", what + ": m " + m + ", n " + n + ", k " + k + ", op " + op(transa) + op(transb));
        tally("cublasDgemm_v2 (float64)", 2L * m * n * k);
    }

    /** Counts a GEMM of the current call under its routine and compute type (see {@link #lastGemms()}). */
    void tally(String routine, long flops) {
        long[] t = lastGemms.computeIfAbsent(routine, k -> new long[2]);
        t[0]++;
        t[1] += flops;
    }

    static String op(int trans) {
        return trans == cublasOperation.CUBLAS_OP_N ? "N" : "T";
    }

    static void check(int status, String call, String detail) {
        if (status != cublasStatus.CUBLAS_STATUS_SUCCESS) {
            throw new CudaLossException(cublasStatus.stringFor(status), call, detail, null);
        }
    }

    // ---- driver plumbing -------------------------------------------------------------------------------

    private static void launch(String symbol, CUfunction f, int grid, int block, List<Pointer> args, String where) {
        try {
            cuLaunchKernel(f, grid, 1, 1, block, 1, 1, 0, null, Pointer.to(args.toArray(new Pointer[0])), null);
        } catch (CudaException e) {
            throw wrap(e, symbol, "grid " + grid + " x block " + block + ", " + where);
        }
    }

    private static void synchronize(String symbol, String where) {
        try {
            cuCtxSynchronize();
        } catch (CudaException e) {
            throw wrap(e, symbol + " (or a cuBLAS GEMM before it)", where);
        }
    }

    static void upload(CUdeviceptr d, Pointer host, long bytes, String what) {
        try {
            cuMemcpyHtoD(d, host, bytes);
        } catch (CudaException e) {
            throw wrap(e, "cuMemcpyHtoD", what + ", " + bytes + " bytes");
        }
    }

    static void download(Pointer host, CUdeviceptr d, long bytes, String what) {
        try {
            cuMemcpyDtoH(host, d, bytes);
        } catch (CudaException e) {
            throw wrap(e, "cuMemcpyDtoH", what + ", " + bytes + " bytes");
        }
    }

    /**
     * dst[0, count) = the float32 host values as float64, converted on the host a piece at a time (a
     * conversion kernel would need a float32 staging copy on the device, and costs the emulated driver
     * a launch per piece).
     */
    private static void widen(FloatBuffer host, long count, CUdeviceptr dst, String what) {
        float[] in = new float[(int) Math.min(HOST_PIECE, count)];
        double[] out = new double[in.length];
        for (long off = 0; off < count; off += in.length) {
            int k = (int) Math.min(in.length, count - off);
            host.get((int) off, in, 0, k);
            for (int i = 0; i < k; i++) {
                out[i] = in[i];
            }
            upload(dst.withByteOffset(Double.BYTES * off), Pointer.to(out), (long) Double.BYTES * k, what);
        }
    }

    /** The host buffer's [0, count) = src rounded to float32 (the gradients' one rounding), a piece at a time. */
    private static void narrow(CUdeviceptr src, long count, FloatBuffer dest, String what) {
        double[] in = new double[(int) Math.min(HOST_PIECE, count)];
        float[] out = new float[in.length];
        for (long off = 0; off < count; off += in.length) {
            int k = (int) Math.min(in.length, count - off);
            download(Pointer.to(in), src.withByteOffset(Double.BYTES * off), (long) Double.BYTES * k, what);
            for (int i = 0; i < k; i++) {
                out[i] = (float) in[i];
            }
            dest.put((int) off, out, 0, k);
        }
    }

    /** Whether the gradient of slot {@code i} is wanted (into a host buffer or device memory). */
    static boolean wants(ValidatedCall call, int i) {
        return call.gradientTensor(i) != null || call.deviceGradient(i) != null;
    }

    /** A float slot's float64 copy in dst: converted on the host, or on the device for device-resident data. */
    private void widen(Tensor t, long count, CUdeviceptr dst, String what) {
        if (!t.isOnDevice()) {
            if (t.dtype().isHalf()) {
                widenHalf(t.shorts(), t.dtype() == Tensor.DType.BFLOAT16, count, dst, what);
            } else {
                widen(t.floats(), count, dst, what);
            }
            return;
        }
        CUdeviceptr src = JCudaInterop.deviceptr(t.devicePointer());
        if (t.dtype().isHalf()) {
            launch(WIDEN_HALF, kernels.apply(WIDEN_HALF), grid(count, BLOCK), BLOCK,
                    List.of(ptr(src), ptr(dst), i64(count), i32(halfCode(t.dtype()))), what);
            synchronize(WIDEN_HALF, what);
            return;
        }
        launch(WIDEN, kernels.apply(WIDEN), grid(count, BLOCK), BLOCK, List.of(ptr(src), ptr(dst), i64(count)), what);
        synchronize(WIDEN, what);
    }

    private static int halfCode(Tensor.DType dtype) {
        return dtype == Tensor.DType.BFLOAT16 ? DT_BF16 : DT_F16;
    }

    /** dst[0, count) = the 16-bit host values as float64 (exact), converted on the host a piece at a time. */
    private static void widenHalf(ShortBuffer host, boolean bf16, long count, CUdeviceptr dst, String what) {
        short[] in = new short[(int) Math.min(HOST_PIECE, count)];
        double[] out = new double[in.length];
        for (long off = 0; off < count; off += in.length) {
            int k = (int) Math.min(in.length, count - off);
            host.get((int) off, in, 0, k);
            for (int i = 0; i < k; i++) {
                out[i] = bf16 ? HalfFloats.bf16ToFloat(in[i]) : HalfFloats.f16ToFloat(in[i]);
            }
            upload(dst.withByteOffset(Double.BYTES * off), Pointer.to(out), (long) Double.BYTES * k, what);
        }
    }

    /** The 16-bit host buffer's [0, count) = src rounded once to its dtype, a piece at a time. */
    private static void narrowHalf(CUdeviceptr src, long count, ShortBuffer dest, boolean bf16, String what) {
        double[] in = new double[(int) Math.min(HOST_PIECE, count)];
        short[] out = new short[in.length];
        for (long off = 0; off < count; off += in.length) {
            int k = (int) Math.min(in.length, count - off);
            download(Pointer.to(in), src.withByteOffset(Double.BYTES * off), (long) Double.BYTES * k, what);
            for (int i = 0; i < k; i++) {
                out[i] = bf16 ? HalfFloats.doubleToBf16(in[i]) : HalfFloats.doubleToF16(in[i]);
            }
            dest.put((int) off, out, 0, k);
        }
    }

    /** A gradient (float64 in src) into its destination: a host buffer, or device memory in place. */
    private void storeGradient(ValidatedCall call, int slot, CUdeviceptr src, long count, String what) {
        Tensor host = call.gradientTensor(slot);
        if (host != null) {
            if (host.dtype().isHalf()) {
                narrowHalf(src, count, host.shorts(), host.dtype() == Tensor.DType.BFLOAT16, what);
            } else {
                narrow(src, count, host.floats(), what);
            }
            return;
        }
        Tensor device = call.deviceGradient(slot);
        CUdeviceptr dst = JCudaInterop.deviceptr(device.devicePointer());
        if (device.dtype().isHalf()) {
            launch(NARROW_HALF, kernels.apply(NARROW_HALF), grid(count, BLOCK), BLOCK,
                    List.of(ptr(src), ptr(dst), i64(count), i32(halfCode(device.dtype()))), what);
            synchronize(NARROW_HALF, what);
            return;
        }
        launch(NARROW, kernels.apply(NARROW), grid(count, BLOCK), BLOCK, List.of(ptr(src), ptr(dst), i64(count)), what);
        synchronize(NARROW, what);
    }

    /**
     * The NONE losses (s·l per row, float64) into their destination, rounded once to its dtype (float32,
     * bfloat16 or float16): a host buffer, or device memory.
     */
    private static void storeLosses(ValidatedCall call, double[] losses) {
        Tensor dest = call.lossesTensor() != null ? call.lossesTensor() : call.deviceLosses();
        if (dest == null) {
            return;
        }
        int n = losses.length;
        boolean half = dest.dtype().isHalf();
        boolean bf16 = dest.dtype() == Tensor.DType.BFLOAT16;
        float[] f = half ? null : new float[n];
        short[] b = half ? new short[n] : null;
        for (int i = 0; i < n; i++) {
            if (half) {
                b[i] = bf16 ? HalfFloats.doubleToBf16(losses[i]) : HalfFloats.doubleToF16(losses[i]);
            } else {
                f[i] = (float) losses[i];
            }
        }
        if (!dest.isOnDevice()) {
            if (half) {
                dest.shorts().put(0, b, 0, n);
            } else {
                dest.floats().put(0, f, 0, n);
            }
        } else {
            upload(JCudaInterop.deviceptr(dest.devicePointer()), half ? Pointer.to(b) : Pointer.to(f),
                    (long) (half ? Short.BYTES : Float.BYTES) * n, "losses");
        }
    }

    /** Labels or weights as host data: device-resident ones (N values) are read back for the host's checks. */
    static Tensor onHost(Tensor t, String what) {
        if (!t.isOnDevice()) {
            return t;
        }
        int n = (int) t.size();
        CUdeviceptr p = JCudaInterop.deviceptr(t.devicePointer());
        switch (t.dtype()) {
            case INT64 -> {
                long[] a = new long[n];
                download(Pointer.to(a), p, 8L * n, what);
                return Tensor.labels(a);
            }
            case INT32 -> {
                int[] a = new int[n];
                download(Pointer.to(a), p, 4L * n, what);
                return Tensor.labels(a);
            }
            default -> {
                float[] a = new float[n];
                download(Pointer.to(a), p, 4L * n, what);
                return Tensor.of(a);
            }
        }
    }

    /** Host pointer at absolute index 0 of a buffer (the backends' indexing), copying read-only heap data. */
    static Pointer hostPointer(Buffer b) {
        Buffer view = b.duplicate().clear();
        if (b.isDirect()) {
            if (view instanceof FloatBuffer f) {
                return Pointer.to(f.slice());
            } else if (view instanceof IntBuffer i) {
                return Pointer.to(i.slice());
            } else if (view instanceof ShortBuffer sh) {
                return Pointer.to(sh.slice());
            }
            return Pointer.to(((LongBuffer) view).slice());
        }
        if (view instanceof FloatBuffer f) {
            if (f.hasArray()) {
                return Pointer.to(f.array()).withByteOffset((long) f.arrayOffset() * Float.BYTES);
            }
            float[] copy = new float[f.limit()];
            f.get(copy);
            return Pointer.to(copy);
        }
        if (view instanceof ShortBuffer sh) {
            if (sh.hasArray()) {
                return Pointer.to(sh.array()).withByteOffset((long) sh.arrayOffset() * Short.BYTES);
            }
            short[] copy = new short[sh.limit()];
            sh.get(copy);
            return Pointer.to(copy);
        }
        if (view instanceof IntBuffer i) {
            if (i.hasArray()) {
                return Pointer.to(i.array()).withByteOffset((long) i.arrayOffset() * Integer.BYTES);
            }
            int[] copy = new int[i.limit()];
            i.get(copy);
            return Pointer.to(copy);
        }
        LongBuffer l = (LongBuffer) view;
        if (l.hasArray()) {
            return Pointer.to(l.array()).withByteOffset((long) l.arrayOffset() * Long.BYTES);
        }
        long[] copy = new long[l.limit()];
        l.get(copy);
        return Pointer.to(copy);
    }

    static long align(long bytes) {
        return (bytes + 255) / 256 * 256;
    }

    /** A weight as the CPU backend prints it in its message (losskit.cpu.ElementwiseDriver.format). */
    static String format(double v) {
        if (v == Math.rint(v) && Math.abs(v) < 1e15) {
            return Long.toString((long) v);
        }
        return Float.toString((float) v).equals(Double.toString(v)) ? Double.toString(v) : Float.toString((float) v);
    }

    static CudaLossException wrap(RuntimeException e, String what, String detail) {
        if (e instanceof CudaLossException c) {
            return c;
        }
        String msg = e.getMessage() == null ? e.toString() : e.getMessage();
        return new CudaLossException(msg, what, detail, e);
    }

    static Pointer ptr(CUdeviceptr p) {
        return Pointer.to(p == null ? new CUdeviceptr() : p);
    }

    static Pointer i64(long v) {
        return Pointer.to(new long[]{v});
    }

    static Pointer i32(int v) {
        return Pointer.to(new int[]{v});
    }

    static Pointer f64(double v) {
        return Pointer.to(new double[]{v});
    }

    /** Device memory (calls the context is current for); the handle is destroyed before its workspace. */
    @Override
    public void close() {
        try {
            if (handle != null) {
                JCublas2.cublasDestroy(handle);
                handle = null;
            }
        } finally {
            fast.close();
            for (DeviceBuffer b : new DeviceBuffer[]{operands, matrixIn, matrixGrad, work, cublasWork}) {
                b.free();
            }
        }
    }

    /**
     * One cached device allocation, grown (to a multiple of 64 KiB) only when a call needs more. The
     * operands, the weight (keys), its gradient, the workspace and cuBLAS's workspace live in separate
     * allocations, so that a kernel reaches only the ones it is given (the emulated driver snapshots every
     * allocation a launch can reach, to compare thread schedules).
     */
    static final class DeviceBuffer {
        private final String name;
        CUdeviceptr ptr;
        long capacity;

        DeviceBuffer(String name) {
            this.name = name;
        }

        CUdeviceptr ensure(long bytes) {
            if (bytes > capacity) {
                free();
                long size = (Math.max(bytes, 1) + ALLOCATION_GRANULE - 1) / ALLOCATION_GRANULE * ALLOCATION_GRANULE;
                CUdeviceptr p = new CUdeviceptr();
                try {
                    cuMemAlloc(p, size);
                } catch (CudaException e) {
                    throw wrap(e, "cuMemAlloc", name + ", " + size + " bytes");
                }
                ptr = p;
                capacity = size;
            }
            return ptr;
        }

        void free() {
            if (ptr != null) {
                CUdeviceptr p = ptr;
                ptr = null;
                capacity = 0;
                cuMemFree(p);
            }
        }
    }
}
