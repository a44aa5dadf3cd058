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
 * {@code linear-cross-entropy} in FAST precision on CUDA: the LM head at tensor-core speed, with the float64
 * oracle's accuracy contract kept by construction rather than by float64 arithmetic.
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
 * the block's copy of h) bytes, plus 8 bytes per row for the row losses (16 when the per-row lse is written:
 * {@code Inputs.lseInto} or a z-loss, whose term is summed from it on the host) and cuBLAS's workspace. The rows per
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
    /** LK_DT_* of cuda-kernels/include/dtype.cuh. */
    private static final int DT_F32 = 0;
    private static final int DT_BF16 = 1;
    private static final int DT_F16 = 2;

    /** Every kernel of matrix_fast.cu and the parameter count the Java side passes (checked against the PTX). */
    static final Map<String, Integer> KERNEL_PARAMS = Map.of(ROW_KERNEL, 22, NARROW, 4, SUM_SLABS, 4);

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

    static int slabs(int classes) {
        return (classes + SLAB - 1) / SLAB;
    }

    /**
     * Bytes per row of a block: float32 logits, the 16-bit G pair (16-bit operands with a gradient), the block's
     * copy of h (the weight gradient), dh's per-slab float32 partials (the hidden gradient, more than one slab).
     */
    static long rowBytes(int classes, int dim, Tensor.DType dtype, boolean gh, boolean gw) {
        int es = dtype.bytes();
        int slabs = slabs(classes);
        return 4L * classes + ((gh || gw) && es == 2 ? 2L * es * classes : 0) + (gw ? (long) es * dim * (es == 2 ? 2 : 1) : 0)
                + (gh && slabs > 1 ? 4L * slabs * dim : 0);
    }

    Partial linearCrossEntropy(ValidatedCall call, cublasHandle handle, CudaMatrixLosses.RowChecks checks) {
        String id = call.loss().id();
        int n = (int) call.rows();
        int d = (int) call.rowLength();
        int v = call.classes();
        Tensor h = call.slot(0);
        Tensor w = call.slot(1);
        Tensor.DType dtype = h.dtype();
        int dt = switch (dtype) {
            case BFLOAT16 -> DT_BF16;
            case FLOAT16 -> DT_F16;
            default -> DT_F32;
        };
        int cudaType = switch (dtype) {
            case BFLOAT16 -> cudaDataType.CUDA_R_16BF;
            case FLOAT16 -> cudaDataType.CUDA_R_16F;
            default -> cudaDataType.CUDA_R_32F;
        };
        boolean half = dt != DT_F32;
        int es = dtype.bytes();
        boolean gh = CudaMatrixLosses.wants(call, 0);
        boolean gw = CudaMatrixLosses.wants(call, 1);
        boolean grad = gh || gw;
        long hElems = (long) n * d;
        long wElems = (long) v * d;

        boolean lse = CudaMatrixLosses.wantsLse(call);
        long statBytes = CudaMatrixLosses.align((lse ? 16L : 8L) * n);
        CudaMatrixLosses.Plan plan = owner.plan(call, n, rowBytes(v, d, dtype, gh, gw), (lse ? 16L : 8L) * n,
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

        long logitBytes = CudaMatrixLosses.align(4L * rows * v);
        long pairBytes = grad && half ? CudaMatrixLosses.align((long) es * rows * v) : 0;
        long hCopyBytes = gw ? CudaMatrixLosses.align((long) es * rows * d * (half ? 2 : 1)) : 0;
        int slabs = slabs(v);
        boolean split = gh && slabs > 1;
        long partialBytes = split ? CudaMatrixLosses.align(4L * slabs * rows * d) : 0;
        CUdeviceptr ws = work.ensure(statBytes + logitBytes + 2 * pairBytes + hCopyBytes + partialBytes);
        CUdeviceptr rowLoss = ws;
        CUdeviceptr rowLse = lse ? ws.withByteOffset(8L * n) : null;
        CUdeviceptr z = ws.withByteOffset(statBytes);
        CUdeviceptr gHi = half && grad ? z.withByteOffset(logitBytes) : z;
        CUdeviceptr hCopy = gw ? z.withByteOffset(logitBytes + 2 * pairBytes) : null;
        CUdeviceptr partials = split ? z.withByteOffset(logitBytes + 2 * pairBytes + hCopyBytes) : null;
        CUfunction sumSlabs = split ? owner.fastKernel(SUM_SLABS) : null;
        int gBytes = half ? es : 4;

        int flags = (grad ? 1 : 0) | (checks.hasIgnore() ? 2 : 0) | (gw ? 4 : 0);
        double eps = call.loss().real(Param.LABEL_SMOOTHING);
        float softcap = (float) call.loss().real(Param.SOFTCAP);
        double zloss = call.loss().real(Param.Z_LOSS);
        long shift = call.loss().get(Param.SHIFT);
        int block = CudaMatrixLosses.block(v);
        CUfunction rowKernel = owner.fastKernel(ROW_KERNEL);
        int gType = half ? cudaType : cudaDataType.CUDA_R_32F;
        setStream(handle, stream);
        try {
            for (int first = 0; first < n; first += rows) {
                int count = Math.min(rows, n - first);
                CUdeviceptr hBlock = dh.withByteOffset((long) es * first * d);
                String where = "FAST, rows [" + first + ", " + (first + count) + ") of " + n + ", V " + v + ", D " + d;
                CUdeviceptr gLo = half && grad ? gHi.withByteOffset((long) es * count * v) : null;
                // u (column-major V × count, i.e. row-major count × V) = W (V × D) · h_blockᵀ
                gemm(handle, cublasOperation.CUBLAS_OP_T, cublasOperation.CUBLAS_OP_N, v, count, d, dW, cudaType, d,
                        hBlock, cudaType, d, 0, z, v, "logits, " + where);
                launch(rowKernel, count, block, stream, List.of(CudaMatrixLosses.ptr(z), CudaMatrixLosses.i64(v),
                        CudaMatrixLosses.ptr(int64 ? null : dy), CudaMatrixLosses.ptr(int64 ? dy : null),
                        CudaMatrixLosses.ptr(ds), CudaMatrixLosses.ptr(dh), CudaMatrixLosses.ptr(hCopy),
                        CudaMatrixLosses.i64(d), CudaMatrixLosses.i32(dt), CudaMatrixLosses.ptr(half ? gHi : null),
                        CudaMatrixLosses.ptr(half ? gLo : null), CudaMatrixLosses.ptr(rowLoss),
                        CudaMatrixLosses.ptr(rowLse), CudaMatrixLosses.i64(first), CudaMatrixLosses.f64(checks.scale()),
                        CudaMatrixLosses.f64(eps), CudaMatrixLosses.i32(checks.ignoreIndex()),
                        CudaMatrixLosses.i32(flags), Pointer.to(new float[]{softcap}), CudaMatrixLosses.f64(zloss),
                        CudaMatrixLosses.i64(shift), CudaMatrixLosses.ptr(du)), where);
                int parts = half ? 2 : 1;
                for (int part = 0; part < parts && grad; part++) {
                    CUdeviceptr g = part == 0 ? gHi : gLo;
                    String which = half ? (part == 0 ? " (G hi)" : " (G lo)") : "";
                    if (gh && !split) {
                        // dh_block (column-major D × count) = Wᵀ (D × V) · Gᵀ (V × count)
                        gemm(handle, cublasOperation.CUBLAS_OP_N, cublasOperation.CUBLAS_OP_N, d, count, v, dW, cudaType,
                                d, g, gType, v, part, dgh.withByteOffset(4L * first * d), d, "dh = G·W" + which + ", " + where);
                    }
                    for (int slab = 0; split && slab < slabs; slab++) {
                        // partial_slab (D × count) = W_slabᵀ (D × k) · G_slabᵀ (k × count), classes [v0, v0 + k)
                        int v0 = slab * SLAB;
                        int k = Math.min(SLAB, v - v0);
                        gemm(handle, cublasOperation.CUBLAS_OP_N, cublasOperation.CUBLAS_OP_N, d, count, k,
                                dW.withByteOffset((long) es * v0 * d), cudaType, d, g.withByteOffset((long) gBytes * v0),
                                gType, v, part, partials.withByteOffset(4L * slab * count * d), d,
                                "dh slab " + slab + " of " + slabs + which + ", " + where);
                    }
                }
                if (gw) {
                    // dWᵀ (column-major D × V) += h_blockᵀ (D × count) · G (count × V); for 16-bit operands one GEMM
                    // over the pair: [h; h]ᵀ (D × 2·count) · [G_hi; G_lo] (2·count × V), so dW is read and written
                    // once per block
                    gemm(handle, cublasOperation.CUBLAS_OP_N, cublasOperation.CUBLAS_OP_T, d, v, half ? 2 * count : count,
                            hCopy, cudaType, d, gHi, gType, v, first == 0 ? 0 : 1, dgW, d, "dW += Gᵀ·h, " + where);
                }
                if (split) {
                    long elems = (long) count * d;
                    launch(sumSlabs, CudaMatrixLosses.grid(elems, CudaMatrixLosses.BLOCK), CudaMatrixLosses.BLOCK, stream,
                            List.of(CudaMatrixLosses.ptr(partials), CudaMatrixLosses.i64(slabs), CudaMatrixLosses.i64(elems),
                                    CudaMatrixLosses.ptr(dgh.withByteOffset(4L * first * d))), "dh slabs, " + where);
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
        int status = JCublas2.cublasGemmEx_new(handle, transa, transb, m, n, k, Pointer.to(new float[]{1f}), a, aType, lda,
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
