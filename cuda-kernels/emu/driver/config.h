// The emulator's environment switches, read once at cuInit. README.md lists them for test authors.
//
// TEST SUPPORT ONLY: nothing here is part of the LossKit product.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace emu {

// The order in which a block's threads run between synchronisation points (and in which blocks
// run). Different orders expose different races: a missing __syncthreads shows only when a reader
// runs before the writer it depends on.
struct Schedule {
    // RandomMem: Random, and in addition a fiber may be switched out at every global memory access
    // and atomic (a seeded coin flip), so that interleavings between barriers are explored too. Needs
    // the instrumented kernel libraries (LOSSKIT_EMU_RACECHECK=1): only they report their accesses.
    enum Kind { Forward, Reverse, Random, RandomMem } kind = Forward;
    uint64_t seed = 0;  // Random and RandomMem only
    std::string name() const;
};

// A "fail the k-th call" plan: 1-based call numbers or ranges (`3`, `2,5`, `4-6`, `7-` = from the 7th on).
struct CallPlan {
    std::vector<std::pair<uint64_t, uint64_t>> ranges;  // inclusive; UINT64_MAX = open-ended
    bool empty() const { return ranges.empty(); }
    bool hits(uint64_t call) const {
        for (const auto& r : ranges)
            if (call >= r.first && call <= r.second) return true;
        return false;
    }
};

// The call whose count arms a one-off event (a sticky fault, a lost device): `launch:k`, `copy:k`
// (any cuMemcpy*), `alloc:k` (cuMemAlloc) or `call:k` (every driver call made with a context current).
struct Trigger {
    enum What { None, Launch, Copy, Alloc, Call } what = None;
    uint64_t at = 0;
    bool armed() const { return what != None; }
};

struct Config {
    int device_count = 1;              // LOSSKIT_EMU_DEVICE_COUNT
    int driver_version = 13000;        // LOSSKIT_EMU_DRIVER_VERSION, e.g. 12060 for CUDA 12.6
    int cc_major = 8, cc_minor = 6;    // LOSSKIT_EMU_CC, e.g. 7.5
    size_t device_memory = size_t(8) << 30;  // LOSSKIT_EMU_DEVICE_MEMORY, bytes, K/M/G suffixes
    int sm_count = 8;                  // LOSSKIT_EMU_SM_COUNT
    std::vector<Schedule> schedules{Schedule{}};  // LOSSKIT_EMU_SCHEDULE
    bool compare_schedules = true;     // LOSSKIT_EMU_SCHEDULE_COMPARE=0 turns the comparison off
    CallPlan fail_alloc;               // LOSSKIT_EMU_FAIL_ALLOC: cuMemAlloc calls that fail
    CallPlan fail_launch;              // LOSSKIT_EMU_FAIL_LAUNCH: cuLaunchKernel calls that fail
    CallPlan fail_copy;                // LOSSKIT_EMU_FAIL_COPY: cuMemcpy* calls that fail
    Trigger sticky_at;                 // LOSSKIT_EMU_STICKY_AT: poisons the context (CUDA_ERROR_ILLEGAL_ADDRESS)
    Trigger device_lost_at;            // LOSSKIT_EMU_DEVICE_LOST_AT: the device falls off the bus
    std::string report;                // LOSSKIT_EMU_REPORT: "stderr" or a file written at exit
    size_t stack_bytes = 256 << 10;    // LOSSKIT_EMU_STACK_KB, per CUDA thread
    std::vector<std::string> kernel_paths;  // LOSSKIT_EMU_KERNELS (files or directories, ':'-separated)
    bool catch_faults = true;          // LOSSKIT_EMU_CATCH_FAULTS=0 lets a kernel's SIGSEGV crash
    bool async_delay = false;          // LOSSKIT_EMU_ASYNC=delay:SEED: seeded completion delays
    uint64_t async_seed = 0;
    bool quiet = false;                // LOSSKIT_EMU_QUIET=1 drops the diagnostics on stderr
    bool racecheck = false;            // LOSSKIT_EMU_RACECHECK=1: instrumented kernels + race detector
    std::vector<std::string> errors;   // malformed switches: cuInit fails and prints them
};

// Parses the environment on first use.
const Config& config();

// Highest PTX ISA (major * 10 + minor) a driver of this version JIT-compiles.
int max_ptx_isa(int driver_version);

}  // namespace emu
