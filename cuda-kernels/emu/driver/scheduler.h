// Runs a grid of CPU-built CUDA threads: each block's threads are fibers (Boost.Context fcontext)
// on the calling OS thread, switched only at __syncthreads and warp collectives (under the random-mem
// schedule also at global memory accesses, atomics and fences); blocks run one after another. With
// LOSSKIT_EMU_RACECHECK it feeds the race detector (racecheck.h). Also turns a fault inside a kernel (guard page, stack overflow, integer division
// by zero) into a launch error instead of a crashed JVM.
//
// TEST SUPPORT ONLY: nothing here is part of the LossKit product.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "../emu_abi.h"
#include "config.h"
#include "cuda_api.h"

namespace emu {

struct GridLaunch {
    const losskit_emu_kernel_desc* kernel = nullptr;
    const losskit_emu_library_desc* library = nullptr;
    uint3 grid{1, 1, 1};
    uint3 block{1, 1, 1};
    void* const* params = nullptr;
    Schedule schedule;
    // Names a faulting address in terms of the allocations (called outside the signal handler).
    std::function<std::string(uintptr_t)> describe_address;
    // LOSSKIT_EMU_RACECHECK: run the race detector; the allocation (base, size) holding an address.
    bool racecheck = false;
    std::function<bool(uintptr_t, uintptr_t*, size_t*)> find_allocation;
};

struct LaunchOutcome {
    CUresult result = CUDA_SUCCESS;
    std::string message;  // what went wrong, where (kernel, block, thread, source line)
};

// Not reentrant: the driver serialises launches.
LaunchOutcome run_grid(const GridLaunch& launch, size_t stack_bytes, bool catch_faults);

}  // namespace emu
