package losskit.cuda;

import static jcuda.driver.JCudaDriver.cuCtxCreate;
import static jcuda.driver.JCudaDriver.cuCtxDestroy;
import static jcuda.driver.JCudaDriver.cuCtxGetCurrent;
import static jcuda.driver.JCudaDriver.cuCtxSetCurrent;
import static jcuda.driver.JCudaDriver.cuDeviceGet;
import static jcuda.driver.JCudaDriver.cuMemAlloc;
import static jcuda.driver.JCudaDriver.cuMemFree;
import static jcuda.driver.JCudaDriver.cuMemcpyDtoH;
import static jcuda.driver.JCudaDriver.cuMemcpyHtoD;
import static jcuda.driver.JCudaDriver.cuMemsetD32;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.concurrent.atomic.AtomicReference;
import jcuda.Pointer;
import jcuda.driver.CUcontext;
import jcuda.driver.CUdevice;
import jcuda.driver.CUdeviceptr;
import losskit.api.BackendChoice;
import losskit.api.DeviceBuffer;
import losskit.api.Inputs;
import losskit.api.Loss;
import losskit.api.LossEngine;
import losskit.api.LossInputException;
import losskit.api.LossResult;
import losskit.api.PendingLoss;
import losskit.api.Tensor;
import org.junit.jupiter.api.Test;

/**
 * An application that created its own CUDA context ({@code cuCtxCreate}, as the JCuda samples do) and calls
 * LossKit on the same thread: after every kind of call — host arrays, LossKit device buffers, an async value,
 * a call that throws — its context is still the current one and its own device memory is still usable. On a
 * GPU, as on the emulated driver, the application's pointers are not valid under another context (contexts
 * have separate address spaces), so a LossKit that left its primary context current would make them fail.
 * The values are checked against the CPU backend, so the calls really ran.
 */
class CudaCallerContextTest {
    private static final float[] X = {0.25f, -1.5f, 3f, 0.125f, 2f, -0.75f, 1.5f};
    private static final float[] T = {0f, -1f, 2.5f, 0.5f, 1f, -1f, 1f};

    private static CUcontext current() {
        CUcontext c = new CUcontext();
        cuCtxGetCurrent(c);
        return c;
    }

    /** The application's context is current and its memory reads back what it wrote (and takes a memset). */
    private static void assertApplicationIntact(String after, CUcontext app, CUdeviceptr mine, int[] pattern) {
        assertEquals(app, current(), "after " + after + ": the application's context is no longer current");
        int[] back = new int[pattern.length];
        cuMemcpyDtoH(Pointer.to(back), mine, 4L * back.length);
        assertArrayEquals(pattern, back, "after " + after + ": the application's memory");
    }

    @Test
    void anApplicationContextStaysCurrentAndItsMemoryUsable() {
        LossEngine cpu = LossEngine.create(BackendChoice.CPU);
        LossResult expected = cpu.compute(Loss.of("huber"), Inputs.of(X, T));
        LossEngine cuda = CudaDeviceDataTest.openCuda();
        CUdevice device = new CUdevice();
        cuDeviceGet(device, 0);
        CUcontext app = new CUcontext();
        cuCtxCreate(app, 0, device); // current on this thread from here on
        CUdeviceptr mine = new CUdeviceptr();
        int[] pattern = new int[64];
        try {
            cuMemAlloc(mine, 4L * pattern.length);
            for (int i = 0; i < pattern.length; i++) {
                pattern[i] = 0x5eed0000 + i;
            }
            cuMemcpyHtoD(mine, Pointer.to(pattern), 4L * pattern.length);
            assertApplicationIntact("setup", app, mine, pattern);

            LossResult r = cuda.compute(Loss.of("huber"), Inputs.of(X, T));
            assertEquals(expected.value(), r.value(), 1e-6 * Math.abs(expected.value()));
            assertApplicationIntact("compute on host arrays", app, mine, pattern);

            try (DeviceBuffer dx = cuda.allocateDevice(X.length); DeviceBuffer dt = cuda.allocateDevice(X.length);
                 DeviceBuffer dg = cuda.allocateDevice(X.length)) {
                assertApplicationIntact("allocateDevice", app, mine, pattern);
                dx.copyFrom(X);
                dt.copyFrom(T);
                assertApplicationIntact("DeviceBuffer.copyFrom", app, mine, pattern);
                Inputs onDevice = Inputs.of(dx.tensor(), dt.tensor()).gradientInto("input", dg.tensor());
                LossResult d = cuda.compute(Loss.of("huber"), onDevice);
                assertEquals(r.value(), d.value(), "device data gives the host path's value");
                assertApplicationIntact("compute on device data", app, mine, pattern);
                try (PendingLoss p = cuda.computeAsync(Loss.of("huber"), onDevice)) {
                    assertApplicationIntact("computeAsync", app, mine, pattern);
                    p.isDone();
                    assertEquals(r.value(), p.value());
                    assertApplicationIntact("PendingLoss.value", app, mine, pattern);
                }
                assertApplicationIntact("PendingLoss.close", app, mine, pattern);
                float[] g = new float[X.length];
                dg.copyTo(g);
                assertArrayEquals(expected.gradientArray("input"), g, 1e-6f);
                assertApplicationIntact("DeviceBuffer.copyTo", app, mine, pattern);
            }
            assertApplicationIntact("DeviceBuffer.close", app, mine, pattern);

            // a call that fails: the kernel finds a probability outside [0, 1] and the call throws
            assertThrows(LossInputException.class,
                    () -> cuda.compute(Loss.of("bce"), Inputs.of(new float[]{0.5f, 1.5f, 0.2f}, new float[]{0, 1, 0})));
            assertApplicationIntact("a call that threw", app, mine, pattern);

            // an async value whose call found a bad label: reading the value reads the label from the device
            try (DeviceBuffer logits = cuda.allocateDevice(4); DeviceBuffer labels = cuda.allocateDevice(2)) {
                logits.copyFrom(new float[]{0.1f, 0.2f, 0.3f, 0.4f});
                labels.copyFrom(new float[]{Float.intBitsToFloat(1), Float.intBitsToFloat(7)}); // int32 1 and 7
                Inputs bad = Inputs.empty().with("input", Tensor.onDevice(logits.pointer(), 2, 2))
                        .with("target", Tensor.labelsOnDevice(labels.pointer(), Tensor.DType.INT32, 2));
                try (PendingLoss p = cuda.evaluateAsync(Loss.of("cross-entropy"), bad)) { // value only: queued
                    assertThrows(LossInputException.class, p::value);
                }
                assertApplicationIntact("PendingLoss.value that threw", app, mine, pattern);
            }

            cuMemsetD32(mine, 7, pattern.length);
            java.util.Arrays.fill(pattern, 7);
            assertApplicationIntact("a memset of the application's own", app, mine, pattern);
            cuda.close();
            assertApplicationIntact("LossEngine.close", app, mine, pattern);
        } finally {
            cuda.close();
            cpu.close();
            cuCtxSetCurrent(app); // whatever a failed check left current: the cleanup must not hide the failure
            cuMemFree(mine);
            cuCtxDestroy(app);
        }
    }

    @Test
    void aThreadWithoutAContextHasNoneAfterACall() throws InterruptedException {
        try (LossEngine cuda = CudaDeviceDataTest.openCuda()) {
            AtomicReference<Object> seen = new AtomicReference<>();
            Thread t = new Thread(() -> {
                try {
                    cuda.compute(Loss.of("mse"), Inputs.of(X, T));
                    seen.set(current());
                } catch (RuntimeException | Error e) {
                    seen.set(e);
                }
            });
            t.start();
            t.join();
            assertEquals(new CUcontext(), seen.get(), "LossKit left a context current on a thread that had none");
        }
    }
}
