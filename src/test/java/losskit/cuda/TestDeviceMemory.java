package losskit.cuda;

import static jcuda.driver.JCudaDriver.cuCtxSetCurrent;
import static jcuda.driver.JCudaDriver.cuDeviceGet;
import static jcuda.driver.JCudaDriver.cuDevicePrimaryCtxRelease;
import static jcuda.driver.JCudaDriver.cuDevicePrimaryCtxRetain;
import static jcuda.driver.JCudaDriver.cuMemAlloc;
import static jcuda.driver.JCudaDriver.cuMemFree;

import java.util.ArrayList;
import java.util.List;
import jcuda.driver.CUcontext;
import jcuda.driver.CUdevice;
import jcuda.driver.CUdeviceptr;

/**
 * Device memory a test owns, in the primary context of device 0 (the one the engines share): retained on
 * creation, allocations freed and the context released by {@link #close()} — also after a kernel fault
 * poisoned the context, so that it is destroyed once the engines released it too and later test classes get a
 * clean one.
 */
public final class TestDeviceMemory implements AutoCloseable {
    private final CUdevice device = new CUdevice();
    private final CUcontext context = new CUcontext();
    private final List<CUdeviceptr> allocations = new ArrayList<>();

    public TestDeviceMemory() {
        cuDeviceGet(device, 0);
        cuDevicePrimaryCtxRetain(context, device);
    }

    /** Makes the primary context current on this thread (JCuda calls of the test need it). */
    public void makeCurrent() {
        cuCtxSetCurrent(context);
    }

    /** {@code bytes} of device memory (at least 1), freed by {@link #close()}. */
    public CUdeviceptr allocate(long bytes) {
        makeCurrent();
        CUdeviceptr p = new CUdeviceptr();
        cuMemAlloc(p, Math.max(bytes, 1));
        allocations.add(p);
        return p;
    }

    @Override
    public void close() {
        try {
            makeCurrent();
            allocations.forEach(p -> cuMemFree(p));
        } catch (RuntimeException e) {
            // a poisoned context: its destruction frees them
        } finally {
            allocations.clear();
            cuDevicePrimaryCtxRelease(device);
        }
    }
}
