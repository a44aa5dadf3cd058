package losskit.emu;

import static jcuda.driver.JCudaDriver.cuCtxCreate;
import static jcuda.driver.JCudaDriver.cuCtxDestroy;
import static jcuda.driver.JCudaDriver.cuCtxGetCurrent;
import static jcuda.driver.JCudaDriver.cuCtxSynchronize;
import static jcuda.driver.JCudaDriver.cuDeviceGetAttribute;
import static jcuda.driver.JCudaDriver.cuLaunchKernel;
import static jcuda.driver.JCudaDriver.cuMemAlloc;
import static jcuda.driver.JCudaDriver.cuMemFree;
import static jcuda.driver.JCudaDriver.cuMemcpyDtoH;
import static jcuda.driver.JCudaDriver.cuMemcpyHtoD;
import static jcuda.driver.JCudaDriver.cuMemsetD32;
import static jcuda.driver.JCudaDriver.cuModuleGetFunction;
import static jcuda.driver.JCudaDriver.cuModuleLoadData;
import static losskit.emu.EmuSupport.assertCudaError;
import static losskit.emu.EmuSupport.image;
import static losskit.emu.EmuSupport.ptxText;
import static losskit.emu.EmuSupport.resultOf;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import jcuda.Pointer;
import jcuda.driver.CUcontext;
import jcuda.driver.CUdevice_attribute;
import jcuda.driver.CUdeviceptr;
import jcuda.driver.CUfunction;
import jcuda.driver.CUmodule;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The emulated driver's context and module rules that match a GPU's: two contexts on one device have
 * separate address spaces (a copy, memset or free naming the other context's device memory fails at the
 * call; a kernel given a pointer into it faults, sticky, like any illegal address), and a cubin (ELF)
 * loads only on a device its architecture runs on — same major, minor at most the device's — else
 * {@code CUDA_ERROR_NO_BINARY_FOR_GPU}, and then maps to its kernels as PTX does.
 */
class EmulatedContextsAndCubinsTest {
    private CUcontext context;

    @BeforeEach
    void setUp() {
        EmuSupport.requireEmulator();
        context = EmuSupport.newContext();
    }

    @AfterEach
    void tearDown() {
        if (context != null) {
            cuCtxDestroy(context);
        }
    }

    @Test
    void anotherContextsDeviceMemoryIsNotAddressable() {
        CUdeviceptr mine = new CUdeviceptr();
        cuMemAlloc(mine, 1024);
        float[] written = new float[256];
        for (int i = 0; i < written.length; i++) {
            written[i] = i * 0.5f;
        }
        cuMemcpyHtoD(mine, Pointer.to(written), 1024);

        CUcontext other = new CUcontext();
        cuCtxCreate(other, 0, EmuSupport.device0()); // current from here on
        try {
            float[] host = new float[256];
            assertCudaError("CUDA_ERROR_INVALID_VALUE", () -> cuMemcpyHtoD(mine, Pointer.to(host), 1024));
            assertCudaError("CUDA_ERROR_INVALID_VALUE", () -> cuMemcpyDtoH(Pointer.to(host), mine, 1024));
            assertCudaError("CUDA_ERROR_INVALID_VALUE", () -> cuMemsetD32(mine, 0, 256));
            assertCudaError("CUDA_ERROR_INVALID_VALUE", () -> cuMemFree(mine));
            // its own memory works, in it
            CUdeviceptr own = new CUdeviceptr();
            cuMemAlloc(own, 1024);
            cuMemcpyHtoD(own, Pointer.to(written), 1024);
            CUmodule module = new CUmodule();
            cuModuleLoadData(module, image(ptxText("emu_test_kernels")));
            CUfunction read = new CUfunction();
            cuModuleGetFunction(read, module, "emu_test_read");
            Pointer fine = Pointer.to(Pointer.to(own), Pointer.to(new long[]{3}), Pointer.to(own));
            cuLaunchKernel(read, 1, 1, 1, 32, 1, 1, 0, null, fine, null);
            cuCtxSynchronize();
            // a kernel reading the first context's memory: the launch is queued, the access faults
            Pointer foreign = Pointer.to(Pointer.to(mine), Pointer.to(new long[]{3}), Pointer.to(own));
            assertEquals("CUDA_SUCCESS", resultOf(() -> cuLaunchKernel(read, 1, 1, 1, 32, 1, 1, 0, null, foreign, null)));
            assertCudaError("CUDA_ERROR_ILLEGAL_ADDRESS", () -> cuCtxSynchronize());
        } finally {
            cuCtxDestroy(other); // pops it: the first context is current again
        }
        CUcontext current = new CUcontext();
        cuCtxGetCurrent(current);
        assertEquals(context, current);
        float[] back = new float[256];
        cuMemcpyDtoH(Pointer.to(back), mine, 1024);
        assertArrayEquals(written, back, "the owner's memory is untouched and usable in the owner");
        cuMemFree(mine);
    }

    private static byte[] resource(String path) {
        try (InputStream in = EmulatedContextsAndCubinsTest.class.getResourceAsStream(path)) {
            Assumptions.assumeTrue(in != null || System.getenv("CI") != null, "this build has no " + path + " (no nvcc)");
            return in.readAllBytes();
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
    }

    @Test
    void aCubinLoadsOnlyWhereItsArchitectureRuns() {
        int[] major = new int[1];
        int[] minor = new int[1];
        cuDeviceGetAttribute(major, CUdevice_attribute.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, EmuSupport.device0());
        cuDeviceGetAttribute(minor, CUdevice_attribute.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, EmuSupport.device0());
        String ptx = new String(resource("/losskit/ptx/finish.ptx"), StandardCharsets.UTF_8);
        Matcher entry = Pattern.compile("(?m)^\\.visible \\.entry (\\w+)\\(").matcher(ptx);
        entry.find();
        String kernel = entry.group(1);
        int loaded = 0;
        int refused = 0;
        for (int sm : new int[]{80, 86, 89, 90}) {
            byte[] cubin = resource("/losskit/cubin/sm_" + sm + "/finish.cubin");
            CUmodule m = new CUmodule();
            String result = resultOf(() -> cuModuleLoadData(m, cubin));
            boolean runs = sm / 10 == major[0] && sm % 10 <= minor[0];
            assertEquals(runs ? "CUDA_SUCCESS" : "CUDA_ERROR_NO_BINARY_FOR_GPU", result,
                    "sm_" + sm + " cubin on a " + major[0] + "." + minor[0] + " device");
            if (runs) {
                cuModuleGetFunction(new CUfunction(), m, kernel); // mapped to its kernels, as PTX is
                loaded++;
            } else {
                refused++;
            }
        }
        if (major[0] == 8 && minor[0] == 6) { // surefire's emulated device: both cases are exercised
            assertEquals(2, loaded, "sm_80 and sm_86 run on 8.6");
            assertEquals(2, refused, "sm_89 and sm_90 do not");
        }
    }
}
