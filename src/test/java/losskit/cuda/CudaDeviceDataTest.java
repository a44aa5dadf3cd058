package losskit.cuda;

import static jcuda.driver.JCudaDriver.cuCtxSynchronize;
import static jcuda.driver.JCudaDriver.cuMemFreeHost;
import static jcuda.driver.JCudaDriver.cuMemHostAlloc;
import static jcuda.driver.JCudaDriver.cuMemHostGetDevicePointer;
import static jcuda.driver.JCudaDriver.cuMemcpyDtoH;
import static jcuda.driver.JCudaDriver.cuMemcpyHtoD;
import static jcuda.driver.JCudaDriver.cuStreamCreate;
import static jcuda.driver.JCudaDriver.cuStreamDestroy;
import static jcuda.driver.JCudaDriver.cuStreamWaitValue32;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import jcuda.Pointer;
import jcuda.driver.CUdeviceptr;
import jcuda.driver.CUstream;
import jcuda.driver.CUstream_flags;
import losskit.api.BackendChoice;
import losskit.api.DeviceBuffer;
import losskit.api.Family;
import losskit.api.Inputs;
import losskit.api.Loss;
import losskit.api.LossEngine;
import losskit.api.LossInputException;
import losskit.api.LossResult;
import losskit.api.PendingLoss;
import losskit.api.Reduction;
import losskit.api.Slot;
import losskit.api.Tensor;
import losskit.cases.LossCases;
import losskit.cases.LossCases.Variant;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;
import org.junit.jupiter.api.TestInstance;

/**
 * Data already on the GPU (emulated driver, or a GPU): inputs given as device pointers the test allocates
 * with JCuda, gradients and losses written to device memory, the caller's stream, the value left on the
 * device by computeAsync, and device buffers from the engine's pool. The device path must give the same
 * bits as the same call on host data (same kernels, same fold), and that path is checked against the CPU
 * by CudaMatchesCpuTest. That no data crosses to the host is checked by copy accounting in
 * {@link CudaChildProcessTest}.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class CudaDeviceDataTest {
    private LossEngine cuda;
    private LossEngine cpu;
    private TestDeviceMemory memory;

    @BeforeAll
    void open() {
        cuda = openCuda();
        cpu = LossEngine.create(BackendChoice.CPU);
        memory = new TestDeviceMemory();
    }

    @AfterAll
    void close() {
        if (memory != null) {
            memory.close(); // also when a kernel fault poisoned the context
        }
        if (cuda != null) {
            cuda.close();
        }
        if (cpu != null) {
            cpu.close();
        }
    }

    /** A CUDA engine, or a skipped test where this machine has no CUDA driver (emulated or real) or PTX. */
    static LossEngine openCuda() {
        try {
            LossEngine e = LossEngine.create(BackendChoice.CUDA);
            assertEquals("cuda", e.backendName());
            return e;
        } catch (IllegalStateException ex) {
            Throwable c = ex.getCause();
            boolean noDriver = c instanceof LinkageError || c instanceof UnsupportedOperationException;
            Assumptions.assumeFalse(noDriver && System.getenv("CI") == null, "no CUDA here: " + ex.getMessage());
            throw ex;
        }
    }

    // ---- device memory the test owns (JCuda, the primary context the engine shares) --------------------

    private long alloc(long bytes) {
        return JCudaInterop.address(memory.allocate(Math.max(bytes, 4)));
    }

    private long put(Tensor host) {
        long n = host.size();
        return switch (host.dtype()) {
            case FLOAT32 -> {
                float[] a = new float[(int) n];
                host.floats().duplicate().clear().get(a);
                long p = alloc(4 * n);
                cuMemcpyHtoD(JCudaInterop.deviceptr(p), Pointer.to(a), 4 * n);
                yield p;
            }
            case BFLOAT16, FLOAT16 -> {
                short[] a = new short[(int) n];
                host.shorts().duplicate().clear().get(a);
                long p = alloc(2 * n);
                cuMemcpyHtoD(JCudaInterop.deviceptr(p), Pointer.to(a), 2 * n);
                yield p;
            }
            case INT32 -> {
                int[] a = new int[(int) n];
                host.ints().duplicate().clear().get(a);
                long p = alloc(4 * n);
                cuMemcpyHtoD(JCudaInterop.deviceptr(p), Pointer.to(a), 4 * n);
                yield p;
            }
            case INT64 -> {
                long[] a = new long[(int) n];
                host.longs().duplicate().clear().get(a);
                long p = alloc(8 * n);
                cuMemcpyHtoD(JCudaInterop.deviceptr(p), Pointer.to(a), 8 * n);
                yield p;
            }
        };
    }

    private Tensor onDevice(Tensor host) {
        long p = put(host);
        return host.isFloat() ? Tensor.onDevice(p, host.shape()) : Tensor.labelsOnDevice(p, host.dtype(), host.size());
    }

    private float[] get(long pointer, int n) {
        memory.makeCurrent();
        float[] a = new float[n];
        cuMemcpyDtoH(Pointer.to(a), JCudaInterop.deviceptr(pointer), 4L * n);
        return a;
    }

    private double getDouble(long pointer) {
        memory.makeCurrent();
        double[] a = new double[1];
        cuMemcpyDtoH(Pointer.to(a), JCudaInterop.deviceptr(pointer), 8);
        return a[0];
    }

    /** The same call with every tensor, gradient and loss destination in device memory. */
    private Inputs toDevice(Variant v, Inputs host, Map<String, Long> gradients, long[] losses, int rows) {
        Inputs d = Inputs.empty();
        for (Slot s : v.form().slots()) {
            Tensor t = host.tensor(s.name());
            d = d.with(s.name(), onDevice(t));
            if (s.differentiable()) {
                long g = alloc(4 * t.size());
                gradients.put(s.name(), g);
                d = d.gradientInto(s.name(), Tensor.onDevice(g, t.size()));
            }
        }
        if (host.weights() != null) {
            d = d.weights(onDevice(host.weights()));
        }
        if (v.loss().reduction() == Reduction.NONE) {
            losses[0] = alloc(4L * rows);
            d = d.lossesInto(Tensor.onDevice(losses[0], rows));
        }
        return d;
    }

    /** Every loss form with kernels, default reduction and NONE: device operands give the host path's bits. */
    @TestFactory
    Stream<DynamicTest> deviceOperandsGiveTheBitsOfHostOperands() {
        List<DynamicTest> tests = new ArrayList<>();
        long seed = 4242;
        for (Variant base : LossCases.variants()) {
            if (!KernelNames.hasKernels(base.form().family())) {
                continue;
            }
            List<Reduction> reductions = new ArrayList<>(List.of(base.loss().reduction()));
            if (base.loss().definition().reductions().contains(Reduction.NONE)) {
                reductions.add(Reduction.NONE);
            }
            for (Reduction r : reductions) {
                Variant v = new Variant(base.loss().reduction(r), base.form());
                long s = seed++;
                tests.add(DynamicTest.dynamicTest(v.toString(), () -> {
                    boolean ew = v.form().family() == Family.ELEMENTWISE;
                    int rows = ew ? 1031 : 37;
                    int cols = ew ? 1 : LossCases.columns(v, 33);
                    Inputs host = LossCases.inputs(v, rows, cols, s, true);
                    LossResult expected = cuda.compute(v.loss(), host);
                    int units = (int) expected.partial().count();
                    Map<String, Long> grads = new java.util.LinkedHashMap<>();
                    long[] losses = new long[1];
                    LossResult actual = cuda.compute(v.loss(), toDevice(v, host, grads, losses, units));
                    assertBits(v + ": partial", expected.partial().components(), actual.partial().components());
                    assertTrue(actual.gradients().isEmpty(), "device destinations are not host gradients");
                    for (Map.Entry<String, Long> g : grads.entrySet()) {
                        float[] e = expected.gradientArray(g.getKey());
                        assertBits(v + ": d/d" + g.getKey(), e, get(g.getValue(), e.length));
                    }
                    if (losses[0] != 0) {
                        assertNull(actual.losses());
                        float[] e = expected.lossesArray();
                        assertBits(v + ": losses", e, get(losses[0], e.length));
                    }
                }));
            }
        }
        return tests.stream();
    }

    /**
     * bfloat16 and float16 in device memory: inputs, gradient and loss destinations all 16-bit on the device give
     * the bits of the same call on 16-bit host arrays (HalfPrecisionDataTest holds those to the float32 widening;
     * MatrixHeadTest the matrix losses'). The matrix losses are included: their device operands are widened on
     * the device, host ones on the host, and gradients rounded once from float64 by a kernel or by HalfFloats.
     * rmse, whose gradient is scaled after the pass, refuses a 16-bit device destination.
     */
    @TestFactory
    Stream<DynamicTest> sixteenBitDeviceOperandsGiveTheBitsOfHostOperands() {
        List<DynamicTest> tests = new ArrayList<>();
        long seed = 5252;
        for (Variant base : LossCases.variants()) {
            // the matrix losses too: widened by losskit_matrix_widen_half, rounded once by _narrow_half
            if (!KernelNames.hasKernels(base.form().family()) || !base.loss().toString().equals(base.loss().id())) {
                continue;
            }
            for (Reduction r : new Reduction[]{base.loss().reduction(), Reduction.NONE}) {
                if (!base.loss().definition().reductions().contains(r) || (r == Reduction.NONE && r == base.loss().reduction())) {
                    continue;
                }
                Variant v = new Variant(base.loss().reduction(r), base.form());
                for (Tensor.DType half : new Tensor.DType[]{Tensor.DType.BFLOAT16, Tensor.DType.FLOAT16}) {
                    long s = seed++;
                    tests.add(DynamicTest.dynamicTest(v + " " + half.id(), () -> deviceHalf(v, half, s)));
                }
            }
        }
        return tests.stream();
    }

    private void deviceHalf(Variant v, Tensor.DType half, long seed) {
        boolean ew = v.form().family() == Family.ELEMENTWISE;
        int rows = ew ? 1031 : 37;
        Inputs floats = LossCases.inputs(v, rows, ew ? 1 : LossCases.columns(v, 33), seed, true);
        Inputs host = Inputs.empty();
        Inputs dev = Inputs.empty();
        Map<String, Long> grads = new java.util.LinkedHashMap<>();
        boolean sqrtOuter = v.loss().definition().outer() != losskit.api.LossDefinition.Outer.IDENTITY;
        for (Slot slot : v.form().slots()) {
            Tensor t = floats.tensor(slot.name());
            if (!t.isFloat()) {
                host = host.with(slot.name(), t);
                dev = dev.with(slot.name(), onDevice(t));
                continue;
            }
            Tensor h = Tensor.of(java.nio.ShortBuffer.wrap(narrow(t, half)), half, t.shape());
            host = host.with(slot.name(), h);
            dev = dev.with(slot.name(), Tensor.onDevice(put(h), half, t.shape()));
            if (slot.differentiable()) {
                long g = alloc(2 * t.size());
                grads.put(slot.name(), g);
                dev = dev.gradientInto(slot.name(), Tensor.onDevice(g, half, t.size()));
            }
        }
        if (floats.weights() != null) { // info-nce takes none
            host = host.weights(floats.weights());
            dev = dev.weights(onDevice(floats.weights()));
        }
        if (sqrtOuter) {
            Inputs refused = dev;
            LossInputException e = assertThrows(LossInputException.class, () -> cuda.compute(v.loss(), refused));
            assertTrue(e.getMessage().contains("16-bit"), e.getMessage());
            return;
        }
        LossResult expected = cuda.compute(v.loss(), host);
        long losses = 0;
        if (v.loss().reduction() == Reduction.NONE) {
            losses = alloc(2L * expected.partial().count());
            dev = dev.lossesInto(Tensor.onDevice(losses, half, expected.partial().count()));
        }
        LossResult actual = cuda.compute(v.loss(), dev);
        assertBits(v + " " + half.id() + ": partial", expected.partial().components(), actual.partial().components());
        for (Map.Entry<String, Long> g : grads.entrySet()) {
            Tensor e = expected.gradientTensor(g.getKey());
            assertEquals(half, e.dtype());
            assertShortBits(v + " " + half.id() + ": d/d" + g.getKey(), e, getShorts(g.getValue(), (int) e.size()));
        }
        if (losses != 0) {
            Tensor e = expected.lossesTensor();
            assertShortBits(v + " " + half.id() + ": losses", e, getShorts(losses, (int) e.size()));
        }
    }

    private static short[] narrow(Tensor t, Tensor.DType half) {
        java.nio.FloatBuffer f = t.floats().duplicate();
        f.clear();
        short[] out = new short[(int) t.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = half == Tensor.DType.BFLOAT16 ? losskit.api.HalfFloats.floatToBf16(f.get(i))
                    : losskit.api.HalfFloats.floatToF16(f.get(i));
        }
        return out;
    }

    private short[] getShorts(long pointer, int n) {
        memory.makeCurrent();
        short[] a = new short[n];
        cuMemcpyDtoH(Pointer.to(a), JCudaInterop.deviceptr(pointer), 2L * n);
        return a;
    }

    /** The device's 16-bit values are the host call's, bit for bit (every NaN as NaN). */
    private static void assertShortBits(String what, Tensor expected, short[] actual) {
        java.nio.ShortBuffer e = expected.shorts().duplicate();
        e.clear();
        assertEquals(e.limit(), actual.length, what + " length");
        for (int i = 0; i < actual.length; i++) {
            boolean nanE = Float.isNaN(expected.floatAt(i));
            float a = expected.dtype() == Tensor.DType.BFLOAT16 ? losskit.api.HalfFloats.bf16ToFloat(actual[i])
                    : losskit.api.HalfFloats.f16ToFloat(actual[i]);
            if (nanE ? !Float.isNaN(a) : e.get(i) != actual[i]) {
                fail(what + "[" + i + "] = 0x" + Integer.toHexString(actual[i] & 0xffff) + " expected 0x"
                        + Integer.toHexString(e.get(i) & 0xffff) + " (host operands)");
            }
        }
    }

    @Test
    void valueStaysOnTheDeviceUntilAskedFor() {
        Loss ce = Loss.of("cross-entropy");
        Variant v = new Variant(ce, ce.definition().forms().get(0));
        Inputs host = LossCases.inputs(v, 50, 10, 7, true);
        long grad = alloc(4L * 500);
        Inputs dev = Inputs.empty().with("input", onDevice(host.tensor("input")))
                .with("target", onDevice(host.tensor("target"))).weights(onDevice(host.weights()))
                .gradientInto("input", Tensor.onDevice(grad, 500));
        LossResult sync = cuda.compute(ce, host);
        try (PendingLoss p = cuda.computeAsync(ce, dev)) {
            double onDevice = getDouble(p.valueOnDevice());
            assertEquals(Double.doubleToRawLongBits(sync.value()), Double.doubleToRawLongBits(onDevice),
                    "the device value is the host fold's value, bit for bit");
            assertEquals(Double.doubleToRawLongBits(sync.value()), Double.doubleToRawLongBits(p.value()));
            assertTrue(p.isDone());
            assertBits("async gradient", sync.gradientArray("input"), get(grad, 500));
            assertEquals("cuda", p.result().backend());
        }
        // the CPU answers at once and has no device value
        PendingLoss onCpu = cpu.computeAsync(ce, host);
        assertTrue(onCpu.isDone());
        assertEquals(cpu.compute(ce, host).value(), onCpu.value());
        assertThrows(UnsupportedOperationException.class, onCpu::valueOnDevice);
    }

    @Test
    void dataErrorsOfQueuedCallsSurfaceWhenTheValueIsRead() {
        Loss ce = Loss.of("cross-entropy");
        float[] logits = new float[4 * 5];
        int[] labels = {1, 4, 7, 0};
        Inputs host = Inputs.rows(logits, 4, 5, labels);
        String expected = assertThrows(LossInputException.class, () -> cpu.compute(ce, host)).getMessage();
        Inputs dev = Inputs.empty().with("input", onDevice(host.tensor("input"))).with("target", onDevice(host.tensor("target")));
        PendingLoss p = cuda.evaluateAsync(ce, dev);
        assertTrue(Double.isNaN(getDouble(p.valueOnDevice())), "a violated domain leaves NaN on the device");
        assertEquals(expected, assertThrows(LossInputException.class, p::value).getMessage());
        assertEquals(expected, assertThrows(LossInputException.class, p::result).getMessage());
        p.close();
        assertEquals(expected, assertThrows(LossInputException.class, () -> cuda.compute(ce, dev)).getMessage());
        // a bad value read back from a device float input: bce's probability outside [0, 1]
        Inputs bce = Inputs.empty().with("input", onDevice(Tensor.of(new float[]{0.5f, 1.5f, 0.2f})))
                .with("target", onDevice(Tensor.of(new float[]{0, 1, 0})));
        String bceExpected = assertThrows(LossInputException.class,
                () -> cpu.compute(Loss.of("bce"), Inputs.of(new float[]{0.5f, 1.5f, 0.2f}, new float[]{0, 1, 0}))).getMessage();
        assertEquals(bceExpected, assertThrows(LossInputException.class, () -> cuda.compute(Loss.of("bce"), bce)).getMessage());
    }

    /**
     * Calls queued on the caller's stream behind work that has not finished (the stream held by
     * cuStreamWaitValue32 on a page-locked word until the test sets it): {@code isDone} is false (the driver
     * answers CUDA_ERROR_NOT_READY), a handle closed then cannot give its result record back yet (the
     * deferred release: a staging lane opened meanwhile gets another block and keeps its data), and once the
     * stream runs the value is right and the next calls reclaim the record.
     */
    @Test
    void queuedCallsAreNotDoneUntilTheirStreamRunsAndAClosedOneIsReleasedLater() {
        Loss mse = Loss.of("mse");
        float[] x = new float[3000];
        float[] t = new float[3000];
        for (int i = 0; i < x.length; i++) {
            x[i] = (float) Math.sin(i);
            t[i] = (float) Math.cos(0.5 * i);
        }
        double expected = cuda.evaluate(mse, Inputs.of(x, t)).value();
        Tensor dx = onDevice(Tensor.of(x));
        Tensor dt = onDevice(Tensor.of(t));
        memory.makeCurrent();
        cuCtxSynchronize(); // a pageable cuMemcpyHtoD may return before its copy ran; the stream below does not wait for it
        CUstream stream = new CUstream();
        cuStreamCreate(stream, CUstream_flags.CU_STREAM_NON_BLOCKING);
        Pointer word = new Pointer();
        cuMemHostAlloc(word, 4, 2); // CU_MEMHOSTALLOC_DEVICEMAP
        word.getByteBuffer(0, 4).order(ByteOrder.nativeOrder()).putInt(0, 0);
        CUdeviceptr wordOnDevice = new CUdeviceptr();
        cuMemHostGetDevicePointer(wordOnDevice, word, 0);
        cuStreamWaitValue32(stream, wordOnDevice, 1, 0); // CU_STREAM_WAIT_VALUE_GEQ: held until the word is 1
        // a call that waited for the held stream would never return: a watchdog opens it after 60 s (and fails)
        java.util.concurrent.atomic.AtomicBoolean watchdogOpened = new java.util.concurrent.atomic.AtomicBoolean();
        Thread watchdog = new Thread(() -> {
            try {
                Thread.sleep(60_000);
                watchdogOpened.set(true);
                word.getByteBuffer(0, 4).order(ByteOrder.nativeOrder()).putInt(0, 1);
            } catch (InterruptedException e) {
                // opened by the test
            }
        });
        watchdog.setDaemon(true);
        watchdog.start();
        Inputs held = Inputs.empty().with("input", dx).with("target", dt).onStream(JCudaInterop.address(stream));
        PendingLoss first = cuda.evaluateAsync(mse, held); // the value only: nothing to copy to the host
        PendingLoss second = cuda.evaluateAsync(mse, held);
        float[] marks = new float[64];
        for (int i = 0; i < marks.length; i++) {
            marks[i] = i + 0.5f;
        }
        CudaStaging lane = null;
        try {
            assertFalse(first.isDone(), "queued behind the held stream");
            first.close(); // its record is still the kernels' target: released once the stream passes its event
            assertFalse(second.isDone());
            // a pool block of a record's size taken meanwhile by what no call orders (a staging lane: a stream of
            // its own, waiting for no call) must not be first's record, which first's kernels write once the
            // stream runs: released at close, it would be the block handed out next
            lane = CudaStaging.open(cuda, 1, 4L * marks.length);
            lane.lane(0).host().asFloatBuffer().put(0, marks);
            lane.lane(0).upload(4L * marks.length);
            lane.lane(0).awaitUpload();
        } finally {
            word.getByteBuffer(0, 4).order(ByteOrder.nativeOrder()).putInt(0, 1);
            watchdog.interrupt();
        }
        assertFalse(watchdogOpened.get(), "a call waited for the held stream");
        assertEquals(Double.doubleToRawLongBits(expected), Double.doubleToRawLongBits(second.value()));
        assertTrue(second.isDone());
        second.close();
        memory.makeCurrent();
        cuCtxSynchronize();
        float[] back = new float[marks.length];
        cuMemcpyDtoH(Pointer.to(back), JCudaInterop.deviceptr(lane.lane(0).device()), 4L * marks.length);
        assertArrayEquals(marks, back, "the staging lane's upload, not a result record");
        lane.close();
        assertEquals(Double.doubleToRawLongBits(expected),
                Double.doubleToRawLongBits(cuda.evaluate(mse, Inputs.of(x, t)).value()));
        memory.makeCurrent();
        cuStreamDestroy(stream);
        cuMemFreeHost(word);
    }

    @Test
    void callerStreamAndMixedHostAndDeviceOperands() {
        Loss loss = Loss.of("bce-logits").with(losskit.api.Param.POS_WEIGHT, new float[]{2f, 0.5f, 1f});
        Variant v = new Variant(loss, loss.definition().forms().get(0));
        Inputs generated = LossCases.inputs(v, 999, 1, 3, true);
        Inputs host = Inputs.empty().with("input", Tensor.of(generated.tensor("input").floats(), 333, 3))
                .with("target", Tensor.of(generated.tensor("target").floats(), 333, 3)).weights(generated.weights());
        LossResult expected = cuda.compute(loss, host);
        memory.makeCurrent();
        CUstream stream = new CUstream();
        cuStreamCreate(stream, 0);
        long grad = alloc(4L * 999);
        Inputs mixed = Inputs.empty().with("input", onDevice(host.tensor("input"))).with("target", host.tensor("target"))
                .weights(host.weights()).gradientInto("input", Tensor.onDevice(grad, 999))
                .onStream(JCudaInterop.address(stream));
        try (PendingLoss p = cuda.computeAsync(loss, mixed)) {
            assertEquals(Double.doubleToRawLongBits(expected.value()), Double.doubleToRawLongBits(p.value()));
        }
        assertBits("gradient on the caller's stream", expected.gradientArray("input"), get(grad, 999));
        // a host gradient of device data is copied back
        float[] hostGrad = new float[999];
        LossResult r = cuda.compute(loss, mixed.gradientInto("input", hostGrad));
        assertBits("host gradient", expected.gradientArray("input"), hostGrad);
        assertEquals(expected.value(), r.value());
        memory.makeCurrent();
        cuStreamDestroy(stream);
        // the next call on the engine's own stream must not wait on the destroyed stream
        assertEquals(expected.value(), cuda.compute(loss, host).value());
    }

    @Test
    void cpuBackendRejectsDevicePointers() {
        Inputs in = Inputs.empty().with("input", Tensor.onDevice(0x1000, 8)).with("target", Tensor.of(new float[8]));
        LossInputException e = assertThrows(LossInputException.class, () -> cpu.compute(Loss.of("mse"), in));
        assertEquals("mse: input = device float32[8] is a device pointer; the cpu backend needs host data "
                + "(expected float[] or a buffer, or a CUDA engine)", e.getMessage());
        Inputs gradOnDevice = Inputs.of(new float[8], new float[8]).gradientInto("input", Tensor.onDevice(0x1000, 8));
        assertTrue(assertThrows(LossInputException.class, () -> cpu.compute(Loss.of("mse"), gradOnDevice)).getMessage()
                .contains("is a device pointer; the cpu backend needs host data"));
        assertThrows(UnsupportedOperationException.class, () -> cpu.allocateDevice(8));
        assertThrows(IllegalArgumentException.class, () -> Tensor.onDevice(0x1002, 8), "misaligned");
        assertThrows(IllegalArgumentException.class, () -> Tensor.onDevice(0x1000), "no shape");
        LossInputException size = assertThrows(LossInputException.class, () -> cuda.compute(Loss.of("mse"),
                Inputs.of(new float[8], new float[8]).gradientInto("input", Tensor.onDevice(0x1000, 7))));
        assertTrue(size.getMessage().contains("does not fit"), size.getMessage());
    }

    @Test
    void deviceBuffersComeFromThePoolAndGoBack() throws InterruptedException {
        CudaBackend backend = (CudaBackend) cuda.backend();
        float[] x = {0.25f, -1.5f, 3f, 0.125f, 2f};
        float[] t = {0f, -1f, 2.5f, 0.5f, 1f};
        LossResult expected = cuda.compute(Loss.of("huber"), Inputs.of(x, t));
        long before = backend.poolBlocksHandedOut();
        try (DeviceBuffer dx = cuda.allocateDevice(5); DeviceBuffer dt = cuda.allocateDevice(5);
             DeviceBuffer dg = cuda.allocateDevice(8)) {
            assertEquals(before + 3, backend.poolBlocksHandedOut());
            dx.copyFrom(x);
            dt.copyFrom(t);
            LossResult r = cuda.compute(Loss.of("huber"), Inputs.of(dx.tensor(), dt.tensor(5)).gradientInto("input", dg.tensor(5)));
            assertEquals(expected.value(), r.value());
            float[] g = new float[5];
            dg.copyTo(g);
            assertBits("gradient in a pool buffer", expected.gradientArray("input"), g);
            assertThrows(IllegalArgumentException.class, () -> dg.tensor(3, 3));
        }
        assertEquals(before, backend.poolBlocksHandedOut(), "closing gives the blocks back");
        // the safety net: a buffer that is only dropped goes back once the cleaner has seen it
        dropBuffers(cuda, 4);
        long deadline = System.nanoTime() + 10_000_000_000L;
        while (backend.poolBlocksHandedOut() > before && System.nanoTime() < deadline) {
            System.gc();
            Thread.sleep(20);
        }
        assertEquals(before, backend.poolBlocksHandedOut(), "the cleaner gave the dropped buffers back");
        try (LossEngine other = openCuda()) {
            DeviceBuffer b = other.allocateDevice(16);
            other.close();
            assertThrows(IllegalStateException.class, b::pointer, "the engine's close frees its buffers");
            b.close();
        }
    }

    private static void dropBuffers(LossEngine engine, int n) {
        for (int i = 0; i < n; i++) {
            assertNotEquals(0, engine.allocateDevice(1000 + i).pointer());
        }
    }

    private static void assertBits(String what, double[] expected, double[] actual) {
        for (int i = 0; i < expected.length; i++) {
            if (Double.doubleToRawLongBits(expected[i]) != Double.doubleToRawLongBits(actual[i])) {
                fail(what + "[" + i + "] = " + actual[i] + " expected " + expected[i]);
            }
        }
    }

    private static void assertBits(String what, float[] expected, float[] actual) {
        assertEquals(expected.length, actual.length, what + " length");
        for (int i = 0; i < expected.length; i++) {
            if (Float.floatToRawIntBits(expected[i]) != Float.floatToRawIntBits(actual[i])) {
                fail(what + "[" + i + "] = " + actual[i] + " expected " + expected[i] + " (host operands)");
            }
        }
    }
    /**
     * linear-cross-entropy's per-row lse into a device destination and the NONE upstream gradient from device
     * memory (EXACT and FAST): the same bits as the call with host ones, ignored and shifted-out rows' lse too.
     */
    @Test
    void lmHeadLseAndUpstreamGradientOnTheDevice() {
        try {
            jcuda.jcublas.JCublas2.initialize();
        } catch (LinkageError e) {
            Assumptions.assumeTrue(System.getenv("CI") != null, "no libcublas.so.12 here: " + e.getMessage());
            throw e;
        }
        int n = 8;
        int d = 8;
        int v = 13;
        java.util.SplittableRandom r = new java.util.SplittableRandom(17);
        float[] h = new float[n * d];
        float[] w = new float[v * d];
        float[] u = new float[n];
        long[] y = new long[n];
        for (int i = 0; i < h.length; i++) {
            h[i] = (float) (r.nextInt(-4096, 4096) / 2048.0);
        }
        for (int i = 0; i < w.length; i++) {
            w[i] = (float) (r.nextInt(-4096, 4096) / 4096.0);
        }
        for (int i = 0; i < n; i++) {
            u[i] = (float) (r.nextInt(-8, 9) / 4.0);
            y[i] = r.nextInt(v);
        }
        y[2] = -100;
        for (losskit.api.Precision precision : losskit.api.Precision.values()) {
            Loss loss = Loss.of("linear-cross-entropy").reduction(Reduction.NONE).precision(precision)
                    .with(losskit.api.Param.SOFTCAP, 3.0).with(losskit.api.Param.Z_LOSS, 0.01)
                    .with(losskit.api.Param.SHIFT, 4);
            float[] lse = new float[n];
            Inputs host = Inputs.empty().with("hidden", h, n, d).with("weight", w, v, d).with("target", Tensor.labels(y))
                    .lseInto(lse).lossesGradient(u);
            LossResult expected = cuda.compute(loss, host);
            long lseDev = alloc(4L * n);
            Inputs dev = Inputs.empty().with("hidden", onDevice(Tensor.of(h, n, d))).with("weight", w, v, d)
                    .with("target", Tensor.labels(y)).lseInto(Tensor.onDevice(lseDev, n))
                    .lossesGradient(onDevice(Tensor.of(u)));
            LossResult actual = cuda.compute(loss, dev);
            assertArrayEquals(lse, get(lseDev, n), precision + ": lse");
            assertNull(actual.lseArray(), "a device lse has no host view");
            for (float f : lse) {
                assertTrue(Float.isFinite(f) && f > 0, precision + ": " + java.util.Arrays.toString(lse));
            }
            assertArrayEquals(expected.gradientArray("hidden"), actual.gradientArray("hidden"), precision + ": dh");
            assertArrayEquals(expected.gradientArray("weight"), actual.gradientArray("weight"), precision + ": dW");
            assertEquals(expected.zLossValue(), actual.zLossValue(), precision + ": z term");
            assertTrue(expected.zLossValue() > 0, precision + ": z term " + expected.zLossValue());
        }
    }
}
