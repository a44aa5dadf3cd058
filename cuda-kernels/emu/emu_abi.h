/*
 * The C ABI between the CPU builds of the kernels (one shared library per .cu file, compiled with
 * cuda_emu.h) and the emulated driver libcuda.so.1, which owns the scheduler.
 *
 * TEST SUPPORT ONLY: nothing here is part of the LossKit product. See cuda-kernels/emu/README.md.
 *
 * Plain C so that the contract is obvious and both sides can be built by different compilers or
 * flags. Bump LOSSKIT_EMU_ABI_VERSION when a struct or signature changes: the driver refuses a
 * kernel library built against another version instead of running it with a mismatched layout.
 */
#ifndef LOSSKIT_EMU_ABI_H
#define LOSSKIT_EMU_ABI_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define LOSSKIT_EMU_ABI_VERSION 1

/* Same layout as CUDA's uint3 (threadIdx, blockIdx) and dim3 (blockDim, gridDim). */
typedef struct uint3 {
    unsigned int x, y, z;
} uint3;

/* What a kernel sees of the CUDA thread it runs as. The scheduler points losskit_emu_current at the
 * running fiber's view before every switch into it, so reading threadIdx costs one load. */
typedef struct losskit_emu_thread_view {
    uint3 thread_idx;
} losskit_emu_thread_view;

/* Per-block values, shared by every thread of the running block. */
typedef struct losskit_emu_block_view {
    uint3 block_idx;
    uint3 block_dim;
    uint3 grid_dim;
} losskit_emu_block_view;

/* Kernels run on one OS thread at a time (the driver serialises launches), so plain globals are
 * enough; thread_local would cost a __tls_get_addr call per threadIdx read from another library. */
extern losskit_emu_thread_view* losskit_emu_current;
extern losskit_emu_block_view losskit_emu_block;

/* Warp collective kinds (argument `kind` of losskit_emu_warp_op). */
enum {
    LOSSKIT_EMU_SHFL_IDX = 0,  /* __shfl_sync */
    LOSSKIT_EMU_SHFL_UP = 1,   /* __shfl_up_sync */
    LOSSKIT_EMU_SHFL_DOWN = 2, /* __shfl_down_sync */
    LOSSKIT_EMU_SHFL_BFLY = 3, /* __shfl_xor_sync */
    LOSSKIT_EMU_VOTE_BALLOT = 4,
    LOSSKIT_EMU_VOTE_ANY = 5,
    LOSSKIT_EMU_VOTE_ALL = 6,
    LOSSKIT_EMU_SYNCWARP = 7,
    LOSSKIT_EMU_REDUCE_ADD = 8, /* __reduce_*_sync on unsigned values */
    LOSSKIT_EMU_REDUCE_MIN = 9,
    LOSSKIT_EMU_REDUCE_MAX = 10,
    LOSSKIT_EMU_REDUCE_AND = 11,
    LOSSKIT_EMU_REDUCE_OR = 12,
    LOSSKIT_EMU_REDUCE_XOR = 13,
    LOSSKIT_EMU_REDUCE_MIN_SIGNED = 14,
    LOSSKIT_EMU_REDUCE_MAX_SIGNED = 15,
    LOSSKIT_EMU_WARP_KIND_COUNT
};

/* Barrier flavours (argument `kind` of losskit_emu_barrier). */
enum {
    LOSSKIT_EMU_BAR_SYNC = 0,  /* __syncthreads */
    LOSSKIT_EMU_BAR_COUNT = 1, /* __syncthreads_count */
    LOSSKIT_EMU_BAR_AND = 2,   /* __syncthreads_and */
    LOSSKIT_EMU_BAR_OR = 3     /* __syncthreads_or */
};

/* `site` is "file:line" of the call in the kernel source: it identifies "the same intrinsic" for
 * the CUDA rule that all lanes named in a mask execute the same collective, and it is what the
 * diagnostics print. */
int losskit_emu_barrier(const char* site, int kind, int predicate);

/* One lane's part of a warp collective. `value` carries the lane's operand bits (shuffles, reduce),
 * `predicate` its vote, `b` the shuffle lane/offset/mask and `c` the PTX clamp/segment operand.
 * Returns the result bits for this lane. Errors (mask violations, reading a lane that does not take
 * part) end the launch with CUDA_ERROR_ILLEGAL_INSTRUCTION and never return. */
uint64_t losskit_emu_warp_op(const char* site, int kind, unsigned mask, uint64_t value, int predicate,
                             int b, int c);

/* Lanes of the calling warp that exist and have not exited. */
unsigned losskit_emu_activemask(void);

/* __threadfence(): for the race detector (LOSSKIT_EMU_RACECHECK), the fence that, followed by an
 * atomic another block observes, orders this block's earlier accesses before that block's later
 * ones. A no-op otherwise. */
void losskit_emu_fence(void);

/* An atomic read-modify-write of `size` bytes at `address`, called by the atomics of the
 * race-checking build (cuda_emu.h) before they run; `pc` is the call site in the kernel. */
void losskit_emu_atomic_access(void* address, unsigned size, const void* pc);

/* Ends the launch with `result` (a CUresult) and a message; never returns. Used by __trap() and
 * device-side assert(). */
void losskit_emu_abort_launch(int result, const char* site, const char* message)
    __attribute__((noreturn));

/* Ends the launch with CUDA_ERROR_MISALIGNED_ADDRESS, as a GPU does for a vector (or any) load or
 * store at an address not aligned to its width; never returns. `site` is "file:line" of the access,
 * `access` says what it was ("16-byte load (__ldg) of float4", "store of type 'float4'"...). Called
 * by the alignment checks of cuda_emu.h (__ldg & co.) and by the UBSan alignment handlers that
 * emu_library.h defines for kernels built with -fsanitize=alignment. */
void losskit_emu_misaligned(const char* site, const void* address, unsigned alignment, const char* access)
    __attribute__((noreturn));

/* ---- registration of the CPU builds of kernels ---------------------------------------------- */

/* Runs one CUDA thread of `kernel`: unpacks `params` (cuLaunchKernel's kernelParams, each entry
 * pointing at one argument value) with the types of the kernel's own C++ signature and calls it. */
typedef void (*losskit_emu_thread_fn)(void* kernel, void* const* params);

typedef struct losskit_emu_kernel_desc {
    const char* name;                 /* the extern "C" symbol, equal to the PTX .entry name */
    void* kernel;                     /* the CPU build of the kernel */
    losskit_emu_thread_fn run_thread; /* typed trampoline, deduced from the signature */
    int param_count;
    const uint32_t* param_sizes;      /* sizeof each parameter, compared with the PTX .param sizes */
    const uint8_t* param_is_pointer;  /* pointers are what the multi-schedule check snapshots */
} losskit_emu_kernel_desc;

typedef struct losskit_emu_library_desc {
    int abi_version;   /* LOSSKIT_EMU_ABI_VERSION when the library was built */
    const char* source; /* the .cu file it was built from */
    char* shared_begin; /* the library's __shared__ variables: poisoned with NaN before each block */
    char* shared_end;
    int kernel_count;
    const losskit_emu_kernel_desc* kernels;
} losskit_emu_library_desc;

/* Called by each kernel library's static initialiser when the driver dlopen()s it. */
void losskit_emu_register_library(const losskit_emu_library_desc* library);

#ifdef __cplusplus
}
#endif

#endif /* LOSSKIT_EMU_ABI_H */
