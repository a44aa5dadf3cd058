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
    enum Kind { Forward, Reverse, Random } kind = Forward;
    uint64_t seed = 0;  // Random only
    std::string name() const;
};

struct Config {
    int device_count = 1;              // LOSSKIT_EMU_DEVICE_COUNT
    int driver_version = 13000;        // LOSSKIT_EMU_DRIVER_VERSION, e.g. 12060 for CUDA 12.6
    int cc_major = 8, cc_minor = 6;    // LOSSKIT_EMU_CC, e.g. 7.5
    size_t device_memory = size_t(8) << 30;  // LOSSKIT_EMU_DEVICE_MEMORY, bytes, K/M/G suffixes
    int sm_count = 8;                  // LOSSKIT_EMU_SM_COUNT
    std::vector<Schedule> schedules{Schedule{}};  // LOSSKIT_EMU_SCHEDULE
    bool compare_schedules = true;     // LOSSKIT_EMU_SCHEDULE_COMPARE=0 turns the comparison off
    std::vector<uint64_t> fail_alloc;  // LOSSKIT_EMU_FAIL_ALLOC: 1-based cuMemAlloc calls that fail
    std::vector<uint64_t> fail_launch; // LOSSKIT_EMU_FAIL_LAUNCH: 1-based cuLaunchKernel calls that fail
    std::string report;                // LOSSKIT_EMU_REPORT: "stderr" or a file written at exit
    size_t stack_bytes = 256 << 10;    // LOSSKIT_EMU_STACK_KB, per CUDA thread
    std::vector<std::string> kernel_paths;  // LOSSKIT_EMU_KERNELS (files or directories, ':'-separated)
    bool catch_faults = true;          // LOSSKIT_EMU_CATCH_FAULTS=0 lets a kernel's SIGSEGV crash
    bool quiet = false;                // LOSSKIT_EMU_QUIET=1 drops the diagnostics on stderr
    std::vector<std::string> errors;   // malformed switches: cuInit fails and prints them
};

// Parses the environment on first use.
const Config& config();

// Highest PTX ISA (major * 10 + minor) a driver of this version JIT-compiles.
int max_ptx_isa(int driver_version);

}  // namespace emu
