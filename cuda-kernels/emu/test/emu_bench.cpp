// Measures the emulator's cost per CUDA thread per barrier: launches emu_test_barriers (two
// __syncthreads per iteration) through the driver API and divides the time by threads * barriers.
// Built and run by `scripts/build-emu.sh --bench`. TEST SUPPORT ONLY.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "../driver/cuda_api.h"

extern "C" {
CUresult cuInit(unsigned int);
CUresult cuDeviceGet(CUdevice*, int);
CUresult cuCtxCreate_v2(CUcontext*, unsigned int, CUdevice);
CUresult cuCtxDestroy_v2(CUcontext);
CUresult cuModuleLoadData(CUmodule*, const void*);
CUresult cuModuleGetFunction(CUfunction*, CUmodule, const char*);
CUresult cuMemAlloc_v2(CUdeviceptr*, size_t);
CUresult cuMemFree_v2(CUdeviceptr);
CUresult cuLaunchKernel(CUfunction, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, CUstream,
                        void**, void**);
CUresult cuCtxSynchronize();
}

// The emulator reads only the entry list of an image, so a bench needs no nvcc: this is the
// declaration nvcc emits for emu_test_barriers(int32_t, float*).
static const char kPtx[] =
    ".version 8.0\n.target sm_75\n.address_size 64\n"
    ".visible .entry emu_test_barriers(.param .u32 p0, .param .u64 p1)\n{\n ret;\n}\n";

#define CHECK(call)                                                        \
    do {                                                                   \
        CUresult r_ = (call);                                              \
        if (r_ != 0) {                                                     \
            std::fprintf(stderr, "%s failed: %d\n", #call, r_);            \
            return 1;                                                      \
        }                                                                  \
    } while (0)

int main() {
    CUdevice dev;
    CUcontext ctx;
    CUmodule mod;
    CUfunction fn;
    CHECK(cuInit(0));
    CHECK(cuDeviceGet(&dev, 0));
    CHECK(cuCtxCreate_v2(&ctx, 0, dev));
    CHECK(cuModuleLoadData(&mod, kPtx));
    CHECK(cuModuleGetFunction(&fn, mod, "emu_test_barriers"));
    CUdeviceptr out;
    CHECK(cuMemAlloc_v2(&out, 16 * 1024 * sizeof(float)));
    std::printf("%-8s %-7s %-11s %s\n", "threads", "blocks", "barriers", "us per thread per barrier");
    for (unsigned threads : {32u, 256u, 1024u}) {
        const unsigned blocks = 4;
        int iterations = 2000;
        void* params[] = {&iterations, &out};
        CHECK(cuLaunchKernel(fn, blocks, 1, 1, threads, 1, 1, 0, nullptr, params, nullptr));  // warm-up
        double best = 1e30;
        for (int rep = 0; rep < 3; ++rep) {
            const auto t0 = std::chrono::steady_clock::now();
            CHECK(cuLaunchKernel(fn, blocks, 1, 1, threads, 1, 1, 0, nullptr, params, nullptr));
            CHECK(cuCtxSynchronize());
            const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
            best = std::min(best, s);
        }
        const double per = best * 1e6 / (double(threads) * blocks * 2.0 * iterations);
        std::printf("%-8u %-7u %-11d %.4f\n", threads, blocks, 2 * iterations, per);
    }
    CHECK(cuMemFree_v2(out));
    CHECK(cuCtxDestroy_v2(ctx));
    return 0;
}
