package losskit.cuda;

import static jcuda.driver.JCudaDriver.cuLaunchKernel;
import static jcuda.driver.JCudaDriver.cuMemGetInfo;
import static jcuda.driver.JCudaDriver.cuStreamSynchronize;

import java.nio.ShortBuffer;
import java.util.List;
import java.util.Map;
import jcuda.CudaException;
import jcuda.Pointer;
import jcuda.cudaDataType;
import jcuda.driver.CUdeviceptr;
import jcuda.driver.CUfunction;
import jcuda.driver.CUstream;
import jcuda.jcublas.JCublas2;
import jcuda.jcublas.cublasComputeType;
import jcuda.jcublas.cublasGemmAlgo;
import jcuda.jcublas.cublasHandle;
import jcuda.jcublas.cublasOperation;
import jcuda.runtime.cudaStream_t;
import losskit.api.HalfFloats;
import losskit.api.Param;
import losskit.api.Partial;
import losskit.api.Tensor;
import losskit.api.ValidatedCall;

/**
 * The matrix losses in FAST precision on CUDA — {@code linear-cross-entropy} (the LM head) and {@code info-nce}
 * (contrastive pairs) — at tensor-core speed, with the accuracy contract kept by construction rather than by
 * float64 arithmetic: the value within 1e-6 relative, per-row losses within 1e-5 of the largest, gradients
 * within 1e-4 of their largest element (CudaMatrixFastTest measures it).
 *
 * <p><b>info-nce</b> ({@link #infoNce}) is built from the same parts: per block of rows S = q_block·kᵀ
 * (cublasGemmEx, float32), a row kernel (max, log Σ e^{(s − m)/τ}, diagonal) and a column kernel folding the
 * column log-sum-exps online in row order (float32 max and compensated sum per column: deterministic, the
 * same whatever the blocks up to the GEMM's rounding), a finish kernel for the row losses; with a gradient a
 * second pass recomputes S, writes G = ∂l/∂S as the 16-bit pair or over S, and runs the same backward GEMMs
 * as the LM head ({@link #backward}: dq = G·k split over slabs of keys, dk += Gᵀ·q). Workspace: 4·N bytes of
 * S per row (plus 2·2·N for a 16-bit G pair and the slabs' partials), 72 bytes per row of statistics; the
 * diagonal s_ii comes from a float64 dot product rather than the GEMM (matrix_fast.cu says why).
 *
 * <p>linear-cross-entropy:
 *
 * <p><b>GEMMs.</b> The operands stay in their dtype — bfloat16, float16 or float32, on the device as the
 * caller holds them (no copy) or uploaded once in that dtype — and every product is {@code cublasGemmEx} with
 * float32 accumulation ({@code CUBLAS_COMPUTE_32F}; the default algorithm, atomics not allowed on the
 * handle, so the same input gives the same bits on the same GPU and cuBLAS). Per block of rows:
 * <ol>
 * <li>logits u = h_block·Wᵀ in float32 (16-bit × 16-bit products are exact in float32);</li>
 * <li>the row kernel ({@code losskit_matrix_linear_cross_entropy_fast}, cuda-kernels/matrix_fast.cu):
 *     soft-capping, log-sum-exp and the loss in float32 with compensated sums, and G = ∂l/∂z;</li>
 * <li>dh_block = G·W and dW += Gᵀ·h_block, float32 results. For 16-bit operands G is written as a 16-bit
 *     hi + lo pair and each product is two GEMMs (matrix_fast.cu says why: a single bfloat16 G misses the
 *     gradient contract tenfold); float32 operands take one float32 GEMM each.</li>
 * </ol>
 * Nothing waits inside the call: all of it is queued on the caller's stream ({@code Inputs.onStream}, else
 * the legacy default stream), and the call synchronises that stream once, at the end, to fold the row
 * losses on the host in row order (double-double, as the CPU does).
 *
 * <p><b>Memory.</b> No N×V logits: per block, rows × (4·V logits + 2·2·V for a 16-bit G pair + D·size(h) for
 * the block's copy of h, twice for 16-bit operands) bytes, plus 8 bytes per row for the row losses (16 when the
 * per-row lse is written: {@code Inputs.lseInto} or a z-loss, whose term is summed from it on the host) and
 * cuBLAS's workspace. The rows per
 * block are the {@code chunk} parameter, else as many as fit the FAST budget
 * ({@link CudaMatrixLosses#fastBudget()}: the {@code losskit.cuda.matrixWorkspace} property when set, else a
 * quarter of the device's free memory capped at {@value CudaMatrixLosses#FAST_BUDGET_CAP_MIB} MiB). The
 * gradients accumulate in float32: into the caller's float32 device destination directly, else into a
 * float32 device buffer that is copied out (and rounded once, for a 16-bit destination) at the end.
 */
final class CudaMatrixFast {
    static final String ROW_KERNEL = "losskit_matrix_linear_cross_entropy_fast";
    static final String NARROW = "losskit_matrix_fast_narrow";
    static final String SUM_SLABS = "losskit_matrix_fast_sum_slabs";
    static final String NCE_ROWS = "losskit_matrix_info_nce_fast";
    static final String NCE_COLUMNS = "losskit_matrix_info_nce_fast_columns";
    static final String NCE_FINISH = "losskit_matrix_info_nce_fast_finish";
    static final String NCE_GRADIENT = "losskit_matrix_info_nce_fast_gradient";
    static final String NCE_DIAGONAL = "losskit_matrix_info_nce_fast_diagonal";
    /** LK_DT_* of cuda-kernels/include/dtype.cuh. */
    private static final int DT_F32 = 0;
    private static final int DT_BF16 = 1;
    private static final int DT_F16 = 2;

    /** Every kernel of matrix_fast.cu and the parameter count the Java side passes (checked against the PTX). */
    static final Map<String, Integer> KERNEL_PARAMS = Map.of(ROW_KERNEL, 22, NARROW, 4, SUM_SLABS, 4,
            NCE_ROWS, 8, NCE_COLUMNS, 8, NCE_FINISH, 11, NCE_GRADIENT, 14, NCE_DIAGONAL, 6);

    private final CudaMatrixLosses owner;
    private final CudaMatrixLosses.DeviceBuffer hidden = new CudaMatrixLosses.DeviceBuffer("FAST hidden");
    private final CudaMatrixLosses.DeviceBuffer weight = new CudaMatrixLosses.DeviceBuffer("FAST weight");
    private final CudaMatrixLosses.DeviceBuffer rowData = new CudaMatrixLosses.DeviceBuffer("FAST labels/weights");
    private final CudaMatrixLosses.DeviceBuffer hiddenGrad = new CudaMatrixLosses.DeviceBuffer("FAST hidden gradient");
    private final CudaMatrixLosses.DeviceBuffer weightGrad = new CudaMatrixLosses.DeviceBuffer("FAST weight gradient");
    private final CudaMatrixLosses.DeviceBuffer work = new CudaMatrixLosses.DeviceBuffer("FAST workspace");

    CudaMatrixFast(CudaMatrixLosses owner) {
        this.owner = owner;
    }

    /**
     * Classes per slab of dh = G·W. One GEMM over all V classes would sum V products per element in one float32
     * chain (k ascending in the emulated cuBLAS; K/16 steps of a tensor-core accumulator on a GPU), whose
     * rounding grows as √V·2⁻²⁴ of the running sum: 1.3e-5 of the largest dh element at V = 50 257, past
     * the float32 contract. So dh is a deterministic split-K: one GEMM per slab of at most this many classes
     * into its own float32 partial, and the partials summed per element in float64, in slab order
     * ({@code losskit_matrix_fast_sum_slabs}): √8192·2⁻²⁴ ≈ 5e-6 at worst, whatever V is.
     */
    static final int SLAB = 8192;

    /**
     * The slab width in use: {@link #SLAB}; tests lower it (package-private) to reach several slabs at sizes
     * the emulated driver runs in seconds (info-nce's slabs are over N keys: N² logits).
     */
    static volatile int slabWidth = SLAB;

    static int slabs(int classes) {
        int w = slabWidth;
        return (classes + w - 1) / w;
    }

    /**
     * Bytes per row of a linear-cross-entropy block: {@link #blockRowBytes} and the block's copy of h (the weight
     * gradient).
     */
    static long rowBytes(int classes, int dim, Tensor.DType dtype, boolean gh, boolean gw) {
        int es = dtype.bytes();
        return blockRowBytes(classes, dim, dtype, gh, gh || gw) + (gw ? (long) es * dim * (es == 2 ? 2 : 1) : 0);
    }

    /**
     * Bytes per row of a block of {@code classes} logits: float32 logits, the 16-bit G pair (16-bit operands with
     * a gradient), the per-slab float32 partials of dA = G·B (gA, more than one slab).
     */
    static long blockRowBytes(int classes, int dim, Tensor.DType dtype, boolean gA, boolean grad) {
        int es = dtype.bytes();
        int slabs = slabs(classes);
        return 4L * classes + (grad && es == 2 ? 2L * es * classes : 0) + (gA && slabs > 1 ? 4L * slabs * dim : 0);
    }

    /** The operands' dtype as the kernels (LK_DT_*) and cuBLAS (cudaDataType) name it. */
    private record Operands(Tensor.DType dtype, int dt, int cudaType) {
        static Operands of(Tensor.DType dtype) {
            return switch (dtype) {
                case BFLOAT16 -> new Operands(dtype, DT_BF16, cudaDataType.CUDA_R_16BF);
                case FLOAT16 -> new Operands(dtype, DT_F16, cudaDataType.CUDA_R_16F);
                default -> new Operands(dtype, DT_F32, cudaDataType.CUDA_R_32F);
            };
        }

        boolean half() {
            return dt != DT_F32;
        }

        int bytes() {
            return dtype.bytes();
        }

        /** G's cuBLAS type: the operands' for a 16-bit pair, else float32 (written over the logits). */
        int gType() {
            return half() ? cudaType : cudaDataType.CUDA_R_32F;
        }

        int gBytes() {
            return half() ? bytes() : 4;
        }
    }

    /**
     * Where a block's G lives: the 16-bit pair (hi, lo) for 16-bit operands, else float32 over the logits (hi,
     * lo null); the per-slab partials of dA (null: one slab, or no dA).
     */
    private record BlockG(CUdeviceptr hi, CUdeviceptr lo, CUdeviceptr partials) {
        /**
         * This layout for a block of {@code count} rows: lo right after hi's {@code count} rows, so that the pair
         * is one [2·count × classes] matrix (dB += [A; A]ᵀ·[G_hi; G_lo] as one GEMM where A's rows are doubled).
         */
        BlockG forRows(int count, int classes, Operands op) {
            return lo == null ? this : new BlockG(hi, hi.withByteOffset((long) op.bytes() * count * classes), partials);
        }
    }

    /**
     * The backward GEMMs of one block of G = ∂l/∂(A·Bᵀ) (row-major {@code count × classes}): dA_block = G·B into
     * dA at the block's rows (one GEMM per pair part, or per slab of classes into the partials then summed in
     * float64, slab order), dB += Gᵀ·A_block (β = 0 for the first block's first part). A null destination is
     * skipped. For 16-bit operands every product is two GEMMs, G hi then G lo (β = 1).
     */
    /**
     * The backward GEMMs of one block of G = ∂l/∂(A·Bᵀ) (row-major {@code count × classes}), G written scaled by
     * 1/alpha (a power of two: every product takes α = alpha). dA_block = G·B into dA at the block's rows (one
     * GEMM per pair part, or per slab of classes into the partials then summed in float64, slab order);
     * dB += Gᵀ·A_block (β = 0 for the first block). A null destination is skipped. For 16-bit operands dA takes
     * two GEMMs, G hi then G lo (β = 1); dB too, unless {@code aTwin} says the block's A holds its rows twice
     * ([A; A], 2·count rows): then dB += [A; A]ᵀ·[G_hi; G_lo] is one GEMM with k = 2·count and the float32 dB is
     * read and written once per block.
     */
    private void backward(cublasHandle handle, CUstream stream, Operands op, BlockG g, float alpha, int classes,
                          int count, int d, int first, CUdeviceptr b, CUdeviceptr aBlock, boolean aTwin, CUdeviceptr dA,
                          CUdeviceptr dB, String aName, String bName, String where) {
        int slabs = slabs(classes);
        boolean split = dA != null && slabs > 1;
        int parts = op.half() ? 2 : 1;
        int es = op.bytes();
        for (int part = 0; part < parts; part++) {
            CUdeviceptr gp = part == 0 ? g.hi() : g.lo();
            String which = op.half() ? (part == 0 ? " (G hi)" : " (G lo)") : "";
            if (dA != null && !split) {
                // dA_block (column-major D × count) = Bᵀ (D × classes) · Gᵀ (classes × count)
                gemm(handle, alpha, cublasOperation.CUBLAS_OP_N, cublasOperation.CUBLAS_OP_N, d, count, classes, b, op.cudaType(),
                        d, gp, op.gType(), classes, part, dA.withByteOffset(4L * first * d), d,
                        "d" + aName + " = G·" + bName + which + ", " + where);
            }
            for (int slab = 0; split && slab < slabs; slab++) {
                // partial_slab (D × count) = B_slabᵀ (D × k) · G_slabᵀ (k × count), classes [c0, c0 + k)
                int c0 = slab * slabWidth;
                int k = Math.min(slabWidth, classes - c0);
                gemm(handle, alpha, cublasOperation.CUBLAS_OP_N, cublasOperation.CUBLAS_OP_N, d, count, k,
                        b.withByteOffset((long) es * c0 * d), op.cudaType(), d, gp.withByteOffset((long) op.gBytes() * c0),
                        op.gType(), classes, part, g.partials().withByteOffset(4L * slab * count * d), d,
                        "d" + aName + " slab " + slab + " of " + slabs + which + ", " + where);
            }
            if (dB != null && !(aTwin && op.half())) {
                // dBᵀ (column-major D × classes) += A_blockᵀ (D × count) · G (count × classes)
                gemm(handle, alpha, cublasOperation.CUBLAS_OP_N, cublasOperation.CUBLAS_OP_T, d, classes, count, aBlock,
                        op.cudaType(), d, gp, op.gType(), classes, first == 0 && part == 0 ? 0 : 1, dB, d,
                        "d" + bName + " += Gᵀ·" + aName + which + ", " + where);
            }
        }
        if (dB != null && aTwin && op.half()) {
            // dBᵀ (column-major D × classes) += [A; A]_blockᵀ (D × 2·count) · [G_hi; G_lo] (2·count × classes)
            gemm(handle, alpha, cublasOperation.CUBLAS_OP_N, cublasOperation.CUBLAS_OP_T, d, classes, 2 * count, aBlock,
                    op.cudaType(), d, g.hi(), op.gType(), classes, first == 0 ? 0 : 1, dB, d,
                    "d" + bName + " += [G_hi; G_lo]ᵀ·[" + aName + "; " + aName + "], " + where);
        }
        if (split) {
            long elems = (long) count * d;
            launch(owner.fastKernel(SUM_SLABS), CudaMatrixLosses.grid(elems, CudaMatrixLosses.BLOCK),
                    CudaMatrixLosses.BLOCK, stream, List.of(CudaMatrixLosses.ptr(g.partials()), CudaMatrixLosses.i64(slabs),
                            CudaMatrixLosses.i64(elems), CudaMatrixLosses.ptr(dA.withByteOffset(4L * first * d))),
                    "d" + aName + " slabs, " + where);
        }
    }

    Partial linearCrossEntropy(ValidatedCall call, cublasHandle handle, CudaMatrixLosses.RowChecks checks) {
        String id = call.loss().id();
        int n = (int) call.rows();
        int d = (int) call.rowLength();
        int v = call.classes();
        Tensor h = call.slot(0);
        Tensor w = call.slot(1);
        Operands op = Operands.of(h.dtype());
        boolean half = op.half();
        int es = op.bytes();
        boolean gh = CudaMatrixLosses.wants(call, 0);
        boolean gw = CudaMatrixLosses.wants(call, 1);
        boolean grad = gh || gw;
        long hElems = (long) n * d;
        long wElems = (long) v * d;

        boolean lse = CudaMatrixLosses.wantsLse(call);
        CudaMatrixLosses.Plan plan = owner.plan(call, n, rowBytes(v, d, op.dtype(), gh, gw), (lse ? 16L : 8L) * n,
                owner.fastBudget());
        int rows = plan.rows();

        CUstream stream = call.stream() == 0 ? null : JCudaInterop.stream(call.stream());
        CUdeviceptr dh = operand(h, hidden, hElems * es, "hidden");
        CUdeviceptr dW = operand(w, weight, wElems * es, "weight");
        Tensor labels = checks.labels();
        Tensor weights = checks.weights();
        boolean int64 = labels.dtype() == Tensor.DType.INT64;
        long yBytes = (long) n * (int64 ? 8 : 4);
        long sBytes = weights == null ? 0 : 4L * n;
        long uBytes = checks.upstream() == null ? 0 : 4L * n;
        CUdeviceptr dy = rowData.ensure(CudaMatrixLosses.align(yBytes) + CudaMatrixLosses.align(sBytes) + uBytes);
        CUdeviceptr ds = weights == null ? null : dy.withByteOffset(CudaMatrixLosses.align(yBytes));
        CUdeviceptr du = uBytes == 0 ? null
                : dy.withByteOffset(CudaMatrixLosses.align(yBytes) + CudaMatrixLosses.align(sBytes));
        if (du != null) {
            CudaMatrixLosses.upload(du, Pointer.to(checks.upstream()), uBytes, "lossesGradient");
        }
        CudaMatrixLosses.upload(dy, CudaMatrixLosses.hostPointer(int64 ? labels.longs() : labels.ints()), yBytes,
                "target");
        if (ds != null) {
            CudaMatrixLosses.upload(ds, CudaMatrixLosses.hostPointer(weights.floats()), sBytes, "weights");
        }
        CUdeviceptr dgh = gh ? gradientTarget(call, 0, hiddenGrad, hElems) : null;
        CUdeviceptr dgW = gw ? gradientTarget(call, 1, weightGrad, wElems) : null;

        long statsBytes = CudaMatrixLosses.align((lse ? 16L : 8L) * n);
        // 16-bit: the block's rows twice, so that dW += [h; h]ᵀ·[G_hi; G_lo] is one GEMM (matrix_fast.cu)
        long hCopyBytes = gw ? CudaMatrixLosses.align((long) es * rows * d * (half ? 2 : 1)) : 0;
        CUdeviceptr ws = work.ensure(statsBytes + blockBytes(rows, v, d, op, gh, grad) + hCopyBytes);
        CUdeviceptr rowLoss = ws;
        CUdeviceptr rowLse = lse ? ws.withByteOffset(8L * n) : null;
        CUdeviceptr hCopy = gw ? ws.withByteOffset(statsBytes) : null;
        CUdeviceptr z = ws.withByteOffset(statsBytes + hCopyBytes);
        BlockG pair = layout(z, rows, v, d, op, gh, grad);

        int flags = (grad ? 1 : 0) | (checks.hasIgnore() ? 2 : 0) | (gw ? 4 : 0);
        double eps = call.loss().real(Param.LABEL_SMOOTHING);
        float softcap = (float) call.loss().real(Param.SOFTCAP);
        double zloss = call.loss().real(Param.Z_LOSS);
        long shift = call.loss().get(Param.SHIFT);
        int block = CudaMatrixLosses.block(v);
        CUfunction rowKernel = owner.fastKernel(ROW_KERNEL);
        // A float16 G is written as G·2^e and the backward GEMMs take α = 2^−e (exact: a power of two), as for
        // info-nce: with g = gradScale·s·u/Σs (1.2e-4 at N = 8 192 under MEAN), g·p is below float16's smallest
        // subnormal (6e-8) for p < 5e-4 — most of a 256k-class softmax. |∂l/∂z| ≤ 1 + 2ζ·lse + … stays below
        // ~2 for the usual ζ, so the largest g is scaled to 2¹¹, leaving float16's top 2⁵ as margin.
        double gMax = Math.abs(checks.scale()) * maxOf(weights) * maxAbs(checks.upstream());
        int e = op.dt() == DT_F16 && gMax > 0 && Double.isFinite(gMax)
                ? Math.max(-100, Math.min(100, 11 - Math.getExponent(gMax))) : 0;
        float alpha = Math.scalb(1f, -e);
        double gScaled = Math.scalb(checks.scale(), e);
        setStream(handle, stream);
        try {
            for (int first = 0; first < n; first += rows) {
                int count = Math.min(rows, n - first);
                CUdeviceptr hBlock = dh.withByteOffset((long) es * first * d);
                String where = "FAST, rows [" + first + ", " + (first + count) + ") of " + n + ", V " + v + ", D " + d;
                BlockG g = pair.forRows(count, v, op);
                // u (column-major V × count, i.e. row-major count × V) = W (V × D) · h_blockᵀ
                gemm(handle, cublasOperation.CUBLAS_OP_T, cublasOperation.CUBLAS_OP_N, v, count, d, dW, op.cudaType(), d,
                        hBlock, op.cudaType(), d, 0, z, v, "logits, " + where);
                launch(rowKernel, count, block, stream, List.of(CudaMatrixLosses.ptr(z), CudaMatrixLosses.i64(v),
                        CudaMatrixLosses.ptr(int64 ? null : dy), CudaMatrixLosses.ptr(int64 ? dy : null),
                        CudaMatrixLosses.ptr(ds), CudaMatrixLosses.ptr(dh), CudaMatrixLosses.ptr(hCopy),
                        CudaMatrixLosses.i64(d), CudaMatrixLosses.i32(op.dt()), CudaMatrixLosses.ptr(half ? g.hi() : null),
                        CudaMatrixLosses.ptr(half ? g.lo() : null), CudaMatrixLosses.ptr(rowLoss),
                        CudaMatrixLosses.ptr(rowLse), CudaMatrixLosses.i64(first), CudaMatrixLosses.f64(gScaled),
                        CudaMatrixLosses.f64(eps), CudaMatrixLosses.i32(checks.ignoreIndex()),
                        CudaMatrixLosses.i32(flags), Pointer.to(new float[]{softcap}), CudaMatrixLosses.f64(zloss),
                        CudaMatrixLosses.i64(shift), CudaMatrixLosses.ptr(du)), where);
                if (grad) {
                    backward(handle, stream, op, g, alpha, v, count, d, first, dW, hCopy, true, dgh, dgW, "h", "W", where);
                }
            }
            synchronize(stream, id);
        } finally {
            setStream(handle, null);
        }
        double[] sum = owner.foldRowLosses(call, rowLoss, n, checks.ignored());
        double[] zSum = lse ? CudaMatrixLosses.storeLse(call, rowLse, n, checks) : new double[2];
        if (gh) {
            storeGradient(call, 0, dgh, hElems, "hidden gradient");
        }
        if (gw) {
            storeGradient(call, 1, dgW, wElems, "weight gradient");
        }
        return new Partial(id, call.loss().reduction(), call.loss().definition().outer(), sum[0], sum[1],
                checks.denominator(), 0, n, zSum[0], zSum[1]);
    }

    /**
     * {@code info-nce} in FAST: per block of rows, S_block = q_block·kᵀ (cublasGemmEx, float32), the row kernel's
     * max, log Σ e^{(s − m)/τ} and diagonal, and the columns' online (max, compensated sum) folded in row order;
     * a finish kernel gives each row's loss; with a gradient, a second pass recomputes S per block, writes
     * G = ∂l/∂S (the 16-bit pair or float32 over S) and runs dq_block = G·k (key slabs summed in float64)
     * and dk += Gᵀ·q_block. cuda-kernels/matrix_fast.cu has the arithmetic.
     */
    Partial infoNce(ValidatedCall call, cublasHandle handle) {
        String id = call.loss().id();
        int n = (int) call.rows();
        int d = (int) call.rowLength();
        double tau = call.loss().real(Param.TEMPERATURE);
        int symmetric = call.loss().flag(Param.SYMMETRIC) ? 1 : 0;
        Tensor q = call.slot(0);
        Operands op = Operands.of(q.dtype());
        int es = op.bytes();
        boolean gq = CudaMatrixLosses.wants(call, 0);
        boolean gk = CudaMatrixLosses.wants(call, 1);
        boolean grad = gq || gk;
        long elems = (long) n * d;

        // per row and column: row loss, row max, log S, diagonal, column max, sum, compensation, column log S,
        // the float64 diagonal
        long vec = CudaMatrixLosses.align(8L * n);
        long statsBytes = 9 * vec;
        CudaMatrixLosses.Plan plan = owner.plan(call, n, blockRowBytes(n, d, op.dtype(), gq, grad), statsBytes,
                owner.fastBudget());
        int rows = plan.rows();

        CUstream stream = call.stream() == 0 ? null : JCudaInterop.stream(call.stream());
        CUdeviceptr dq = operand(q, hidden, elems * es, "queries");
        CUdeviceptr dk = operand(call.slot(1), weight, elems * es, "keys");
        CUdeviceptr dgq = gq ? gradientTarget(call, 0, hiddenGrad, elems) : null;
        CUdeviceptr dgk = gk ? gradientTarget(call, 1, weightGrad, elems) : null;
        CUdeviceptr ws = work.ensure(statsBytes + blockBytes(rows, n, d, op, gq, grad));
        CUdeviceptr rowLoss = ws;
        CUdeviceptr rowMax = ws.withByteOffset(vec);
        CUdeviceptr rowLogS = ws.withByteOffset(2 * vec);
        CUdeviceptr diag = ws.withByteOffset(3 * vec);
        CUdeviceptr colMax = ws.withByteOffset(4 * vec);
        CUdeviceptr colSum = ws.withByteOffset(5 * vec);
        CUdeviceptr colComp = ws.withByteOffset(6 * vec);
        CUdeviceptr colLogS = ws.withByteOffset(7 * vec);
        CUdeviceptr exactDiag = ws.withByteOffset(8 * vec);
        CUdeviceptr s = ws.withByteOffset(statsBytes);
        BlockG g = layout(s, rows, n, d, op, gq, grad);

        // G = g·∂l/∂L with g = gradScale / (N under MEAN) / τ (the 1/τ of ∂L/∂S)
        double scale = call.loss().gradScale() / (CudaMatrixLosses.divides(call) ? n : 1) / tau;
        // A float16 G is written as G·2^e with |G·2^e| ≤ 2¹⁴ (|∂l/∂L| ≤ 1) and the backward GEMMs take α = 2^−e
        // (exact: a power of two): float16 ends at 65 504 and its normals at 2⁻¹⁴, so g = 1/(N·τ) itself would
        // leave the off-diagonal g·p (p ~ e^{−13} for confident pairs at τ = 0.07) subnormal or zero — 2.5e-2 of
        // the largest dq element measured at N = 1 024 (CudaMatrixFastTest). bfloat16 has float32's range.
        int e = op.dt() == DT_F16 && scale != 0 ? Math.max(-100, Math.min(100, 13 - Math.getExponent(scale))) : 0;
        float alpha = Math.scalb(1f, -e);
        double gScaled = Math.scalb(scale, e);
        int rowBlock = CudaMatrixLosses.block(n);
        int columnGrid = CudaMatrixLosses.grid(n, CudaMatrixLosses.BLOCK);
        CUfunction rowKernel = owner.fastKernel(NCE_ROWS);
        CUfunction columns = owner.fastKernel(NCE_COLUMNS);
        setStream(handle, stream);
        try {
            // s_ii = q_i·k_i in float64, used for S's diagonal (matrix_fast.cu says why)
            launch(owner.fastKernel(NCE_DIAGONAL), CudaMatrixLosses.grid(n, 1), CudaMatrixLosses.block(d), stream,
                    List.of(CudaMatrixLosses.ptr(dq), CudaMatrixLosses.ptr(dk), CudaMatrixLosses.i64(n),
                            CudaMatrixLosses.i64(d), CudaMatrixLosses.i32(op.dt()), CudaMatrixLosses.ptr(exactDiag)),
                    "FAST diagonal, " + n + " rows, D " + d);
            for (int pass = 0; pass < (grad ? 2 : 1); pass++) {
                for (int first = 0; first < n; first += rows) {
                    int count = Math.min(rows, n - first);
                    CUdeviceptr qBlock = dq.withByteOffset((long) es * first * d);
                    String where = "FAST" + (pass == 1 ? " gradient" : "") + ", rows [" + first + ", " + (first + count)
                            + ") of " + n + ", D " + d;
                    // S_block (column-major N × count, i.e. row-major count × N) = k (N × D) · q_blockᵀ
                    gemm(handle, cublasOperation.CUBLAS_OP_T, cublasOperation.CUBLAS_OP_N, n, count, d, dk,
                            op.cudaType(), d, qBlock, op.cudaType(), d, 0, s, n, "S = q·kᵀ, " + where);
                    if (pass == 0) {
                        launch(rowKernel, count, rowBlock, stream, List.of(CudaMatrixLosses.ptr(s), CudaMatrixLosses.i64(n),
                                CudaMatrixLosses.i64(first), CudaMatrixLosses.f64(tau), CudaMatrixLosses.ptr(exactDiag),
                                CudaMatrixLosses.ptr(rowMax),
                                CudaMatrixLosses.ptr(rowLogS), CudaMatrixLosses.ptr(diag)), where);
                        launch(columns, columnGrid, CudaMatrixLosses.BLOCK, stream, List.of(CudaMatrixLosses.ptr(s),
                                CudaMatrixLosses.i64(n), CudaMatrixLosses.i64(count), CudaMatrixLosses.f64(tau),
                                CudaMatrixLosses.ptr(colMax), CudaMatrixLosses.ptr(colSum), CudaMatrixLosses.ptr(colComp),
                                CudaMatrixLosses.i32(first == 0 ? 1 : 0)), "columns, " + where);
                        continue;
                    }
                    launch(owner.fastKernel(NCE_GRADIENT), count, rowBlock, stream, List.of(CudaMatrixLosses.ptr(s),
                            CudaMatrixLosses.i64(n), CudaMatrixLosses.i64(first), CudaMatrixLosses.f64(tau),
                            CudaMatrixLosses.ptr(exactDiag), CudaMatrixLosses.ptr(rowMax), CudaMatrixLosses.ptr(rowLogS),
                            CudaMatrixLosses.ptr(colMax),
                            CudaMatrixLosses.ptr(colLogS), CudaMatrixLosses.f64(gScaled), CudaMatrixLosses.i32(symmetric),
                            CudaMatrixLosses.i32(op.dt()), CudaMatrixLosses.ptr(op.half() ? g.hi() : null),
                            CudaMatrixLosses.ptr(op.half() ? g.lo() : null)), where);
                    backward(handle, stream, op, g, alpha, n, count, d, first, dk, qBlock, false, dgq, dgk, "q", "k", where);
                }
                if (pass == 0) {
                    launch(owner.fastKernel(NCE_FINISH), columnGrid, CudaMatrixLosses.BLOCK, stream,
                            List.of(CudaMatrixLosses.ptr(rowMax), CudaMatrixLosses.ptr(rowLogS), CudaMatrixLosses.ptr(diag),
                                    CudaMatrixLosses.ptr(colMax), CudaMatrixLosses.ptr(colSum),
                                    CudaMatrixLosses.ptr(colComp), CudaMatrixLosses.ptr(colLogS),
                                    CudaMatrixLosses.ptr(rowLoss), CudaMatrixLosses.i64(n), CudaMatrixLosses.f64(tau),
                                    CudaMatrixLosses.i32(symmetric)), "FAST finish, " + n + " rows");
                }
            }
            synchronize(stream, id);
        } finally {
            setStream(handle, null);
        }
        double[] sum = owner.foldRowLosses(call, rowLoss, n, null);
        if (gq) {
            storeGradient(call, 0, dgq, elems, "queries gradient");
        }
        if (gk) {
            storeGradient(call, 1, dgk, elems, "keys gradient");
        }
        return new Partial(id, call.loss().reduction(), call.loss().definition().outer(), sum[0], sum[1], n, 0, n);
    }

    /** Device bytes of a block of {@code rows} (aligned parts): {@link #blockRowBytes}'s layout, see {@link #layout}. */
    private static long blockBytes(int rows, int classes, int d, Operands op, boolean gA, boolean grad) {
        long logits = CudaMatrixLosses.align(4L * rows * classes);
        long pair = grad && op.half() ? CudaMatrixLosses.align((long) op.bytes() * rows * classes) : 0;
        long partials = gA && slabs(classes) > 1 ? CudaMatrixLosses.align(4L * slabs(classes) * rows * d) : 0;
        return logits + 2 * pair + partials;
    }

    /** A block's G and dA partials laid out after its float32 logits at {@code z} ({@link #blockBytes}). */
    private static BlockG layout(CUdeviceptr z, int rows, int classes, int d, Operands op, boolean gA, boolean grad) {
        long logits = CudaMatrixLosses.align(4L * rows * classes);
        long pair = grad && op.half() ? CudaMatrixLosses.align((long) op.bytes() * rows * classes) : 0;
        boolean pairs = grad && op.half();
        CUdeviceptr hi = pairs ? z.withByteOffset(logits) : z;
        CUdeviceptr lo = pairs ? z.withByteOffset(logits + pair) : null;
        CUdeviceptr partials = gA && slabs(classes) > 1 ? z.withByteOffset(logits + 2 * pair) : null;
        return new BlockG(hi, lo, partials);
    }

    /** The largest weight, 1 without weights. */
    private static double maxOf(Tensor weights) {
        if (weights == null) {
            return 1;
        }
        double m = 0;
        for (int i = 0; i < weights.size(); i++) {
            m = Math.max(m, weights.floats().get(i));
        }
        return m;
    }

    /** The largest |u|, 1 without an upstream gradient. */
    private static double maxAbs(float[] upstream) {
        if (upstream == null) {
            return 1;
        }
        double m = 0;
        for (float u : upstream) {
            m = Math.max(m, Math.abs(u));
        }
        return m;
    }

    /** A device-resident operand as it is; a host one uploaded once, in its dtype, into {@code buffer}. */
    private static CUdeviceptr operand(Tensor t, CudaMatrixLosses.DeviceBuffer buffer, long bytes, String what) {
        if (t.isOnDevice()) {
            return JCudaInterop.deviceptr(t.devicePointer());
        }
        CUdeviceptr p = buffer.ensure(bytes);
        Pointer host = t.dtype().isHalf() ? CudaMatrixLosses.hostPointer(t.shorts())
                : CudaMatrixLosses.hostPointer(t.floats());
        CudaMatrixLosses.upload(p, host, bytes, what);
        return p;
    }

    /** Where a float32 gradient accumulates: the caller's float32 device destination, else a device buffer. */
    private static CUdeviceptr gradientTarget(ValidatedCall call, int slot, CudaMatrixLosses.DeviceBuffer buffer,
                                              long count) {
        Tensor dest = call.deviceGradient(slot);
        if (dest != null && dest.dtype() == Tensor.DType.FLOAT32) {
            return JCudaInterop.deviceptr(dest.devicePointer());
        }
        return buffer.ensure(4 * count);
    }

    /** A float32 gradient (in src) to its destination, rounded once for a 16-bit one; nothing when it is there. */
    private void storeGradient(ValidatedCall call, int slot, CUdeviceptr src, long count, String what) {
        Tensor device = call.deviceGradient(slot);
        if (device != null) {
            if (device.dtype() == Tensor.DType.FLOAT32) {
                return;
            }
            int dt = device.dtype() == Tensor.DType.BFLOAT16 ? DT_BF16 : DT_F16;
            launch(owner.fastKernel(NARROW), CudaMatrixLosses.grid(count, CudaMatrixLosses.BLOCK), CudaMatrixLosses.BLOCK,
                    null, List.of(CudaMatrixLosses.ptr(src),
                            CudaMatrixLosses.ptr(JCudaInterop.deviceptr(device.devicePointer())),
                            CudaMatrixLosses.i64(count), CudaMatrixLosses.i32(dt)), what);
            synchronize(null, what);
            return;
        }
        Tensor host = call.gradientTensor(slot);
        float[] out = new float[(int) count];
        CudaMatrixLosses.download(Pointer.to(out), src, 4 * count, what);
        if (host.dtype() == Tensor.DType.FLOAT32) {
            host.floats().put(0, out, 0, out.length);
            return;
        }
        ShortBuffer dest = host.shorts();
        boolean bf16 = host.dtype() == Tensor.DType.BFLOAT16;
        for (int i = 0; i < out.length; i++) {
            dest.put(i, bf16 ? HalfFloats.floatToBf16(out[i]) : HalfFloats.floatToF16(out[i]));
        }
    }

    /**
     * One cublasGemmEx, float32 result and accumulation. Through {@code cublasGemmEx_new}: JCublas2's
     * {@code cublasGemmEx} accepts only the legacy cudaDataType compute values and answers
     * CUBLAS_STATUS_NOT_SUPPORTED for cuBLAS 12's {@code CUBLAS_COMPUTE_32F} without calling cuBLAS
     * (EmulatedCublasTest records it).
     */
    private void gemm(cublasHandle handle, int transa, int transb, int m, int n, int k, CUdeviceptr a,
                             int aType, int lda, CUdeviceptr b, int bType, int ldb, double beta, CUdeviceptr c, int ldc,
                             String what) {
        gemm(handle, 1f, transa, transb, m, n, k, a, aType, lda, b, bType, ldb, beta, c, ldc, what);
    }

    /** {@link #gemm} with C = alpha·A·B + beta·C. */
    private void gemm(cublasHandle handle, float alpha, int transa, int transb, int m, int n, int k, CUdeviceptr a,
                      int aType, int lda, CUdeviceptr b, int bType, int ldb, double beta, CUdeviceptr c, int ldc,
                      String what) {
        int status = JCublas2.cublasGemmEx_new(handle, transa, transb, m, n, k, Pointer.to(new float[]{alpha}), a, aType, lda,
                b, bType, ldb, Pointer.to(new float[]{(float) beta}), c, cudaDataType.CUDA_R_32F, ldc,
                cublasComputeType.CUBLAS_COMPUTE_32F, cublasGemmAlgo.CUBLAS_GEMM_DEFAULT);
        CudaMatrixLosses.check(status, "cublasGemmEx", what + ": m " + m + ", n " + n + ", k " + k + ", op "
                + CudaMatrixLosses.op(transa) + CudaMatrixLosses.op(transb) + ", A/B type " + aType + "/" + bType);
        owner.tally("cublasGemmEx (" + typeName(aType) + " x " + typeName(bType) + ", float32 accumulate)", 2L * m * n * k);
    }

    private static String typeName(int cudaType) {
        return switch (cudaType) {
            case cudaDataType.CUDA_R_16BF -> "bfloat16";
            case cudaDataType.CUDA_R_16F -> "float16";
            default -> "float32";
        };
    }

    /** The handle on the call's stream, its workspace set again (cublasSetStream resets it to cuBLAS's pool). */
    private void setStream(cublasHandle handle, CUstream stream) {
        cudaStream_t s = stream == null ? new cudaStream_t() : new cudaStream_t(stream);
        CudaMatrixLosses.check(JCublas2.cublasSetStream(handle, s), "cublasSetStream_v2",
                stream == null ? "legacy default stream" : "the caller's stream");
        owner.restoreCublasWorkspace();
    }

    private static void launch(CUfunction f, int grid, int block, CUstream stream, List<Pointer> args, String where) {
        try {
            cuLaunchKernel(f, grid, 1, 1, block, 1, 1, 0, stream, Pointer.to(args.toArray(new Pointer[0])), null);
        } catch (CudaException e) {
            throw CudaMatrixLosses.wrap(e, "cuLaunchKernel", "grid " + grid + " x block " + block + ", " + where);
        }
    }

    private static void synchronize(CUstream stream, String what) {
        try {
            cuStreamSynchronize(stream);
        } catch (CudaException e) {
            throw CudaMatrixLosses.wrap(e, what + " FAST (a GEMM or kernel of the call)", "cuStreamSynchronize");
        }
    }

    /** The device's free memory in bytes (cuMemGetInfo), or -1 when the driver does not say. */
    static long freeMemory() {
        long[] free = new long[1];
        long[] total = new long[1];
        try {
            cuMemGetInfo(free, total);
            return free[0];
        } catch (CudaException e) {
            return -1;
        }
    }

    /** Device bytes this path holds between calls. */
    long deviceBytesHeld() {
        long held = 0;
        for (CudaMatrixLosses.DeviceBuffer b : new CudaMatrixLosses.DeviceBuffer[]{hidden, weight, rowData, hiddenGrad,
                weightGrad, work}) {
            held += b.capacity;
        }
        return held;
    }

    void close() {
        for (CudaMatrixLosses.DeviceBuffer b : new CudaMatrixLosses.DeviceBuffer[]{hidden, weight, rowData, hiddenGrad,
                weightGrad, work}) {
            b.free();
        }
    }
}
