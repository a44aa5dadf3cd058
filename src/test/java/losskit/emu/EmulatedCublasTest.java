package losskit.emu;

import static jcuda.driver.JCudaDriver.cuCtxDestroy;
import static jcuda.driver.JCudaDriver.cuCtxSetCurrent;
import static jcuda.driver.JCudaDriver.cuMemAlloc;
import static jcuda.driver.JCudaDriver.cuMemFree;
import static jcuda.driver.JCudaDriver.cuMemcpyDtoH;
import static jcuda.driver.JCudaDriver.cuMemcpyHtoD;
import static jcuda.jcublas.cublasOperation.CUBLAS_OP_C;
import static jcuda.jcublas.cublasOperation.CUBLAS_OP_N;
import static jcuda.jcublas.cublasOperation.CUBLAS_OP_T;
import static jcuda.jcublas.cublasStatus.CUBLAS_STATUS_EXECUTION_FAILED;
import static jcuda.jcublas.cublasStatus.CUBLAS_STATUS_INVALID_VALUE;
import static jcuda.jcublas.cublasStatus.CUBLAS_STATUS_NOT_INITIALIZED;
import static jcuda.jcublas.cublasStatus.CUBLAS_STATUS_NOT_SUPPORTED;
import static jcuda.jcublas.cublasStatus.CUBLAS_STATUS_SUCCESS;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeFalse;

import java.nio.file.Files;
import java.util.Arrays;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import jcuda.Pointer;
import jcuda.cudaDataType;
import jcuda.driver.CUcontext;
import jcuda.driver.CUdeviceptr;
import jcuda.jcublas.JCublas2;
import jcuda.jcublas.cublasComputeType;
import jcuda.jcublas.cublasGemmAlgo;
import jcuda.jcublas.cublasHandle;
import jcuda.jcublas.cublasMath;
import jcuda.jcublas.cublasPointerMode;
import jcuda.jcublas.cublasStatus;
import jcuda.runtime.cudaStream_t;
import losskit.api.HalfFloats;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/**
 * The emulated cuBLAS (target/emu/libcublas.so.12, cuda-kernels/emu/cublas) through JCublas2, as the matrix
 * losses call it: GEMM semantics against the definition (column-major, every transpose, α and β, β = 0
 * never reading C), argument errors, operands past their allocation, handles and modes, and the generated
 * stubs for everything else JCublas2 imports; cublasGemmEx (bf16 / fp16 / fp32 operands) against a float64
 * oracle and, bit for bit, against a Java replay of its documented accumulation order.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class EmulatedCublasTest {
    private CUcontext context;
    private cublasHandle handle;
    private final List<CUdeviceptr> allocations = new ArrayList<>();

    @BeforeAll
    void open() {
        EmuSupport.requireEmulator();
        assumeFalse(Files.exists(EmuSupport.DIR.resolve("CUBLAS_UNAVAILABLE")) && System.getenv("CI") == null,
                () -> "emulated cuBLAS not built: " + EmuSupport.read(EmuSupport.DIR.resolve("CUBLAS_UNAVAILABLE")).trim());
        JCublas2.initialize();
        context = EmuSupport.newContext();
        handle = new cublasHandle();
        assertEquals(CUBLAS_STATUS_SUCCESS, JCublas2.cublasCreate(handle));
    }

    @AfterAll
    void close() {
        if (context == null) {
            return;
        }
        cuCtxSetCurrent(context);
        JCublas2.cublasDestroy(handle);
        for (CUdeviceptr p : allocations) {
            cuMemFree(p);
        }
        cuCtxDestroy(context);
    }

    private CUdeviceptr alloc(long bytes) {
        cuCtxSetCurrent(context);
        CUdeviceptr p = new CUdeviceptr();
        cuMemAlloc(p, bytes);
        allocations.add(p);
        return p;
    }

    private CUdeviceptr upload(float[] x) {
        CUdeviceptr p = alloc(4L * x.length);
        cuMemcpyHtoD(p, Pointer.to(x), 4L * x.length);
        return p;
    }

    private CUdeviceptr upload(double[] x) {
        CUdeviceptr p = alloc(8L * x.length);
        cuMemcpyHtoD(p, Pointer.to(x), 8L * x.length);
        return p;
    }

    private static float[] floats(CUdeviceptr p, int n) {
        float[] x = new float[n];
        cuMemcpyDtoH(Pointer.to(x), p, 4L * n);
        return x;
    }

    private static double[] doubles(CUdeviceptr p, int n) {
        double[] x = new double[n];
        cuMemcpyDtoH(Pointer.to(x), p, 8L * n);
        return x;
    }

    private static double[] random(SplittableRandom r, int n) {
        double[] x = new double[n];
        for (int i = 0; i < n; i++) {
            x[i] = Math.rint((r.nextDouble() - 0.5) * 64) / 16; // exact in float32, exact products and sums
        }
        return x;
    }

    /** C = α op(A) op(B) + β C, column-major, by the definition (β = 0: C is not read). */
    private static double[] reference(int ta, int tb, int m, int n, int k, double alpha, double[] a, int lda, double[] b,
                                      int ldb, double beta, double[] c, int ldc) {
        double[] out = c.clone();
        for (int j = 0; j < n; j++) {
            for (int i = 0; i < m; i++) {
                double s = 0;
                for (int p = 0; p < k; p++) {
                    double x = ta == CUBLAS_OP_N ? a[i + p * lda] : a[p + i * lda];
                    double y = tb == CUBLAS_OP_N ? b[p + j * ldb] : b[j + p * ldb];
                    s += x * y;
                }
                out[i + j * ldc] = alpha * s + (beta == 0 ? 0 : beta * c[i + j * ldc]);
            }
        }
        return out;
    }

    private static float[] toFloat(double[] x) {
        float[] f = new float[x.length];
        for (int i = 0; i < x.length; i++) {
            f[i] = (float) x[i];
        }
        return f;
    }

    @Test
    void gemmFollowsTheDefinitionForEveryTranspose() {
        SplittableRandom r = new SplittableRandom(3);
        int m = 5;
        int n = 3;
        int k = 4;
        int[] ops = {CUBLAS_OP_N, CUBLAS_OP_T, CUBLAS_OP_C};
        for (int ta : ops) {
            for (int tb : ops) {
                int lda = (ta == CUBLAS_OP_N ? m : k) + 2;
                int ldb = (tb == CUBLAS_OP_N ? k : n) + 1;
                int ldc = m + 3;
                double[] a = random(r, lda * (ta == CUBLAS_OP_N ? k : m));
                double[] b = random(r, ldb * (tb == CUBLAS_OP_N ? n : k));
                double[] c = random(r, ldc * n);
                double[] expected = reference(ta, tb, m, n, k, 1.5, a, lda, b, ldb, -0.5, c, ldc);
                String what = "op " + ta + "/" + tb;

                CUdeviceptr dc = upload(toFloat(c));
                assertEquals(CUBLAS_STATUS_SUCCESS, JCublas2.cublasSgemm(handle, ta, tb, m, n, k,
                        Pointer.to(new float[]{1.5f}), upload(toFloat(a)), lda, upload(toFloat(b)), ldb,
                        Pointer.to(new float[]{-0.5f}), dc, ldc), what);
                float[] sc = floats(dc, c.length);
                CUdeviceptr dd = upload(c);
                assertEquals(CUBLAS_STATUS_SUCCESS, JCublas2.cublasDgemm(handle, ta, tb, m, n, k,
                        Pointer.to(new double[]{1.5}), upload(a), lda, upload(b), ldb, Pointer.to(new double[]{-0.5}), dd, ldc),
                        what);
                double[] dc64 = doubles(dd, c.length);
                for (int i = 0; i < c.length; i++) {
                    // the values are multiples of 1/64 small enough for every product and sum to be exact,
                    // and the rows between m and ldc must be left alone
                    assertEquals(expected[i], sc[i], 0.0, what + " sgemm C[" + i + "]");
                    assertEquals(expected[i], dc64[i], 0.0, what + " dgemm C[" + i + "]");
                }
            }
        }
    }

    @Test
    void betaZeroNeverReadsC() {
        float[] nan = new float[6];
        java.util.Arrays.fill(nan, Float.NaN);
        CUdeviceptr c = upload(nan);
        CUdeviceptr a = upload(new float[]{1, 2, 3, 4, 5, 6});
        CUdeviceptr b = upload(new float[]{1, 1, 1});
        assertEquals(CUBLAS_STATUS_SUCCESS, JCublas2.cublasSgemm(handle, CUBLAS_OP_N, CUBLAS_OP_N, 2, 1, 3,
                Pointer.to(new float[]{1}), a, 2, b, 3, Pointer.to(new float[]{0}), c, 2));
        float[] out = floats(c, 2);
        assertEquals(9f, out[0]);
        assertEquals(12f, out[1]);
        // k = 0: C = β C only; α = 0 and β = 0: C = 0, whatever A holds
        CUdeviceptr c2 = upload(new float[]{1, 2, 3, 4});
        assertEquals(CUBLAS_STATUS_SUCCESS, JCublas2.cublasSgemm(handle, CUBLAS_OP_N, CUBLAS_OP_N, 2, 2, 0,
                Pointer.to(new float[]{1}), a, 2, b, 1, Pointer.to(new float[]{2}), c2, 2));
        assertEquals("[2.0, 4.0, 6.0, 8.0]", java.util.Arrays.toString(floats(c2, 4)));
        CUdeviceptr c3 = upload(nan);
        assertEquals(CUBLAS_STATUS_SUCCESS, JCublas2.cublasSgemm(handle, CUBLAS_OP_N, CUBLAS_OP_N, 2, 3, 1,
                Pointer.to(new float[]{0}), upload(nan), 2, upload(nan), 1, Pointer.to(new float[]{0}), c3, 2));
        assertEquals("[0.0, 0.0, 0.0, 0.0, 0.0, 0.0]", java.util.Arrays.toString(floats(c3, 6)));
    }

    @Test
    void badArgumentsAreInvalidValue() {
        CUdeviceptr x = alloc(1024);
        Pointer one = Pointer.to(new float[]{1});
        int[][] cases = {
            {CUBLAS_OP_N, CUBLAS_OP_N, 4, 2, 3, 3, 3, 4},  // lda < m
            {CUBLAS_OP_N, CUBLAS_OP_N, 4, 2, 3, 4, 2, 4},  // ldb < k
            {CUBLAS_OP_N, CUBLAS_OP_N, 4, 2, 3, 4, 3, 3},  // ldc < m
            {CUBLAS_OP_T, CUBLAS_OP_N, 4, 2, 3, 2, 3, 4},  // lda < k for op(A) = Aᵀ
            {CUBLAS_OP_N, CUBLAS_OP_N, -1, 2, 3, 4, 3, 4}, // m < 0
            {7, CUBLAS_OP_N, 4, 2, 3, 4, 3, 4},            // no such operation
        };
        for (int[] c : cases) {
            assertEquals(CUBLAS_STATUS_INVALID_VALUE, JCublas2.cublasSgemm(handle, c[0], c[1], c[2], c[3], c[4], one, x,
                    c[5], x, c[6], one, x, c[7]), java.util.Arrays.toString(c));
        }
    }

    @Test
    void anOperandPastItsAllocationFailsTheCall() {
        Pointer one = Pointer.to(new float[]{1});
        CUdeviceptr a = alloc(4L * 4 * 3);
        CUdeviceptr b = alloc(4L * 3 * 2 - 4);   // one float short
        CUdeviceptr c = alloc(4L * 4 * 2);
        assertEquals(CUBLAS_STATUS_EXECUTION_FAILED, JCublas2.cublasSgemm(handle, CUBLAS_OP_N, CUBLAS_OP_N, 4, 2, 3, one,
                a, 4, b, 3, one, c, 4));
        CUdeviceptr b2 = alloc(4L * 3 * 2);
        assertEquals(CUBLAS_STATUS_EXECUTION_FAILED, JCublas2.cublasSgemm(handle, CUBLAS_OP_N, CUBLAS_OP_N, 4, 2, 3, one,
                a, 4, b2, 3, one, c.withByteOffset(4), 4), "C shifted by one float");
        assertEquals(CUBLAS_STATUS_SUCCESS, JCublas2.cublasSgemm(handle, CUBLAS_OP_N, CUBLAS_OP_N, 4, 2, 3, one,
                a, 4, b2, 3, Pointer.to(new float[]{0}), c, 4));
    }

    @Test
    void handlesModesAndWorkspace() {
        int[] value = new int[1];
        assertEquals(CUBLAS_STATUS_SUCCESS, JCublas2.cublasGetVersion(handle, value));
        assertEquals(120600, value[0]);
        assertEquals(CUBLAS_STATUS_INVALID_VALUE, JCublas2.cublasSetPointerMode(handle, 7));
        assertEquals(CUBLAS_STATUS_SUCCESS, JCublas2.cublasSetMathMode(handle, cublasMath.CUBLAS_PEDANTIC_MATH));
        assertEquals(CUBLAS_STATUS_SUCCESS, JCublas2.cublasGetMathMode(handle, value));
        assertEquals(cublasMath.CUBLAS_PEDANTIC_MATH, value[0]);
        assertEquals(CUBLAS_STATUS_SUCCESS, JCublas2.cublasSetMathMode(handle, cublasMath.CUBLAS_DEFAULT_MATH));
        CUdeviceptr ws = alloc(1 << 16);
        assertEquals(CUBLAS_STATUS_INVALID_VALUE, JCublas2.cublasSetWorkspace(handle, ws.withByteOffset(4), 1024),
                "not 256-byte aligned");
        assertEquals(CUBLAS_STATUS_INVALID_VALUE, JCublas2.cublasSetWorkspace(handle, ws, 1 << 17), "past the allocation");
        assertEquals(CUBLAS_STATUS_SUCCESS, JCublas2.cublasSetWorkspace(handle, ws, 1 << 16));
        assertEquals(CUBLAS_STATUS_SUCCESS, JCublas2.cublasSetStream(handle, new cudaStream_t()));

        // α and β from device memory
        assertEquals(CUBLAS_STATUS_SUCCESS, JCublas2.cublasSetPointerMode(handle, cublasPointerMode.CUBLAS_POINTER_MODE_DEVICE));
        try {
            CUdeviceptr c = upload(new float[]{10});
            assertEquals(CUBLAS_STATUS_SUCCESS, JCublas2.cublasSgemm(handle, CUBLAS_OP_N, CUBLAS_OP_N, 1, 1, 1,
                    upload(new float[]{2}), upload(new float[]{3}), 1, upload(new float[]{4}), 1, upload(new float[]{0.5f}), c, 1));
            assertEquals(29f, floats(c, 1)[0]);
        } finally {
            JCublas2.cublasSetPointerMode(handle, cublasPointerMode.CUBLAS_POINTER_MODE_HOST);
        }

        cublasHandle gone = new cublasHandle();
        assertEquals(CUBLAS_STATUS_SUCCESS, JCublas2.cublasCreate(gone));
        assertEquals(CUBLAS_STATUS_SUCCESS, JCublas2.cublasDestroy(gone));
        assertEquals(CUBLAS_STATUS_NOT_INITIALIZED, JCublas2.cublasGetVersion(gone, value), "destroyed handle");
    }

    @Test
    void everyOtherImportIsAStubThatSaysNotSupported() {
        CUdeviceptr x = alloc(1024);
        Pointer one = Pointer.to(new float[]{1});
        int status = JCublas2.cublasSgeam(handle, CUBLAS_OP_N, CUBLAS_OP_N, 2, 2, one, x, 2, one, x, 2, x, 2);
        assertEquals(CUBLAS_STATUS_NOT_SUPPORTED, status, cublasStatus.stringFor(status));
        String imports = EmuSupport.read(EmuSupport.DIR.resolve("gen/jcublas2-imports.txt"));
        assertTrue(imports.lines().count() > 400 && imports.contains("cublasSgeam\n"), "the stubs come from JCublas2's imports");
    }

    // ---- cublasGemmEx ---------------------------------------------------------------------------------
    // The emulated cublasGemmEx (cuda-kernels/emu/cublas/cublas.cpp) documents its arithmetic: operands widened
    // (16-bit) or rounded (FAST_TF32: to TF32, ties away; FAST_16BF/16F: to that type), one fp32 accumulator per
    // output, k ascending, acc = acc + a*b (fp32 operands: fma), then r = alpha*acc, r = r + beta*C (beta = 0:
    // C not read), stored as Ctype (16-bit: nearest even). replay() below is that order in Java.

    private static final int R_16BF = cudaDataType.CUDA_R_16BF;
    private static final int R_16F = cudaDataType.CUDA_R_16F;
    private static final int R_32F = cudaDataType.CUDA_R_32F;
    private static final int R_64F = cudaDataType.CUDA_R_64F;
    private static final int ALGO = cublasGemmAlgo.CUBLAS_GEMM_DEFAULT_TENSOR_OP;

    private CUdeviceptr upload(short[] x) {
        CUdeviceptr p = alloc(2L * x.length);
        cuMemcpyHtoD(p, Pointer.to(x), 2L * x.length);
        return p;
    }

    private static short[] shorts(CUdeviceptr p, int n) {
        short[] x = new short[n];
        cuMemcpyDtoH(Pointer.to(x), p, 2L * n);
        return x;
    }

    /** Random 16-bit patterns of values in [-2, 2) (bf16 or fp16, rounded from float). */
    private static short[] random16(SplittableRandom r, int n, boolean bf16) {
        short[] x = new short[n];
        for (int i = 0; i < n; i++) {
            float f = (float) ((r.nextDouble() - 0.5) * 4);
            x[i] = bf16 ? HalfFloats.floatToBf16(f) : HalfFloats.floatToF16(f);
        }
        return x;
    }

    private static float[] widen(short[] x, boolean bf16) {
        float[] f = new float[x.length];
        HalfFloats.widen(x, 0, f, 0, x.length, bf16);
        return f;
    }

    /** TF32 as the emulator rounds it: 10 mantissa bits, nearest, ties away from zero (cvt.rna.tf32.f32). */
    private static float tf32(float f) {
        int x = Float.floatToRawIntBits(f);
        return (x & 0x7F80_0000) == 0x7F80_0000 ? f : Float.intBitsToFloat((x + 0x1000) & ~0x1FFF);
    }

    private static float opA(int ta, float[] a, int lda, int i, int p) {
        return ta == CUBLAS_OP_N ? a[i + p * lda] : a[p + i * lda];
    }

    private static float opB(int tb, float[] b, int ldb, int p, int j) {
        return tb == CUBLAS_OP_N ? b[p + j * ldb] : b[j + p * ldb];
    }

    /** The documented order in float: acc = acc + a*b (fma when {@code fma}), k ascending; α, then β C. */
    private static float[] replay(int ta, int tb, int m, int n, int k, float alpha, float[] a, int lda, float[] b,
                                  int ldb, float beta, float[] c, int ldc, boolean fma) {
        float[] out = c.clone();
        for (int j = 0; j < n; j++) {
            for (int i = 0; i < m; i++) {
                float acc = 0f;
                for (int p = 0; p < k; p++) {
                    float x = opA(ta, a, lda, i, p);
                    float y = opB(tb, b, ldb, p, j);
                    acc = fma ? Math.fma(x, y, acc) : acc + x * y;
                }
                float r = alpha * acc;
                if (beta != 0f) {
                    r = r + beta * c[i + j * ldc];
                }
                out[i + j * ldc] = r;
            }
        }
        return out;
    }

    private static void assertSameBits(float[] expected, float[] actual, String what) {
        for (int i = 0; i < expected.length; i++) {
            if (Float.floatToRawIntBits(expected[i]) != Float.floatToRawIntBits(actual[i])) {
                throw new AssertionError(what + ": first difference at [" + i + "]: expected " + expected[i] + " ("
                        + Integer.toHexString(Float.floatToRawIntBits(expected[i])) + "), got " + actual[i] + " ("
                        + Integer.toHexString(Float.floatToRawIntBits(actual[i])) + ")");
            }
        }
    }

    @Test
    void gemmExOn16BitOperandsMatchesAFloat64OracleForEveryTranspose() {
        SplittableRandom r = new SplittableRandom(17);
        int m = 37;
        int n = 13;
        int k = 70;
        int[] ops = {CUBLAS_OP_N, CUBLAS_OP_T};
        for (boolean bf16 : new boolean[]{true, false}) {
            int type = bf16 ? R_16BF : R_16F;
            for (int ta : ops) {
                for (int tb : ops) {
                    int lda = (ta == CUBLAS_OP_N ? m : k) + 3;
                    int ldb = (tb == CUBLAS_OP_N ? k : n) + 2;
                    int ldc = m + 5;
                    short[] a16 = random16(r, lda * (ta == CUBLAS_OP_N ? k : m), bf16);
                    short[] b16 = random16(r, ldb * (tb == CUBLAS_OP_N ? n : k), bf16);
                    float[] a = widen(a16, bf16);
                    float[] b = widen(b16, bf16);
                    float[] c = new float[ldc * n];
                    for (int i = 0; i < c.length; i++) {
                        c[i] = (float) (r.nextDouble() - 0.5);
                    }
                    CUdeviceptr da = upload(a16);
                    CUdeviceptr db = upload(b16);
                    for (float beta : new float[]{0f, 1f}) {
                        float alpha = 1.5f;
                        float[] c0 = beta == 0f ? new float[c.length] : c;
                        if (beta == 0f) {
                            Arrays.fill(c0, Float.NaN); // β = 0: C is never read
                        }
                        CUdeviceptr dc = upload(c0);
                        String what = (bf16 ? "bf16" : "fp16") + " op " + ta + "/" + tb + " beta " + beta;
                        // the legacy computeType CUDA_R_32F: JCublas2 migrates it to CUBLAS_COMPUTE_32F
                        assertEquals(CUBLAS_STATUS_SUCCESS, JCublas2.cublasGemmEx(handle, ta, tb, m, n, k,
                                Pointer.to(new float[]{alpha}), da, type, lda, db, type, ldb, Pointer.to(new float[]{beta}),
                                dc, R_32F, ldc, R_32F, ALGO), what);
                        float[] got = floats(dc, c0.length);
                        for (int j = 0; j < n; j++) {
                            for (int i = 0; i < ldc; i++) {
                                int at = i + j * ldc;
                                if (i >= m) {
                                    assertEquals(Float.floatToRawIntBits(c0[at]), Float.floatToRawIntBits(got[at]),
                                            what + ": C[" + i + ", " + j + "] past m must be left alone");
                                    continue;
                                }
                                double s = 0;
                                double abs = 0;
                                for (int p = 0; p < k; p++) {
                                    double t = (double) opA(ta, a, lda, i, p) * opB(tb, b, ldb, p, j);
                                    s += t;
                                    abs += Math.abs(t);
                                }
                                double cij = beta == 0f ? 0 : c0[at];
                                double exact = alpha * s + beta * cij;
                                // each product is exact in fp32; k fp32 additions err by at most k·2⁻²⁴·Σ|aᵢbᵢ|,
                                // then α·acc and + β·C round once each
                                double tol = (k + 2) * 0x1p-24 * (alpha * abs + Math.abs(beta * cij));
                                assertEquals(exact, got[at], tol, what + ": C[" + i + ", " + j + "]");
                            }
                        }
                    }
                }
            }
        }
    }

    @Test
    void gemmExIsDeterministicAndFollowsItsDocumentedOrderBitForBit() {
        SplittableRandom r = new SplittableRandom(29);
        int m = 7;
        int n = 5;
        int k = 33;
        short[] a16 = random16(r, m * k, true);
        short[] b16 = random16(r, k * n, true);
        float[] c = new float[m * n];
        for (int i = 0; i < c.length; i++) {
            c[i] = (float) (r.nextDouble() - 0.5);
        }
        float[] expected = replay(CUBLAS_OP_N, CUBLAS_OP_N, m, n, k, 0.75f, widen(a16, true), m, widen(b16, true), k,
                -1.25f, c, m, false);
        CUdeviceptr da = upload(a16);
        CUdeviceptr db = upload(b16);
        for (int run = 0; run < 2; run++) {
            CUdeviceptr dc = upload(c);
            assertEquals(CUBLAS_STATUS_SUCCESS, JCublas2.cublasGemmEx_new(handle, CUBLAS_OP_N, CUBLAS_OP_N, m, n, k,
                    Pointer.to(new float[]{0.75f}), da, R_16BF, m, db, R_16BF, k, Pointer.to(new float[]{-1.25f}), dc,
                    R_32F, m, cublasComputeType.CUBLAS_COMPUTE_32F, ALGO));
            assertSameBits(expected, floats(dc, c.length), "bf16 replay, run " + run);
        }

        // acc + a*b, never fma(a, b, acc): with a·b = 1.25·2⁻¹⁴⁹ (an fp32 subnormal, rounded to 2⁻¹⁴⁹) after
        // acc = 2⁻¹²⁵ (ulp 2⁻¹⁴⁸), multiply-then-add is a tie that stays at 2⁻¹²⁵; fma would round up
        short[] ta16 = {HalfFloats.floatToBf16(0x1p-60f), HalfFloats.floatToBf16(1.25f * 0x1p-75f)};
        short[] tb16 = {HalfFloats.floatToBf16(0x1p-65f), HalfFloats.floatToBf16(0x1p-74f)};
        float[] tiny = replay(CUBLAS_OP_N, CUBLAS_OP_N, 1, 1, 2, 1f, widen(ta16, true), 1, widen(tb16, true), 2, 0f,
                new float[1], 1, false);
        assertEquals(0x1p-125f, tiny[0]);
        assertEquals(0x1p-125f + 0x1p-148f, Math.fma(widen(ta16, true)[1], widen(tb16, true)[1], 0x1p-125f));
        CUdeviceptr dtiny = upload(new float[1]);
        assertEquals(CUBLAS_STATUS_SUCCESS, JCublas2.cublasGemmEx_new(handle, CUBLAS_OP_N, CUBLAS_OP_N, 1, 1, 2,
                Pointer.to(new float[]{1f}), upload(ta16), R_16BF, 1, upload(tb16), R_16BF, 2, Pointer.to(new float[]{0f}),
                dtiny, R_32F, 1, cublasComputeType.CUBLAS_COMPUTE_32F, ALGO));
        assertSameBits(tiny, floats(dtiny, 1), "multiply, then add (no contraction)");

        // large enough to run on several threads (and every kernel tail: 1003 = 62·16 + 11 rows, 20 = 3·6 + 2
        // columns): still the same bits, the same on the second call
        m = 1003;
        n = 20;
        k = 300;
        short[] big16 = random16(r, k * m, false);
        short[] bb16 = random16(r, n * k, false);
        float[] c2 = new float[m * n];
        expected = replay(CUBLAS_OP_T, CUBLAS_OP_T, m, n, k, 1f, widen(big16, false), k, widen(bb16, false), n, 0f, c2, m,
                false);
        da = upload(big16);
        db = upload(bb16);
        for (int run = 0; run < 2; run++) {
            CUdeviceptr dc = upload(c2);
            assertEquals(CUBLAS_STATUS_SUCCESS, JCublas2.cublasGemmEx_new(handle, CUBLAS_OP_T, CUBLAS_OP_T, m, n, k,
                    Pointer.to(new float[]{1f}), da, R_16F, k, db, R_16F, n, Pointer.to(new float[]{0f}), dc, R_32F, m,
                    cublasComputeType.CUBLAS_COMPUTE_32F_PEDANTIC, cublasGemmAlgo.CUBLAS_GEMM_ALGO5));
            assertSameBits(expected, floats(dc, c2.length), "fp16 1003x20x300 replay, run " + run);
        }

        // fp32 operands with COMPUTE_32F: fma per step, as the GPU's FFMA
        m = 19;
        n = 7;
        k = 45;
        float[] a = new float[m * k];
        float[] b = new float[k * n];
        for (int i = 0; i < a.length; i++) {
            a[i] = (float) (r.nextDouble() - 0.5);
        }
        for (int i = 0; i < b.length; i++) {
            b[i] = (float) (r.nextDouble() - 0.5);
        }
        float[] c3 = new float[m * n];
        expected = replay(CUBLAS_OP_N, CUBLAS_OP_N, m, n, k, 1f, a, m, b, k, 0f, c3, m, true);
        CUdeviceptr dc = upload(c3);
        assertEquals(CUBLAS_STATUS_SUCCESS, JCublas2.cublasGemmEx(handle, CUBLAS_OP_N, CUBLAS_OP_N, m, n, k,
                Pointer.to(new float[]{1f}), upload(a), R_32F, m, upload(b), R_32F, k, Pointer.to(new float[]{0f}), dc,
                R_32F, m, R_32F, cublasGemmAlgo.CUBLAS_GEMM_DEFAULT));
        assertSameBits(expected, floats(dc, c3.length), "fp32 fma replay");
    }

    @Test
    void gemmExFastModesRoundTheFp32Operands() {
        // a = (1 + 2⁻²⁰, 1 + 2⁻¹¹, 3 + 2⁻⁹), b = 1: fp32 keeps every bit; TF32 (10 mantissa bits, ties away) gives
        // 1, 1 + 2⁻¹⁰ (2⁻¹¹ is half an ulp: the tie goes away from zero) and 3 + 2⁻⁹ (2⁻⁹ is the ulp in [2, 4));
        // bf16 (7 bits, nearest even) 1, 1, 3; fp16 (10 bits, nearest even) 1, 1 (the tie goes to even), 3 + 2⁻⁹
        float[] a = {1f + 0x1p-20f, 1f + 0x1p-11f, 3f + 0x1p-9f};
        CUdeviceptr da = upload(a);
        CUdeviceptr db = upload(new float[]{1f});
        int[] computes = {cublasComputeType.CUBLAS_COMPUTE_32F, cublasComputeType.CUBLAS_COMPUTE_32F_FAST_TF32,
            cublasComputeType.CUBLAS_COMPUTE_32F_FAST_16BF, cublasComputeType.CUBLAS_COMPUTE_32F_FAST_16F};
        float[][] expected = {
            a.clone(),
            {tf32(a[0]), tf32(a[1]), tf32(a[2])},
            {1f, 1f, 3f},
            {1f, 1f, 3f + 0x1p-9f},
        };
        assertEquals(1f + 0x1p-10f, tf32(a[1]), "ties away from zero");
        assertEquals(3f + 0x1p-9f, tf32(a[2]));
        for (int t = 0; t < computes.length; t++) {
            CUdeviceptr dc = upload(new float[3]);
            assertEquals(CUBLAS_STATUS_SUCCESS, JCublas2.cublasGemmEx_new(handle, CUBLAS_OP_N, CUBLAS_OP_N, 3, 1, 1,
                    Pointer.to(new float[]{1f}), da, R_32F, 3, db, R_32F, 1, Pointer.to(new float[]{0f}), dc, R_32F, 3,
                    computes[t], ALGO), cublasComputeType.stringFor(computes[t]));
            assertSameBits(expected[t], floats(dc, 3), cublasComputeType.stringFor(computes[t]));
        }
        assertTrue(expected[1][0] != expected[0][0], "TF32 and fp32 differ here");
    }

    @Test
    void gemmExRounds16BitOutputsToNearestEven() {
        // bf16 C, k = 2, b = (1, 1): 1 + 2⁻⁸ is a tie between 1 and 1 + 2⁻⁷ (-> 1, even); 1 + 3·2⁻⁸ a tie between
        // 1 + 2⁻⁷ and 1 + 2⁻⁶ (-> 1 + 2⁻⁶, even); a NaN operand gives the quiet NaN 0x7FC0; then random values
        // against HalfFloats' conversion of the replayed float result, with β = 1 reading the bf16 C
        float[] column0 = {1f, 1f + 0x1p-7f, Float.NaN};
        float[] column1 = {0x1p-8f, 0x1p-8f, 1f};
        short[] a16 = new short[6];
        for (int i = 0; i < 3; i++) {
            a16[i] = HalfFloats.floatToBf16(column0[i]);
            a16[3 + i] = HalfFloats.floatToBf16(column1[i]);
        }
        short[] one = {HalfFloats.floatToBf16(1f), HalfFloats.floatToBf16(1f)};
        CUdeviceptr dc = upload(new short[3]);
        assertEquals(CUBLAS_STATUS_SUCCESS, JCublas2.cublasGemmEx_new(handle, CUBLAS_OP_N, CUBLAS_OP_N, 3, 1, 2,
                Pointer.to(new float[]{1f}), upload(a16), R_16BF, 3, upload(one), R_16BF, 2, Pointer.to(new float[]{0f}), dc,
                R_16BF, 3, cublasComputeType.CUBLAS_COMPUTE_32F, ALGO));
        short[] got = shorts(dc, 3);
        assertEquals(HalfFloats.floatToBf16(1f), got[0], "tie to even (down)");
        assertEquals(HalfFloats.floatToBf16(1f + 0x1p-6f), got[1], "tie to even (up)");
        assertEquals(HalfFloats.BF16_NAN, got[2], "NaN");

        SplittableRandom r = new SplittableRandom(41);
        int m = 23;
        int n = 9;
        int k = 40;
        for (boolean bf16 : new boolean[]{true, false}) {
            int type = bf16 ? R_16BF : R_16F;
            short[] a = random16(r, m * k, bf16);
            short[] b = random16(r, k * n, bf16);
            short[] c = random16(r, m * n, bf16);
            float[] replayed = replay(CUBLAS_OP_N, CUBLAS_OP_T, m, n, k, 0.5f, widen(a, bf16), m, widen(b, bf16), n, 1f,
                    widen(c, bf16), m, false);
            short[] expected = new short[m * n];
            HalfFloats.narrow(replayed, 0, expected, 0, m * n, bf16);
            CUdeviceptr dc16 = upload(c);
            assertEquals(CUBLAS_STATUS_SUCCESS, JCublas2.cublasGemmEx(handle, CUBLAS_OP_N, CUBLAS_OP_T, m, n, k,
                    Pointer.to(new float[]{0.5f}), upload(a), type, m, upload(b), type, n, Pointer.to(new float[]{1f}), dc16,
                    type, m, R_32F, ALGO));
            assertEquals(Arrays.toString(expected), Arrays.toString(shorts(dc16, m * n)), bf16 ? "bf16 C" : "fp16 C");
        }
    }

    @Test
    void gemmExScalesCOnlyWhenAlphaIsZeroAndRunsCompute64FAsDgemm() {
        float[] nan = new float[4];
        Arrays.fill(nan, Float.NaN);
        CUdeviceptr a = upload(bf16NaNs(4));
        CUdeviceptr c = upload(new float[]{1, 2, 3, 4});
        assertEquals(CUBLAS_STATUS_SUCCESS, JCublas2.cublasGemmEx_new(handle, CUBLAS_OP_N, CUBLAS_OP_N, 2, 2, 2,
                Pointer.to(new float[]{0f}), a, R_16BF, 2, a, R_16BF, 2, Pointer.to(new float[]{2f}), c, R_32F, 2,
                cublasComputeType.CUBLAS_COMPUTE_32F, ALGO));
        assertEquals("[2.0, 4.0, 6.0, 8.0]", Arrays.toString(floats(c, 4)), "α = 0: A and B (NaN) are not read");
        CUdeviceptr c0 = upload(nan);
        assertEquals(CUBLAS_STATUS_SUCCESS, JCublas2.cublasGemmEx_new(handle, CUBLAS_OP_N, CUBLAS_OP_N, 2, 2, 0,
                Pointer.to(new float[]{1f}), a, R_16BF, 2, a, R_16BF, 1, Pointer.to(new float[]{0f}), c0, R_32F, 2,
                cublasComputeType.CUBLAS_COMPUTE_32F, ALGO));
        assertEquals("[0.0, 0.0, 0.0, 0.0]", Arrays.toString(floats(c0, 4)), "k = 0, β = 0");

        CUdeviceptr d = upload(new double[]{10, 20});
        assertEquals(CUBLAS_STATUS_SUCCESS, JCublas2.cublasGemmEx_new(handle, CUBLAS_OP_N, CUBLAS_OP_N, 2, 1, 2,
                Pointer.to(new double[]{2}), upload(new double[]{1, 2, 3, 4}), R_64F, 2, upload(new double[]{1, 1}), R_64F, 2,
                Pointer.to(new double[]{0.5}), d, R_64F, 2, cublasComputeType.CUBLAS_COMPUTE_64F, ALGO));
        assertEquals("[13.0, 22.0]", Arrays.toString(doubles(d, 2)));
    }

    private static short[] bf16NaNs(int n) {
        short[] x = new short[n];
        Arrays.fill(x, HalfFloats.BF16_NAN);
        return x;
    }

    @Test
    void gemmExRefusesUnsupportedCombinationsAndBadArguments() {
        Pointer one = Pointer.to(new float[]{1f});
        CUdeviceptr x = alloc(4096);
        int c32 = cublasComputeType.CUBLAS_COMPUTE_32F;
        int[][] notSupported = {
            {R_16BF, R_16F, R_32F, c32},                                          // A and B differ
            {R_16BF, R_16BF, R_16F, c32},                                         // C neither fp32 nor A's type
            {R_16BF, R_16BF, R_32F, cublasComputeType.CUBLAS_COMPUTE_32F_FAST_TF32}, // FAST_*: fp32 operands only
            {R_32F, R_32F, R_16BF, c32},                                          // fp32 A/B, bf16 C
            {R_16F, R_16F, R_16F, cublasComputeType.CUBLAS_COMPUTE_16F},         // cuBLAS has it, not emulated
            {R_32F, R_32F, R_32F, cublasComputeType.CUBLAS_COMPUTE_64F},
        };
        for (int[] t : notSupported) {
            assertEquals(CUBLAS_STATUS_NOT_SUPPORTED, JCublas2.cublasGemmEx_new(handle, CUBLAS_OP_N, CUBLAS_OP_N, 4, 4, 4,
                    one, x, t[0], 4, x, t[1], 4, one, x, t[2], 4, t[3], ALGO), Arrays.toString(t));
        }
        int[][] invalid = {
            {R_32F, R_32F, R_32F, R_32F, ALGO},   // a legacy cudaDataType as the computeType of the C symbol
            {R_32F, R_32F, R_32F, c32, 50},       // no such algorithm
            {99, 99, R_32F, c32, ALGO},           // no such data type
        };
        for (int[] t : invalid) {
            assertEquals(CUBLAS_STATUS_INVALID_VALUE, JCublas2.cublasGemmEx_new(handle, CUBLAS_OP_N, CUBLAS_OP_N, 4, 4, 4,
                    one, x, t[0], 4, x, t[1], 4, one, x, t[2], 4, t[3], t[4]), Arrays.toString(t));
        }
        assertEquals(CUBLAS_STATUS_INVALID_VALUE, JCublas2.cublasGemmEx_new(handle, CUBLAS_OP_N, CUBLAS_OP_N, 4, 4, 4, one,
                x, R_16BF, 3, x, R_16BF, 4, one, x, R_32F, 4, c32, ALGO), "lda < m");
        // JCublas2.cublasGemmEx takes only legacy cudaDataType compute types (it migrates them as cublas_api.h's
        // C++ overload does) and answers NOT_SUPPORTED itself, without calling cuBLAS, for a cublasComputeType
        assertEquals(CUBLAS_STATUS_NOT_SUPPORTED, JCublas2.cublasGemmEx(handle, CUBLAS_OP_N, CUBLAS_OP_N, 4, 4, 4, one,
                x, R_16BF, 4, x, R_16BF, 4, one, x, R_32F, 4, c32, ALGO), "JCublas2.cublasGemmEx with COMPUTE_32F");
        for (int algo : new int[]{cublasGemmAlgo.CUBLAS_GEMM_DEFAULT, cublasGemmAlgo.CUBLAS_GEMM_ALGO23,
            cublasGemmAlgo.CUBLAS_GEMM_ALGO15_TENSOR_OP}) {
            assertEquals(CUBLAS_STATUS_SUCCESS, JCublas2.cublasGemmEx_new(handle, CUBLAS_OP_N, CUBLAS_OP_N, 4, 4, 4, one,
                    x, R_16BF, 4, x, R_16BF, 4, Pointer.to(new float[]{0f}), x, R_32F, 4, c32, algo), "algo " + algo);
        }

        // extents by element size: 4 x 3 bf16 A and 3 x 2 bf16 B, one element short; C sized for bf16 but typed fp32
        CUdeviceptr a = alloc(2L * 4 * 3);
        CUdeviceptr b = alloc(2L * 3 * 2 - 2);
        CUdeviceptr b2 = alloc(2L * 3 * 2);
        CUdeviceptr c16 = alloc(2L * 4 * 2);
        CUdeviceptr c = alloc(4L * 4 * 2);
        Pointer zero = Pointer.to(new float[]{0f});
        assertEquals(CUBLAS_STATUS_EXECUTION_FAILED, JCublas2.cublasGemmEx_new(handle, CUBLAS_OP_N, CUBLAS_OP_N, 4, 2, 3,
                one, a, R_16BF, 4, b, R_16BF, 3, zero, c, R_32F, 4, c32, ALGO), "B one bf16 short");
        assertEquals(CUBLAS_STATUS_EXECUTION_FAILED, JCublas2.cublasGemmEx_new(handle, CUBLAS_OP_N, CUBLAS_OP_N, 4, 2, 3,
                one, a, R_16BF, 4, b2, R_16BF, 3, zero, c16, R_32F, 4, c32, ALGO), "C holds bf16s, typed fp32");
        assertEquals(CUBLAS_STATUS_SUCCESS, JCublas2.cublasGemmEx_new(handle, CUBLAS_OP_N, CUBLAS_OP_N, 4, 2, 3,
                one, a, R_16BF, 4, b2, R_16BF, 3, zero, c16, R_16BF, 4, c32, ALGO));
        assertEquals(CUBLAS_STATUS_SUCCESS, JCublas2.cublasGemmEx_new(handle, CUBLAS_OP_N, CUBLAS_OP_N, 4, 2, 3,
                one, a, R_16BF, 4, b2, R_16BF, 3, zero, c, R_32F, 4, c32, ALGO));
    }
}
