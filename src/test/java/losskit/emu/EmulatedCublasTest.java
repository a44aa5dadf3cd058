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
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import jcuda.Pointer;
import jcuda.driver.CUcontext;
import jcuda.driver.CUdeviceptr;
import jcuda.jcublas.JCublas2;
import jcuda.jcublas.cublasHandle;
import jcuda.jcublas.cublasMath;
import jcuda.jcublas.cublasPointerMode;
import jcuda.jcublas.cublasStatus;
import jcuda.runtime.cudaStream_t;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/**
 * The emulated cuBLAS (target/emu/libcublas.so.12, cuda-kernels/emu/cublas) through JCublas2, as the matrix
 * losses call it: GEMM semantics against the definition (column-major, every transpose, α and β, β = 0
 * never reading C), argument errors, operands past their allocation, handles and modes, and the generated
 * stubs for everything else JCublas2 imports.
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
}
