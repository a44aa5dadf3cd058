/*
 * cuda_emu.h: lets the project's CUDA kernels (the cuda-kernels/ .cu files) compile with g++ and run on the
 * CPU under the emulated driver (libcuda.so.1 built from cuda-kernels/emu/driver).
 *
 * TEST SUPPORT ONLY: nothing here is part of the LossKit product. See cuda-kernels/emu/README.md.
 *
 *   g++ -std=c++17 -O2 -fno-strict-aliasing -include cuda-kernels/emu/cuda_emu.h -x c++ file.cu
 *
 * Execution model (implemented by the driver's scheduler): each block's threads are cooperative
 * fibers on one OS thread and blocks run one after another. A thread runs uninterrupted from one
 * synchronisation point (__syncthreads, a warp collective) to the next, which is one of the
 * interleavings a GPU may produce. Consequences the definitions below rely on:
 *   - __shared__ variables are static storage, one copy reused by every block (the driver fills it
 *     with NaN bytes before each block, so reading an element nobody wrote shows up);
 *   - atomics are plain read-modify-write: nothing can interleave inside them;
 *   - memory fences only need to stop the compiler from caching values across them.
 * The race-checking build (LOSSKIT_EMU_RACECHECK defined, g++ -fsanitize=thread, see README.md)
 * reports every memory access to the driver's race detector; there atomics announce themselves as
 * atomic accesses (and are not instrumented as plain ones) and __threadfence as a fence.
 *
 * What the header deliberately does not provide, so that such code fails to compile here rather
 * than behave differently: `extern __shared__` (dynamic shared memory: size shared arrays with a
 * compile-time block size), `static __shared__`, half precision, cooperative groups, textures,
 * the pre-Volta non-_sync warp intrinsics (nvcc rejects those for sm_70+ as well).
 */
#ifndef LOSSKIT_CUDA_EMU_H
#define LOSSKIT_CUDA_EMU_H

#ifndef __cplusplus
#error "cuda_emu.h compiles CUDA sources as C++ (g++ -x c++)"
#endif

#include <math.h>
#include <stdint.h>
#include <stdio.h>

#include <cmath>
#include <cstring>
#include <type_traits>
#include <utility>

#include "emu_abi.h"

/* Kernels can test this (they should rarely need to). __CUDA_ARCH__ and __CUDACC__ stay undefined
 * on purpose: code guarded by them is GPU-only (inline PTX, CUDA headers). */
#define LOSSKIT_CUDA_EMU 1

/* ---- qualifiers ------------------------------------------------------------------------------ */

/* gen_registry.py preprocesses each .cu with LOSSKIT_EMU_SCAN defined and finds the kernels by this
 * marker, after macro expansion, so kernels stamped out by macros are registered too. */
#ifdef LOSSKIT_EMU_SCAN
#define __global__ __losskit_emu_global__
#else
#define __global__
#endif
#define __device__
#define __host__
#define __forceinline__ inline __attribute__((always_inline))
#define __noinline__ __attribute__((noinline))
#define __align__(n) __attribute__((aligned(n)))
/* Launch bounds are enforced from the PTX (.maxntid), exactly where a GPU enforces them. */
#define __launch_bounds__(...)
#define __grid_constant__
#define __constant__
#define __managed__
/* One section per kernel library, so the driver can find and poison every __shared__ variable. */
#define __shared__ static __attribute__((section("losskit_emu_shared")))

/* ---- vector types (CUDA's alignments, which vectorised loads rely on) ------------------------ */

#define LOSSKIT_EMU_VEC1(T, N, A)                                                                   \
    struct __attribute__((aligned(A))) N##1 { T x; };                                             \
    static inline N##1 make_##N##1(T x) { return N##1{x}; }
#define LOSSKIT_EMU_VEC2(T, N, A)                                                                   \
    struct __attribute__((aligned(A))) N##2 { T x, y; };                                          \
    static inline N##2 make_##N##2(T x, T y) { return N##2{x, y}; }
#define LOSSKIT_EMU_VEC3(T, N)                                                                      \
    struct N##3 { T x, y, z; };                                                                    \
    static inline N##3 make_##N##3(T x, T y, T z) { return N##3{x, y, z}; }
#define LOSSKIT_EMU_VEC4(T, N, A)                                                                   \
    struct __attribute__((aligned(A))) N##4 { T x, y, z, w; };                                    \
    static inline N##4 make_##N##4(T x, T y, T z, T w) { return N##4{x, y, z, w}; }
#define LOSSKIT_EMU_VECS(T, N, A1, A2, A4)                                                          \
    LOSSKIT_EMU_VEC1(T, N, A1) LOSSKIT_EMU_VEC2(T, N, A2) LOSSKIT_EMU_VEC4(T, N, A4)

LOSSKIT_EMU_VECS(signed char, char, 1, 2, 4)
LOSSKIT_EMU_VECS(unsigned char, uchar, 1, 2, 4)
LOSSKIT_EMU_VECS(short, short, 2, 4, 8)
LOSSKIT_EMU_VECS(unsigned short, ushort, 2, 4, 8)
LOSSKIT_EMU_VECS(int, int, 4, 8, 16)
LOSSKIT_EMU_VECS(unsigned int, uint, 4, 8, 16)
LOSSKIT_EMU_VECS(long, long, 8, 16, 16)
LOSSKIT_EMU_VECS(unsigned long, ulong, 8, 16, 16)
LOSSKIT_EMU_VECS(long long, longlong, 8, 16, 16)
LOSSKIT_EMU_VECS(unsigned long long, ulonglong, 8, 16, 16)
LOSSKIT_EMU_VECS(float, float, 4, 8, 16)
LOSSKIT_EMU_VECS(double, double, 8, 16, 16)
LOSSKIT_EMU_VEC3(signed char, char)
LOSSKIT_EMU_VEC3(unsigned char, uchar)
LOSSKIT_EMU_VEC3(short, short)
LOSSKIT_EMU_VEC3(unsigned short, ushort)
LOSSKIT_EMU_VEC3(int, int)
LOSSKIT_EMU_VEC3(long, long)
LOSSKIT_EMU_VEC3(unsigned long, ulong)
LOSSKIT_EMU_VEC3(long long, longlong)
LOSSKIT_EMU_VEC3(unsigned long long, ulonglong)
LOSSKIT_EMU_VEC3(float, float)
LOSSKIT_EMU_VEC3(double, double)
/* uint3 itself comes from emu_abi.h: it is the type of threadIdx in the driver ABI. */
static inline uint3 make_uint3(unsigned x, unsigned y, unsigned z) { return uint3{x, y, z}; }

struct dim3 {
    unsigned int x, y, z;
    constexpr dim3(unsigned int vx = 1, unsigned int vy = 1, unsigned int vz = 1) : x(vx), y(vy), z(vz) {}
    constexpr dim3(uint3 v) : x(v.x), y(v.y), z(v.z) {}
    constexpr operator uint3() const { return uint3{x, y, z}; }
};

/* ---- built-in variables ---------------------------------------------------------------------- */

#define threadIdx (static_cast<const uint3&>(losskit_emu_current->thread_idx))
#define blockIdx (static_cast<const uint3&>(losskit_emu_block.block_idx))
#define blockDim (static_cast<const uint3&>(losskit_emu_block.block_dim))
#define gridDim (static_cast<const uint3&>(losskit_emu_block.grid_dim))
static constexpr int warpSize = 32;

/* ---- synchronisation and warp collectives ----------------------------------------------------- */

#define LOSSKIT_EMU_STR_(x) #x
#define LOSSKIT_EMU_STR(x) LOSSKIT_EMU_STR_(x)
#define LOSSKIT_EMU_SITE (__FILE__ ":" LOSSKIT_EMU_STR(__LINE__))

namespace losskit_emu {

template <class T>
inline uint64_t to_bits(T v) {
    uint64_t bits = 0;
    std::memcpy(&bits, &v, sizeof(T));
    return bits;
}

template <class T>
inline T from_bits(uint64_t bits) {
    T v;
    std::memcpy(&v, &bits, sizeof(T));
    return v;
}

/* Integers narrower than int are promoted, as they are by CUDA's int overloads. */
template <class T>
using shfl_type = typename std::conditional<std::is_integral<T>::value && (sizeof(T) < 4), int, T>::type;

/* `c` is the PTX shfl.sync clamp operand CUDA derives from `width`: the segment mask in bits 8-12,
 * and for all modes but "up" the highest lane of the segment in bits 0-4. */
template <class T>
inline shfl_type<T> shfl(const char* site, int kind, unsigned mask, T var, int b, int width = warpSize) {
    using U = shfl_type<T>;
    static_assert(std::is_arithmetic<U>::value && (sizeof(U) == 4 || sizeof(U) == 8),
                  "__shfl_*_sync is defined for 32- and 64-bit arithmetic types");
    const int c = ((warpSize - width) << 8) | (kind == LOSSKIT_EMU_SHFL_UP ? 0 : 0x1f);
    return from_bits<U>(losskit_emu_warp_op(site, kind, mask, to_bits<U>(static_cast<U>(var)), 0, b, c));
}

inline int vote(const char* site, int kind, unsigned mask, bool predicate) {
    return static_cast<int>(losskit_emu_warp_op(site, kind, mask, 0, predicate ? 1 : 0, 0, 0));
}

inline void syncwarp(const char* site, unsigned mask = 0xffffffffu) {
    (void)losskit_emu_warp_op(site, LOSSKIT_EMU_SYNCWARP, mask, 0, 0, 0, 0);
}

/* __syncwarp() and __syncwarp(mask): `, ##__VA_ARGS__` keeps its comma under -std=c++17, so the
 * optional mask goes to a call operator instead. */
struct SyncwarpAt {
    const char* site;
    void operator()(unsigned mask = 0xffffffffu) const { syncwarp(site, mask); }
};

template <class T>
inline T reduce(const char* site, int unsigned_kind, int signed_kind, unsigned mask, T value) {
    static_assert(std::is_same<T, int>::value || std::is_same<T, unsigned>::value,
                  "__reduce_*_sync is defined for int and unsigned");
    const int kind = std::is_signed<T>::value && signed_kind >= 0 ? signed_kind : unsigned_kind;
    return static_cast<T>(losskit_emu_warp_op(site, kind, mask, static_cast<uint32_t>(value), 0, 0, 0));
}

}  // namespace losskit_emu

#define __syncthreads() ((void)losskit_emu_barrier(LOSSKIT_EMU_SITE, LOSSKIT_EMU_BAR_SYNC, 0))
#define __syncthreads_count(p) losskit_emu_barrier(LOSSKIT_EMU_SITE, LOSSKIT_EMU_BAR_COUNT, (p) ? 1 : 0)
#define __syncthreads_and(p) losskit_emu_barrier(LOSSKIT_EMU_SITE, LOSSKIT_EMU_BAR_AND, (p) ? 1 : 0)
#define __syncthreads_or(p) losskit_emu_barrier(LOSSKIT_EMU_SITE, LOSSKIT_EMU_BAR_OR, (p) ? 1 : 0)
#define __syncwarp(...) ::losskit_emu::SyncwarpAt{LOSSKIT_EMU_SITE}(__VA_ARGS__)

#define __shfl_sync(mask, ...) ::losskit_emu::shfl(LOSSKIT_EMU_SITE, LOSSKIT_EMU_SHFL_IDX, mask, __VA_ARGS__)
#define __shfl_up_sync(mask, ...) ::losskit_emu::shfl(LOSSKIT_EMU_SITE, LOSSKIT_EMU_SHFL_UP, mask, __VA_ARGS__)
#define __shfl_down_sync(mask, ...) ::losskit_emu::shfl(LOSSKIT_EMU_SITE, LOSSKIT_EMU_SHFL_DOWN, mask, __VA_ARGS__)
#define __shfl_xor_sync(mask, ...) ::losskit_emu::shfl(LOSSKIT_EMU_SITE, LOSSKIT_EMU_SHFL_BFLY, mask, __VA_ARGS__)

#define __ballot_sync(mask, p) \
    static_cast<unsigned>(::losskit_emu::vote(LOSSKIT_EMU_SITE, LOSSKIT_EMU_VOTE_BALLOT, mask, (p)))
#define __any_sync(mask, p) ::losskit_emu::vote(LOSSKIT_EMU_SITE, LOSSKIT_EMU_VOTE_ANY, mask, (p))
#define __all_sync(mask, p) ::losskit_emu::vote(LOSSKIT_EMU_SITE, LOSSKIT_EMU_VOTE_ALL, mask, (p))
#define __activemask() losskit_emu_activemask()

#define __reduce_add_sync(mask, v) ::losskit_emu::reduce(LOSSKIT_EMU_SITE, LOSSKIT_EMU_REDUCE_ADD, -1, mask, v)
#define __reduce_min_sync(mask, v) \
    ::losskit_emu::reduce(LOSSKIT_EMU_SITE, LOSSKIT_EMU_REDUCE_MIN, LOSSKIT_EMU_REDUCE_MIN_SIGNED, mask, v)
#define __reduce_max_sync(mask, v) \
    ::losskit_emu::reduce(LOSSKIT_EMU_SITE, LOSSKIT_EMU_REDUCE_MAX, LOSSKIT_EMU_REDUCE_MAX_SIGNED, mask, v)
#define __reduce_and_sync(mask, v) ::losskit_emu::reduce(LOSSKIT_EMU_SITE, LOSSKIT_EMU_REDUCE_AND, -1, mask, v)
#define __reduce_or_sync(mask, v) ::losskit_emu::reduce(LOSSKIT_EMU_SITE, LOSSKIT_EMU_REDUCE_OR, -1, mask, v)
#define __reduce_xor_sync(mask, v) ::losskit_emu::reduce(LOSSKIT_EMU_SITE, LOSSKIT_EMU_REDUCE_XOR, -1, mask, v)

/* A GPU reports a trap as an unspecified launch failure. */
#define __trap() losskit_emu_abort_launch(719 /* CUDA_ERROR_LAUNCH_FAILED */, LOSSKIT_EMU_SITE, "__trap()")
#define __brkpt() __trap()

/* The compiler must not keep values in registers across a fence; no hardware ordering is needed
 * because only one CUDA thread runs at a time. The race detector learns about device-wide fences:
 * they are what orders one block's writes for another. */
static inline void __threadfence_block() { __asm__ __volatile__("" ::: "memory"); }
static inline void __threadfence() {
    __asm__ __volatile__("" ::: "memory");
    losskit_emu_fence();
}
static inline void __threadfence_system() { __threadfence(); }
static inline void __nanosleep(unsigned) {}
static inline long long clock64() {
#if defined(__x86_64__)
    return static_cast<long long>(__builtin_ia32_rdtsc());
#else
    return 0;
#endif
}

/* ---- atomics: read-modify-writes that no other thread interleaves with (fibers) -------------- */

/* The race-checking build tells the detector about each atomic, from an uninstrumented out-of-line
 * function, so that the return address is the atomic's call site in the kernel. */
#ifdef LOSSKIT_EMU_RACECHECK
#define LOSSKIT_EMU_ATOMIC_FN static __attribute__((noinline, no_sanitize_thread, unused))
#define LOSSKIT_EMU_ATOMIC_NOTE(address) \
    losskit_emu_atomic_access((void*)(address), sizeof(*(address)), __builtin_return_address(0))
#else
#define LOSSKIT_EMU_ATOMIC_FN static inline
#define LOSSKIT_EMU_ATOMIC_NOTE(address) ((void)0)
#endif

#define LOSSKIT_EMU_ATOMIC(name, T, expr)                                                           \
    LOSSKIT_EMU_ATOMIC_FN T name(T* address, T val) {                                              \
        LOSSKIT_EMU_ATOMIC_NOTE(address);                                                          \
        T old = *address;                                                                          \
        *address = (expr);                                                                         \
        return old;                                                                                \
    }
/* Signed adds wrap as on a GPU instead of overflowing (undefined behaviour in C++). */
LOSSKIT_EMU_ATOMIC(atomicAdd, int, static_cast<int>(static_cast<unsigned>(old) + static_cast<unsigned>(val)))
LOSSKIT_EMU_ATOMIC(atomicAdd, unsigned int, old + val)
LOSSKIT_EMU_ATOMIC(atomicAdd, unsigned long long, old + val)
LOSSKIT_EMU_ATOMIC(atomicAdd, float, old + val)
LOSSKIT_EMU_ATOMIC(atomicAdd, double, old + val)
LOSSKIT_EMU_ATOMIC(atomicSub, int, static_cast<int>(static_cast<unsigned>(old) - static_cast<unsigned>(val)))
LOSSKIT_EMU_ATOMIC(atomicSub, unsigned int, old - val)
LOSSKIT_EMU_ATOMIC(atomicExch, int, val)
LOSSKIT_EMU_ATOMIC(atomicExch, unsigned int, val)
LOSSKIT_EMU_ATOMIC(atomicExch, unsigned long long, val)
LOSSKIT_EMU_ATOMIC(atomicExch, float, val)
LOSSKIT_EMU_ATOMIC(atomicMin, int, val < old ? val : old)
LOSSKIT_EMU_ATOMIC(atomicMin, unsigned int, val < old ? val : old)
LOSSKIT_EMU_ATOMIC(atomicMin, long long, val < old ? val : old)
LOSSKIT_EMU_ATOMIC(atomicMin, unsigned long long, val < old ? val : old)
LOSSKIT_EMU_ATOMIC(atomicMax, int, val > old ? val : old)
LOSSKIT_EMU_ATOMIC(atomicMax, unsigned int, val > old ? val : old)
LOSSKIT_EMU_ATOMIC(atomicMax, long long, val > old ? val : old)
LOSSKIT_EMU_ATOMIC(atomicMax, unsigned long long, val > old ? val : old)
LOSSKIT_EMU_ATOMIC(atomicInc, unsigned int, old >= val ? 0u : old + 1u)
LOSSKIT_EMU_ATOMIC(atomicDec, unsigned int, (old == 0u || old > val) ? val : old - 1u)
LOSSKIT_EMU_ATOMIC(atomicAnd, int, old & val)
LOSSKIT_EMU_ATOMIC(atomicAnd, unsigned int, old & val)
LOSSKIT_EMU_ATOMIC(atomicAnd, unsigned long long, old & val)
LOSSKIT_EMU_ATOMIC(atomicOr, int, old | val)
LOSSKIT_EMU_ATOMIC(atomicOr, unsigned int, old | val)
LOSSKIT_EMU_ATOMIC(atomicOr, unsigned long long, old | val)
LOSSKIT_EMU_ATOMIC(atomicXor, int, old ^ val)
LOSSKIT_EMU_ATOMIC(atomicXor, unsigned int, old ^ val)
LOSSKIT_EMU_ATOMIC(atomicXor, unsigned long long, old ^ val)
#undef LOSSKIT_EMU_ATOMIC

#define LOSSKIT_EMU_ATOMIC_CAS(T)                                                                   \
    LOSSKIT_EMU_ATOMIC_FN T atomicCAS(T* address, T compare, T val) {                              \
        LOSSKIT_EMU_ATOMIC_NOTE(address);                                                          \
        T old = *address;                                                                          \
        if (old == compare) *address = val;                                                        \
        return old;                                                                                \
    }
LOSSKIT_EMU_ATOMIC_CAS(int)
LOSSKIT_EMU_ATOMIC_CAS(unsigned int)
LOSSKIT_EMU_ATOMIC_CAS(unsigned long long)
LOSSKIT_EMU_ATOMIC_CAS(unsigned short)
#undef LOSSKIT_EMU_ATOMIC_CAS

/* Scoped variants: the scope only matters with concurrent execution. */
#define atomicAdd_block atomicAdd
#define atomicAdd_system atomicAdd
#define atomicSub_block atomicSub
#define atomicSub_system atomicSub
#define atomicExch_block atomicExch
#define atomicExch_system atomicExch
#define atomicMin_block atomicMin
#define atomicMin_system atomicMin
#define atomicMax_block atomicMax
#define atomicMax_system atomicMax
#define atomicInc_block atomicInc
#define atomicInc_system atomicInc
#define atomicDec_block atomicDec
#define atomicDec_system atomicDec
#define atomicCAS_block atomicCAS
#define atomicCAS_system atomicCAS
#define atomicAnd_block atomicAnd
#define atomicAnd_system atomicAnd
#define atomicOr_block atomicOr
#define atomicOr_system atomicOr
#define atomicXor_block atomicXor
#define atomicXor_system atomicXor

/* ---- cache-hinted loads and stores: plain accesses, alignment checked ---------------------- */
/* A GPU faults (CUDA_ERROR_MISALIGNED_ADDRESS) on an access not aligned to its width, e.g. a float4
 * __ldg 4 bytes off a 16-byte boundary; the CPU would not. These check the alignment of T at the call
 * site (__builtin_FILE/__builtin_LINE as default arguments name the caller's line, not this header's);
 * plain dereferences are checked by -fsanitize=alignment (scripts/build-emu.sh, handlers in
 * emu_library.h). */

namespace losskit_emu {

__attribute__((cold, noinline, noreturn)) static void misaligned_at(const void* p, size_t size, size_t align,
                                                                   const char* op, const char* file, unsigned line) {
    char site[256], access[64];
    snprintf(site, sizeof site, "%s:%u", file, line);
    snprintf(access, sizeof access, "%zu-byte %s", size, op);
    losskit_emu_misaligned(site, p, static_cast<unsigned>(align), access);
}

template <class T>
inline void check_aligned(const void* p, const char* op, const char* file, unsigned line) {
    if (__builtin_expect((reinterpret_cast<uintptr_t>(p) & (alignof(T) - 1)) != 0, 0))
        misaligned_at(p, sizeof(T), alignof(T), op, file, line);
}

}  // namespace losskit_emu

#define LOSSKIT_EMU_LOAD(name)                                                                      \
    template <class T>                                                                              \
    static inline T name(const T* p, const char* file = __builtin_FILE(), unsigned line = __builtin_LINE()) { \
        ::losskit_emu::check_aligned<T>(p, "load (" #name ")", file, line);                       \
        return *p;                                                                                  \
    }
#define LOSSKIT_EMU_STORE(name)                                                                     \
    template <class T>                                                                              \
    static inline void name(T* p, T v, const char* file = __builtin_FILE(), unsigned line = __builtin_LINE()) { \
        ::losskit_emu::check_aligned<T>(p, "store (" #name ")", file, line);                      \
        *p = v;                                                                                     \
    }
LOSSKIT_EMU_LOAD(__ldg)
LOSSKIT_EMU_LOAD(__ldcg)
LOSSKIT_EMU_LOAD(__ldca)
LOSSKIT_EMU_LOAD(__ldcs)
LOSSKIT_EMU_LOAD(__ldlu)
LOSSKIT_EMU_LOAD(__ldcv)
LOSSKIT_EMU_STORE(__stwb)
LOSSKIT_EMU_STORE(__stcg)
LOSSKIT_EMU_STORE(__stcs)
LOSSKIT_EMU_STORE(__stwt)
#undef LOSSKIT_EMU_LOAD
#undef LOSSKIT_EMU_STORE

/* ---- min / max (CUDA declares them in the global namespace for every arithmetic pair) -------- */

template <class A, class B,
          class = typename std::enable_if<std::is_arithmetic<A>::value && std::is_arithmetic<B>::value>::type>
static inline typename std::common_type<A, B>::type min(A a, B b) {
    using C = typename std::common_type<A, B>::type;
    if (std::is_floating_point<C>::value) return std::fmin(static_cast<C>(a), static_cast<C>(b));
    return static_cast<C>(b) < static_cast<C>(a) ? static_cast<C>(b) : static_cast<C>(a);
}
template <class A, class B,
          class = typename std::enable_if<std::is_arithmetic<A>::value && std::is_arithmetic<B>::value>::type>
static inline typename std::common_type<A, B>::type max(A a, B b) {
    using C = typename std::common_type<A, B>::type;
    if (std::is_floating_point<C>::value) return std::fmax(static_cast<C>(a), static_cast<C>(b));
    return static_cast<C>(a) < static_cast<C>(b) ? static_cast<C>(b) : static_cast<C>(a);
}
static inline unsigned umin(unsigned a, unsigned b) { return a < b ? a : b; }
static inline unsigned umax(unsigned a, unsigned b) { return a > b ? a : b; }
static inline long long llmin(long long a, long long b) { return a < b ? a : b; }
static inline long long llmax(long long a, long long b) { return a > b ? a : b; }
static inline unsigned long long ullmin(unsigned long long a, unsigned long long b) { return a < b ? a : b; }
static inline unsigned long long ullmax(unsigned long long a, unsigned long long b) { return a > b ? a : b; }

/* ---- math beyond libm ------------------------------------------------------------------------ */
/* libm (through <cmath> and <math.h>) already provides expf, logf, log1pf, exp, log, tanh, pow, the
 * float overloads of the C++ names, fmaf/fma, exp10f, sincosf... Only CUDA-specific names follow.
 * The fast-math intrinsics (__expf...) map to the accurate functions: a kernel's result must not
 * depend on their lower precision, and the tests compare against accurate references anyway. */

static inline float rsqrtf(float x) { return 1.0f / sqrtf(x); }
static inline double rsqrt(double x) { return 1.0 / sqrt(x); }
static inline float rcbrtf(float x) { return 1.0f / cbrtf(x); }
static inline double rcbrt(double x) { return 1.0 / cbrt(x); }
static inline float sinpif(float x) { return static_cast<float>(sin(M_PI * static_cast<double>(x))); }
static inline float cospif(float x) { return static_cast<float>(cos(M_PI * static_cast<double>(x))); }
static inline double sinpi(double x) { return sin(M_PI * x); }
static inline double cospi(double x) { return cos(M_PI * x); }
static inline float normcdff(float x) { return 0.5f * erfcf(-x * static_cast<float>(M_SQRT1_2)); }
static inline double normcdf(double x) { return 0.5 * erfc(-x * M_SQRT1_2); }
static inline float fdividef(float a, float b) { return a / b; }
static inline float __fdividef(float a, float b) { return a / b; }
/* glibc declares its own internal __expf & co. (the same functions), hence macros. */
#define __expf(x) expf(x)
#define __exp10f(x) exp10f(x)
#define __logf(x) logf(x)
#define __log2f(x) log2f(x)
#define __log10f(x) log10f(x)
#define __powf(x, y) powf(x, y)
#define __sinf(x) sinf(x)
#define __cosf(x) cosf(x)
#define __tanf(x) tanf(x)
#define __sincosf(x, s, c) sincosf(x, s, c)
static inline float __saturatef(float x) { return x > 0.0f ? (x < 1.0f ? x : 1.0f) : 0.0f; } /* NaN -> 0 */

/* Round-to-nearest arithmetic: what C++ does, as long as nothing contracts a*b+c (kernels are
 * built with -ffp-contract=off). Directed roundings are not provided. */
static inline float __fadd_rn(float a, float b) { return a + b; }
static inline float __fsub_rn(float a, float b) { return a - b; }
static inline float __fmul_rn(float a, float b) { return a * b; }
static inline float __fdiv_rn(float a, float b) { return a / b; }
static inline float __frcp_rn(float a) { return 1.0f / a; }
static inline float __fsqrt_rn(float a) { return sqrtf(a); }
static inline float __frsqrt_rn(float a) { return 1.0f / sqrtf(a); }
static inline float __fmaf_rn(float a, float b, float c) { return fmaf(a, b, c); }
static inline double __dadd_rn(double a, double b) { return a + b; }
static inline double __dsub_rn(double a, double b) { return a - b; }
static inline double __dmul_rn(double a, double b) { return a * b; }
static inline double __ddiv_rn(double a, double b) { return a / b; }
static inline double __drcp_rn(double a) { return 1.0 / a; }
static inline double __dsqrt_rn(double a) { return sqrt(a); }
static inline double __fma_rn(double a, double b, double c) { return fma(a, b, c); }

/* ---- conversions and bit casts --------------------------------------------------------------- */

static inline int __float_as_int(float x) { return losskit_emu::from_bits<int>(losskit_emu::to_bits(x)); }
static inline unsigned __float_as_uint(float x) { return losskit_emu::from_bits<unsigned>(losskit_emu::to_bits(x)); }
static inline float __int_as_float(int x) { return losskit_emu::from_bits<float>(losskit_emu::to_bits(x)); }
static inline float __uint_as_float(unsigned x) { return losskit_emu::from_bits<float>(losskit_emu::to_bits(x)); }
static inline long long __double_as_longlong(double x) { return losskit_emu::from_bits<long long>(losskit_emu::to_bits(x)); }
static inline double __longlong_as_double(long long x) { return losskit_emu::from_bits<double>(losskit_emu::to_bits(x)); }
static inline int __double2hiint(double x) { return static_cast<int>(__double_as_longlong(x) >> 32); }
static inline int __double2loint(double x) { return static_cast<int>(__double_as_longlong(x) & 0xffffffffLL); }
static inline double __hiloint2double(int hi, int lo) {
    return __longlong_as_double(static_cast<long long>((static_cast<unsigned long long>(static_cast<unsigned>(hi)) << 32) |
                                                       static_cast<unsigned>(lo)));
}
static inline int __float2int_rn(float x) { return static_cast<int>(nearbyintf(x)); }
static inline int __float2int_rz(float x) { return static_cast<int>(x); }
static inline int __float2int_rd(float x) { return static_cast<int>(floorf(x)); }
static inline int __float2int_ru(float x) { return static_cast<int>(ceilf(x)); }
static inline unsigned __float2uint_rn(float x) { return static_cast<unsigned>(nearbyintf(x)); }
static inline unsigned __float2uint_rz(float x) { return static_cast<unsigned>(x); }
static inline long long __float2ll_rn(float x) { return static_cast<long long>(nearbyintf(x)); }
static inline long long __float2ll_rz(float x) { return static_cast<long long>(x); }
static inline int __double2int_rn(double x) { return static_cast<int>(nearbyint(x)); }
static inline int __double2int_rz(double x) { return static_cast<int>(x); }
static inline long long __double2ll_rn(double x) { return static_cast<long long>(nearbyint(x)); }
static inline long long __double2ll_rz(double x) { return static_cast<long long>(x); }
static inline float __double2float_rn(double x) { return static_cast<float>(x); }
static inline float __int2float_rn(int x) { return static_cast<float>(x); }
static inline float __uint2float_rn(unsigned x) { return static_cast<float>(x); }
static inline float __ll2float_rn(long long x) { return static_cast<float>(x); }
static inline double __int2double_rn(int x) { return static_cast<double>(x); }
static inline double __ll2double_rn(long long x) { return static_cast<double>(x); }
static inline double __ull2double_rn(unsigned long long x) { return static_cast<double>(x); }

/* ---- integer intrinsics ---------------------------------------------------------------------- */

static inline int __clz(int x) { return x == 0 ? 32 : __builtin_clz(static_cast<unsigned>(x)); }
static inline int __clzll(long long x) { return x == 0 ? 64 : __builtin_clzll(static_cast<unsigned long long>(x)); }
static inline int __popc(unsigned x) { return __builtin_popcount(x); }
static inline int __popcll(unsigned long long x) { return __builtin_popcountll(x); }
static inline int __ffs(int x) { return __builtin_ffs(x); }
static inline int __ffsll(long long x) { return __builtin_ffsll(x); }
static inline unsigned __brev(unsigned x) {
    unsigned r = 0;
    for (int i = 0; i < 32; ++i) r |= ((x >> i) & 1u) << (31 - i);
    return r;
}
static inline unsigned long long __brevll(unsigned long long x) {
    return (static_cast<unsigned long long>(__brev(static_cast<unsigned>(x))) << 32) | __brev(static_cast<unsigned>(x >> 32));
}
static inline int __mulhi(int a, int b) { return static_cast<int>((static_cast<long long>(a) * b) >> 32); }
static inline unsigned __umulhi(unsigned a, unsigned b) {
    return static_cast<unsigned>((static_cast<unsigned long long>(a) * b) >> 32);
}
static inline long long __mul64hi(long long a, long long b) { return static_cast<long long>((static_cast<__int128>(a) * b) >> 64); }
static inline unsigned long long __umul64hi(unsigned long long a, unsigned long long b) {
    return static_cast<unsigned long long>((static_cast<unsigned __int128>(a) * b) >> 64);
}
static inline int __mul24(int a, int b) { return ((a << 8) >> 8) * ((b << 8) >> 8); }
static inline unsigned __umul24(unsigned a, unsigned b) { return (a & 0xffffffu) * (b & 0xffffffu); }
static inline unsigned __byte_perm(unsigned x, unsigned y, unsigned s) {
    const unsigned long long bytes = (static_cast<unsigned long long>(y) << 32) | x;
    unsigned r = 0;
    for (int i = 0; i < 4; ++i) r |= static_cast<unsigned>((bytes >> (8 * ((s >> (4 * i)) & 7))) & 0xff) << (8 * i);
    return r;
}

/* ---- support for the generated registration file (gen_registry.py) --------------------------- */

namespace losskit_emu {

template <class T>
inline T load_param(const void* p) {
    T v;
    std::memcpy(&v, p, sizeof(T)); /* kernelParams entries need not be aligned for T */
    return v;
}

template <class... A, std::size_t... I>
inline void invoke(void (*kernel)(A...), void* const* params, std::index_sequence<I...>) {
    kernel(load_param<typename std::decay<A>::type>(params[I])...);
}

/* The typed trampoline: deduced from the kernel's own signature, so it cannot drift from it. */
template <class... A>
void run_thread(void* kernel, void* const* params) {
    invoke(reinterpret_cast<void (*)(A...)>(kernel), params, std::index_sequence_for<A...>{});
}

template <class... A>
losskit_emu_kernel_desc describe(const char* name, void (*kernel)(A...)) {
    static_assert(std::conjunction<std::is_trivially_copyable<typename std::decay<A>::type>...>::value,
                  "kernel parameters are copied bytewise, as the driver copies them to a GPU");
    static const uint32_t sizes[] = {static_cast<uint32_t>(sizeof(typename std::decay<A>::type))..., 0u};
    static const uint8_t pointers[] = {static_cast<uint8_t>(std::is_pointer<typename std::decay<A>::type>::value)..., 0};
    return losskit_emu_kernel_desc{name, reinterpret_cast<void*>(kernel), &run_thread<A...>,
                                   static_cast<int>(sizeof...(A)), sizes, pointers};
}

}  // namespace losskit_emu

#endif /* LOSSKIT_CUDA_EMU_H */
