package losskit.contract;

import static jcuda.driver.JCudaDriver.cuMemAlloc;
import static jcuda.driver.JCudaDriver.cuMemcpyDtoH;
import static jcuda.driver.JCudaDriver.cuMemcpyHtoD;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.Stream;
import jcuda.Pointer;
import losskit.api.BackendChoice;
import losskit.api.Family;
import losskit.api.Inputs;
import losskit.api.LossEngine;
import losskit.api.LossResult;
import losskit.api.Precision;
import losskit.api.Reduction;
import losskit.api.Slot;
import losskit.api.Tensor;
import losskit.cases.LossCases;
import losskit.cases.LossCases.Variant;
import losskit.cpu.CpuPaths;
import losskit.cuda.JCudaInterop;
import losskit.cuda.KernelNames;
import losskit.cuda.TestDeviceMemory;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.TestFactory;
import org.junit.jupiter.api.TestInstance;

/**
 * Device pointers 4, 8 and 12 bytes past a 16-byte boundary, for every family: every operand, the weights, the
 * gradient destinations and (reduction NONE) the losses destination in device memory at that offset from a
 * 256-byte aligned allocation, so the kernels' 16-byte vector paths must step aside (the emulator fails a
 * misaligned vector access with CUDA_ERROR_MISALIGNED_ADDRESS, as a GPU does). int64 labels can only sit 8 bytes
 * off (Tensor.labelsOnDevice refuses 4 and 12); at 4 and 12 the labels go as int32. Checked against the CPU
 * backend on the same values held on the host: FAST bit for bit (the FAST contract, FastBitsAcrossBackendsTest),
 * EXACT to {@link CudaMatchesCpuTest}'s tolerance. Elementwise 4 099 elements (vector body and scalar tail), rows
 * and pairs 67 × 33 (row starts on every alignment).
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class CudaDevicePointerOffsetsTest {
    static final int[] OFFSETS = {4, 8, 12};
    /** Per family: a plain loss, one with a third operand or labels, the other pairs form. */
    private static final Set<String> LOSSES = Set.of("mse", "gaussian-nll", "bce-logits", "cross-entropy",
            "kl-divergence", "triplet", "cosine-proximity");

    private LossEngine cudaFast;
    private LossEngine cudaExact;
    private LossEngine cpuFast;
    private LossEngine cpuExact;
    private TestDeviceMemory memory;

    @BeforeAll
    void open() {
        cudaFast = CudaEmulatedLossContractTest.openCudaExactRegions(Precision.FAST);
        cudaExact = CudaEmulatedLossContractTest.openCudaExactRegions(Precision.EXACT);
        cpuFast = CpuPaths.auto(2, Precision.FAST);
        cpuExact = LossEngine.builder().backend(BackendChoice.CPU).precision(Precision.EXACT).build();
        memory = new TestDeviceMemory();
    }

    @AfterAll
    void close() {
        if (memory != null) {
            memory.close(); // also when a kernel fault poisoned the context
        }
        for (LossEngine e : new LossEngine[] {cudaFast, cudaExact, cpuFast, cpuExact}) {
            if (e != null) {
                e.close();
            }
        }
    }

    @TestFactory
    Stream<DynamicTest> devicePointersOffFromSixteenBytes() {
        List<DynamicTest> tests = new ArrayList<>();
        long seed = 61_000;
        List<Variant> chosen = new ArrayList<>();
        Set<String> seen = new java.util.HashSet<>();
        for (Variant v : LossCases.variants()) {
            if (KernelNames.hasKernels(v.form().family()) && v.form().family() != Family.MATRIX
                    && LOSSES.contains(v.loss().id()) && v.loss().toString().equals(v.loss().id()) && seen.add(v.loss().id())) {
                chosen.add(v);
            }
        }
        assertEquals(LOSSES, seen, "every chosen loss has a variant with kernels");
        // the matrix losses take device operands too (converted by kernels); EXACT only
        for (Variant v : LossCases.variants()) {
            if (v.form().family() == Family.MATRIX && KernelNames.hasKernels(Family.MATRIX)
                    && CudaEmulatedLossContractTest.cublasAvailable() && seen.add(v.loss().id())) {
                chosen.add(v);
            }
        }
        for (Variant base : chosen) {
            List<Reduction> reductions = new ArrayList<>(List.of(base.loss().reduction()));
            if (base.loss().definition().reductions().contains(Reduction.NONE) && base.loss().reduction() != Reduction.NONE) {
                reductions.add(Reduction.NONE);
            }
            for (Reduction r : reductions) {
                Variant v = new Variant(base.loss().reduction(r), base.form());
                for (int offset : OFFSETS) {
                    long s = seed++;
                    tests.add(DynamicTest.dynamicTest(v + " +" + offset + " bytes", () -> compare(v, offset, s)));
                }
            }
        }
        return tests.stream();
    }

    /**
     * linear-cross-entropy's gradients narrowed into device destinations past one grid-stride sweep of
     * losskit_matrix_narrow (1 024 blocks of 256 threads: the hidden states' gradient has 8 200 × 33 = 270 600
     * elements), EXACT against the CPU. info-nce would need an 8 200² similarity matrix, so it stays at the
     * small size above.
     */
    @TestFactory
    Stream<DynamicTest> matrixGradientPastOneGridSweep() {
        Assumptions.assumeTrue(KernelNames.hasKernels(Family.MATRIX) && CudaEmulatedLossContractTest.cublasAvailable(),
                "no emulated cuBLAS");
        List<DynamicTest> tests = new ArrayList<>();
        for (Variant v : LossCases.variants()) {
            if (v.loss().id().equals("linear-cross-entropy") && v.loss().toString().equals(v.loss().id())) {
                tests.add(DynamicTest.dynamicTest(v + " 8200 rows +4 bytes", () -> compare(v, 4, 62_000, 8200)));
                break;
            }
        }
        assertEquals(1, tests.size(), "linear-cross-entropy has a variant");
        return tests.stream();
    }

    private void compare(Variant v, int offset, long seed) {
        compare(v, offset, seed, v.form().family() == Family.ELEMENTWISE ? 4099 : 67);
    }

    private void compare(Variant v, int offset, long seed, int rows) {
        boolean ew = v.form().family() == Family.ELEMENTWISE;
        Inputs host = LossCases.inputs(v, rows, ew ? 1 : LossCases.columns(v, 33), seed, true);
        boolean fast = KernelNames.hasFastKernels(v.form().family());
        for (Precision p : fast ? new Precision[] {Precision.FAST, Precision.EXACT} : new Precision[] {Precision.EXACT}) {
            LossEngine cuda = p == Precision.FAST ? cudaFast : cudaExact;
            LossEngine cpu = p == Precision.FAST ? cpuFast : cpuExact;
            Map<String, Long> grads = new LinkedHashMap<>();
            long[] losses = new long[1];
            LossResult expected = cpu.compute(v.loss(), host);
            Inputs dev = toDevice(v, host, offset, grads, losses, (int) expected.partial().count());
            LossResult actual = cuda.compute(v.loss(), dev);
            assertEquals("cuda", actual.backend());
            String what = v + " +" + offset + " " + p;
            if (p == Precision.FAST) {
                double[] pe = expected.partial().components();
                double[] pa = actual.partial().components();
                for (int i = 0; i < pe.length; i++) {
                    if (!sameBits(pe[i], pa[i])) {
                        fail(what + ": partial component " + i + " is " + pe[i] + " on the CPU, " + pa[i] + " on CUDA");
                    }
                }
                assertTrue(sameBits(expected.value(), actual.value()), what + ": value " + actual.value() + " on CUDA, "
                        + expected.value() + " on the CPU");
            } else {
                double e = expected.value();
                assertTrue(Tolerance.close(actual.value(), e, 1e-9, Math.max(Math.abs(e), 1e-6)),
                        what + ": value " + actual.value() + " expected " + e);
            }
            double floor = CudaMatchesCpuTest.floorOf(v);
            for (Map.Entry<String, Long> g : grads.entrySet()) {
                float[] e = expected.gradientArray(g.getKey());
                compare(what + ": d/d" + g.getKey(), p, e, get(g.getValue(), e.length), floor);
            }
            if (losses[0] != 0) {
                float[] e = expected.lossesArray();
                compare(what + ": losses", p, e, get(losses[0], e.length), floor);
            }
        }
    }

    private static void compare(String what, Precision p, float[] expected, float[] actual, double floor) {
        if (p == Precision.EXACT) {
            CudaMatchesCpuTest.compareArrays(what, expected, actual, floor);
            return;
        }
        for (int i = 0; i < expected.length; i++) {
            if (!sameBits(expected[i], actual[i])) {
                fail(what + "[" + i + "] = " + actual[i] + " on CUDA, " + expected[i] + " on the CPU");
            }
        }
    }

    private static boolean sameBits(double x, double y) {
        return Double.isNaN(x) ? Double.isNaN(y) : Double.doubleToRawLongBits(x) == Double.doubleToRawLongBits(y);
    }

    private static boolean sameBits(float x, float y) {
        return Float.isNaN(x) ? Float.isNaN(y) : Float.floatToRawIntBits(x) == Float.floatToRawIntBits(y);
    }

    /** Every operand, the weights and the destinations at {@code offset} bytes past a 256-byte aligned allocation. */
    private Inputs toDevice(Variant v, Inputs host, int offset, Map<String, Long> grads, long[] losses, int units) {
        Inputs d = Inputs.empty();
        for (Slot s : v.form().slots()) {
            Tensor t = host.tensor(s.name());
            d = d.with(s.name(), onDevice(t, offset));
            if (s.differentiable()) {
                long g = alloc(4L * t.size(), offset);
                grads.put(s.name(), g);
                d = d.gradientInto(s.name(), Tensor.onDevice(g, t.size()));
            }
        }
        if (host.weights() != null) {
            d = d.weights(onDevice(host.weights(), offset));
        }
        if (v.loss().reduction() == Reduction.NONE) {
            losses[0] = alloc(4L * units, offset);
            d = d.lossesInto(Tensor.onDevice(losses[0], units));
        }
        return d;
    }

    /** {@code bytes} at {@code offset} past the start of an allocation of their own (256-byte aligned). */
    private long alloc(long bytes, int offset) {
        long base = JCudaInterop.address(memory.allocate(Math.max(bytes, 4) + offset));
        assertEquals(0, base % 256, "cuMemAlloc's alignment");
        return base + offset;
    }

    private Tensor onDevice(Tensor host, int offset) {
        long n = host.size();
        switch (host.dtype()) {
            case FLOAT32 -> {
                float[] a = new float[(int) n];
                host.floats().duplicate().clear().get(a);
                long p = alloc(4 * n, offset);
                cuMemcpyHtoD(JCudaInterop.deviceptr(p), Pointer.to(a), 4 * n);
                return Tensor.onDevice(p, host.shape());
            }
            case INT64 -> {
                long[] a = new long[(int) n];
                host.longs().duplicate().clear().get(a);
                if (offset % 8 == 0) {
                    long p = alloc(8 * n, offset);
                    cuMemcpyHtoD(JCudaInterop.deviceptr(p), Pointer.to(a), 8 * n);
                    return Tensor.labelsOnDevice(p, Tensor.DType.INT64, n);
                }
                long misaligned = alloc(8 * n, offset);
                assertThrows(IllegalArgumentException.class,
                        () -> Tensor.labelsOnDevice(misaligned, Tensor.DType.INT64, n), "int64 labels " + offset + " bytes off");
                int[] narrow = new int[(int) n];
                for (int i = 0; i < narrow.length; i++) {
                    narrow[i] = Math.toIntExact(a[i]);
                }
                long p = alloc(4 * n, offset);
                cuMemcpyHtoD(JCudaInterop.deviceptr(p), Pointer.to(narrow), 4 * n);
                return Tensor.labelsOnDevice(p, Tensor.DType.INT32, n);
            }
            case INT32 -> {
                int[] a = new int[(int) n];
                host.ints().duplicate().clear().get(a);
                long p = alloc(4 * n, offset);
                cuMemcpyHtoD(JCudaInterop.deviceptr(p), Pointer.to(a), 4 * n);
                return Tensor.labelsOnDevice(p, Tensor.DType.INT32, n);
            }
            default -> throw new AssertionError("no " + host.dtype() + " in LossCases");
        }
    }

    private float[] get(long pointer, int n) {
        memory.makeCurrent();
        float[] a = new float[n];
        cuMemcpyDtoH(Pointer.to(a), JCudaInterop.deviceptr(pointer), 4L * n);
        return a;
    }
}
