// The emulated cuBLAS: libcublas.so.12 for CPU-only test runs (TEST SUPPORT ONLY, nothing here is part
// of the LossKit product; see cuda-kernels/emu/README.md).
//
// JCublas2's native library needs libcublas.so.12 and binds its imports lazily: a call to a symbol the
// loaded library lacks ends the JVM ("symbol lookup error"). scripts/build-emu.sh therefore builds this
// file together with generated stubs for every other symbol libJCublas2 imports (emu_gen stubs
// --fallback losskit_emu_cublas_not_supported): they return CUBLAS_STATUS_NOT_SUPPORTED and name
// themselves once on stderr.
//
// What is implemented is what LossKit's matrix losses call, with cuBLAS's documented semantics:
//   cublasCreate_v2 / cublasDestroy_v2       handles (a destroyed or unknown handle: NOT_INITIALIZED)
//   cublasSetStream_v2 / GetStream_v2        the stream is recorded; as in cuBLAS, setting it resets the
//                                            workspace to the library's default pool
//   cublasSetWorkspace_v2                    a user workspace: 256-byte aligned, inside one allocation
//   cublasSet/GetPointerMode_v2              alpha and beta read from host or device memory
//   cublasSet/GetMathMode, Set/GetAtomicsMode
//   cublasSgemm_v2, cublasDgemm_v2           C = alpha op(A) op(B) + beta C, column-major, N/T/C
//   cublasGemmEx                             the same with typed operands: A = B in CUDA_R_16BF, CUDA_R_16F or
//                                            CUDA_R_32F, C fp32 or A's 16-bit type, COMPUTE_32F (_PEDANTIC;
//                                            fp32 operands also _FAST_TF32, _FAST_16BF, _FAST_16F), alpha and beta
//                                            float; CUDA_R_64F with COMPUTE_64F (_PEDANTIC) as cublasDgemm_v2. Any
//                                            other combination: NOT_SUPPORTED, named on stderr; an unknown data
//                                            type, compute type (a legacy cudaDataType one included) or algo:
//                                            INVALID_VALUE. Arithmetic in a fixed, documented order (below).
//   cublasGetVersion_v2, GetProperty, GetCudartVersion, GetStatusName, GetStatusString
// Device pointers are host addresses in the emulated driver, so a GEMM runs on them directly: S/DGEMM through
// OpenBLAS's cblas_sgemm / cblas_dgemm (the same precision as cuBLAS: results differ from a GPU's by
// summation order only), GemmEx in this file's own kernel (see "cublasGemmEx" below). Before it runs, every operand's extent (from m, n, k and the leading dimension) is
// checked against the driver's allocation (cuMemGetAddressRange): a GEMM that would read or write past
// an allocation fails with CUBLAS_STATUS_EXECUTION_FAILED and says which operand and by how much, where
// a GPU would fault or silently corrupt memory. Work runs at submission, on the calling thread, once the
// work queued before it on its stream has completed (losskit_emu_stream_drain): the driver runs streams
// asynchronously, each on its own worker.
#include <cblas.h>
#include <immintrin.h>

#include <cinttypes>
#include <cmath>
#include <cstdarg>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace {

// ---- the subset of cublas_api.h / cuda.h this file needs (values from the CUDA 12 headers) -----------
typedef int cublasStatus_t;
enum : int {
    CUBLAS_STATUS_SUCCESS = 0,
    CUBLAS_STATUS_NOT_INITIALIZED = 1,
    CUBLAS_STATUS_ALLOC_FAILED = 3,
    CUBLAS_STATUS_INVALID_VALUE = 7,
    CUBLAS_STATUS_ARCH_MISMATCH = 8,
    CUBLAS_STATUS_MAPPING_ERROR = 11,
    CUBLAS_STATUS_EXECUTION_FAILED = 13,
    CUBLAS_STATUS_INTERNAL_ERROR = 14,
    CUBLAS_STATUS_NOT_SUPPORTED = 15,
    CUBLAS_STATUS_LICENSE_ERROR = 16,
};
enum : int { CUBLAS_OP_N = 0, CUBLAS_OP_T = 1, CUBLAS_OP_C = 2 };
enum : int { CUBLAS_POINTER_MODE_HOST = 0, CUBLAS_POINTER_MODE_DEVICE = 1 };
enum : int { CUBLAS_ATOMICS_NOT_ALLOWED = 0, CUBLAS_ATOMICS_ALLOWED = 1 };
// cublasMath_t: DEFAULT 0, TENSOR_OP 1 (deprecated), PEDANTIC 2, TF32_TENSOR_OP 3, plus the flag
// DISALLOW_REDUCED_PRECISION_REDUCTION 16.
constexpr int kMathModes = 3;
constexpr int kMathFlagDisallowReduced = 16;
enum : int { MAJOR_VERSION = 0, MINOR_VERSION = 1, PATCH_LEVEL = 2 };
constexpr int kVersionMajor = 12, kVersionMinor = 6, kVersionPatch = 0;
constexpr size_t kCudartVersion = 12060;

typedef int CUresult;
typedef unsigned long long CUdeviceptr;
typedef struct CUctx_st* CUcontext;

struct Handle {
    void* stream = nullptr;
    void* workspace = nullptr;  // null: the library's default pool (the emulator needs none)
    size_t workspace_bytes = 0;
    int pointer_mode = CUBLAS_POINTER_MODE_HOST;
    int math_mode = 0;
    int atomics_mode = CUBLAS_ATOMICS_NOT_ALLOWED;
};

std::mutex& lock() {
    static std::mutex& mu = *new std::mutex;  // never destroyed: calls may come during exit
    return mu;
}

std::set<Handle*>& handles() {
    static std::set<Handle*>& live = *new std::set<Handle*>;
    return live;
}

bool quiet() {
    const char* q = std::getenv("LOSSKIT_EMU_QUIET");
    return q != nullptr && std::strcmp(q, "1") == 0;
}

void note(const char* fmt, ...) {
    if (quiet()) return;
    va_list ap;
    va_start(ap, fmt);
    std::fprintf(stderr, "losskit-emu cublas: ");
    std::vfprintf(stderr, fmt, ap);
    std::fputc('\n', stderr);
    va_end(ap);
}

Handle* live_handle(void* h) {
    Handle* p = static_cast<Handle*>(h);
    return handles().count(p) != 0 ? p : nullptr;
}

// A live handle's pointer mode and stream, read under the lock; false for a destroyed or unknown handle.
bool handle_state(void* handle, int& pointer_mode, void*& stream) {
    std::lock_guard<std::mutex> guard(lock());
    Handle* h = live_handle(handle);
    if (h == nullptr) return false;
    pointer_mode = h->pointer_mode;
    stream = h->stream;
    return true;
}

}  // namespace

// The driver API of the emulated libcuda.so.1 this library is linked against.
extern "C" CUresult cuMemGetAddressRange_v2(CUdeviceptr* base, size_t* size, CUdeviceptr dptr);
extern "C" CUresult cuCtxGetCurrent(CUcontext* ctx);
// The driver runs streams asynchronously: a GEMM (run here, at submission) first waits for the work
// queued before it on its stream.
extern "C" void losskit_emu_stream_drain(void* stream);

namespace {

// True when [p, p + bytes) lies inside one device allocation; otherwise says why on stderr.
bool inside_allocation(const char* call, const char* what, const void* p, size_t bytes) {
    CUdeviceptr base = 0;
    size_t size = 0;
    const CUdeviceptr a = reinterpret_cast<uintptr_t>(p);
    if (cuMemGetAddressRange_v2(&base, &size, a) != 0) {
        note("%s: %s = %p is not device memory (no allocation holds it)", call, what, p);
        return false;
    }
    if (a + bytes > base + size) {
        note("%s: %s = %p reaches %zu bytes past the end of its allocation (0x%llx, %zu bytes): the GEMM "
             "would touch %zu bytes from it",
             call, what, p, static_cast<size_t>(a + bytes - (base + size)), base, size, bytes);
        return false;
    }
    return true;
}

// Elements a column-major rows x cols operand with leading dimension ld spans.
size_t extent(int rows, int cols, int ld) {
    return rows == 0 || cols == 0 ? 0 : static_cast<size_t>(cols - 1) * static_cast<size_t>(ld) + rows;
}

bool valid_op(int op) { return op == CUBLAS_OP_N || op == CUBLAS_OP_T || op == CUBLAS_OP_C; }

// Operations, sizes and leading dimensions as BLAS requires them (op(A) is rows x cols with a_rows stored rows).
bool valid_shape(int transa, int transb, int m, int n, int k, int a_rows, int lda, int b_rows, int ldb, int ldc) {
    return valid_op(transa) && valid_op(transb) && m >= 0 && n >= 0 && k >= 0 && lda >= (a_rows > 1 ? a_rows : 1) &&
           ldb >= (b_rows > 1 ? b_rows : 1) && ldc >= (m > 1 ? m : 1);
}

}  // namespace

#define CUBLAS_API extern "C" __attribute__((visibility("default")))

CUBLAS_API int losskit_emu_cublas_not_supported(const char* name) {
    static std::set<std::string>& reported = *new std::set<std::string>;
    std::lock_guard<std::mutex> guard(lock());
    if (reported.insert(name).second) note("%s is not emulated: returning CUBLAS_STATUS_NOT_SUPPORTED", name);
    return CUBLAS_STATUS_NOT_SUPPORTED;
}

CUBLAS_API cublasStatus_t cublasCreate_v2(void** handle) {
    if (handle == nullptr) return CUBLAS_STATUS_INVALID_VALUE;
    Handle* h = new Handle;
    std::lock_guard<std::mutex> guard(lock());
    handles().insert(h);
    *handle = h;
    return CUBLAS_STATUS_SUCCESS;
}

CUBLAS_API cublasStatus_t cublasDestroy_v2(void* handle) {
    std::lock_guard<std::mutex> guard(lock());
    Handle* h = live_handle(handle);
    if (h == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;
    handles().erase(h);
    delete h;
    return CUBLAS_STATUS_SUCCESS;
}

CUBLAS_API cublasStatus_t cublasSetStream_v2(void* handle, void* stream) {
    std::lock_guard<std::mutex> guard(lock());
    Handle* h = live_handle(handle);
    if (h == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;
    h->stream = stream;
    // cuBLAS: "cublasSetStream() unconditionally resets the cuBLAS library workspace back to the
    // default workspace pool"; a user workspace must be set again after it.
    h->workspace = nullptr;
    h->workspace_bytes = 0;
    return CUBLAS_STATUS_SUCCESS;
}

CUBLAS_API cublasStatus_t cublasGetStream_v2(void* handle, void** stream) {
    std::lock_guard<std::mutex> guard(lock());
    Handle* h = live_handle(handle);
    if (h == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;
    if (stream == nullptr) return CUBLAS_STATUS_INVALID_VALUE;
    *stream = h->stream;
    return CUBLAS_STATUS_SUCCESS;
}

CUBLAS_API cublasStatus_t cublasSetWorkspace_v2(void* handle, void* workspace, size_t bytes) {
    std::lock_guard<std::mutex> guard(lock());
    Handle* h = live_handle(handle);
    if (h == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;
    if (bytes > 0) {
        if (workspace == nullptr || reinterpret_cast<uintptr_t>(workspace) % 256 != 0) {
            note("cublasSetWorkspace: workspace %p is not 256-byte aligned", workspace);
            return CUBLAS_STATUS_INVALID_VALUE;
        }
        if (!inside_allocation("cublasSetWorkspace", "workspace", workspace, bytes)) return CUBLAS_STATUS_INVALID_VALUE;
    }
    h->workspace = bytes > 0 ? workspace : nullptr;
    h->workspace_bytes = bytes;
    return CUBLAS_STATUS_SUCCESS;
}

CUBLAS_API cublasStatus_t cublasSetPointerMode_v2(void* handle, int mode) {
    std::lock_guard<std::mutex> guard(lock());
    Handle* h = live_handle(handle);
    if (h == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;
    if (mode != CUBLAS_POINTER_MODE_HOST && mode != CUBLAS_POINTER_MODE_DEVICE) return CUBLAS_STATUS_INVALID_VALUE;
    h->pointer_mode = mode;
    return CUBLAS_STATUS_SUCCESS;
}

CUBLAS_API cublasStatus_t cublasGetPointerMode_v2(void* handle, int* mode) {
    std::lock_guard<std::mutex> guard(lock());
    Handle* h = live_handle(handle);
    if (h == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;
    if (mode == nullptr) return CUBLAS_STATUS_INVALID_VALUE;
    *mode = h->pointer_mode;
    return CUBLAS_STATUS_SUCCESS;
}

CUBLAS_API cublasStatus_t cublasSetMathMode(void* handle, int mode) {
    std::lock_guard<std::mutex> guard(lock());
    Handle* h = live_handle(handle);
    if (h == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;
    const int base = mode & ~kMathFlagDisallowReduced;
    if (base < 0 || base > kMathModes) return CUBLAS_STATUS_INVALID_VALUE;
    h->math_mode = mode;
    return CUBLAS_STATUS_SUCCESS;
}

CUBLAS_API cublasStatus_t cublasGetMathMode(void* handle, int* mode) {
    std::lock_guard<std::mutex> guard(lock());
    Handle* h = live_handle(handle);
    if (h == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;
    if (mode == nullptr) return CUBLAS_STATUS_INVALID_VALUE;
    *mode = h->math_mode;
    return CUBLAS_STATUS_SUCCESS;
}

CUBLAS_API cublasStatus_t cublasSetAtomicsMode(void* handle, int mode) {
    std::lock_guard<std::mutex> guard(lock());
    Handle* h = live_handle(handle);
    if (h == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;
    if (mode != CUBLAS_ATOMICS_NOT_ALLOWED && mode != CUBLAS_ATOMICS_ALLOWED) return CUBLAS_STATUS_INVALID_VALUE;
    h->atomics_mode = mode;
    return CUBLAS_STATUS_SUCCESS;
}

CUBLAS_API cublasStatus_t cublasGetAtomicsMode(void* handle, int* mode) {
    std::lock_guard<std::mutex> guard(lock());
    Handle* h = live_handle(handle);
    if (h == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;
    if (mode == nullptr) return CUBLAS_STATUS_INVALID_VALUE;
    *mode = h->atomics_mode;
    return CUBLAS_STATUS_SUCCESS;
}

CUBLAS_API cublasStatus_t cublasGetVersion_v2(void* handle, int* version) {
    std::lock_guard<std::mutex> guard(lock());
    if (live_handle(handle) == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;
    if (version == nullptr) return CUBLAS_STATUS_INVALID_VALUE;
    *version = kVersionMajor * 10000 + kVersionMinor * 100 + kVersionPatch;
    return CUBLAS_STATUS_SUCCESS;
}

CUBLAS_API cublasStatus_t cublasGetProperty(int type, int* value) {
    if (value == nullptr) return CUBLAS_STATUS_INVALID_VALUE;
    switch (type) {
        case MAJOR_VERSION: *value = kVersionMajor; return CUBLAS_STATUS_SUCCESS;
        case MINOR_VERSION: *value = kVersionMinor; return CUBLAS_STATUS_SUCCESS;
        case PATCH_LEVEL: *value = kVersionPatch; return CUBLAS_STATUS_SUCCESS;
        default: return CUBLAS_STATUS_INVALID_VALUE;
    }
}

CUBLAS_API size_t cublasGetCudartVersion(void) { return kCudartVersion; }

CUBLAS_API const char* cublasGetStatusName(cublasStatus_t status) {
    switch (status) {
        case CUBLAS_STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS";
        case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
        case CUBLAS_STATUS_ALLOC_FAILED: return "CUBLAS_STATUS_ALLOC_FAILED";
        case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
        case CUBLAS_STATUS_ARCH_MISMATCH: return "CUBLAS_STATUS_ARCH_MISMATCH";
        case CUBLAS_STATUS_MAPPING_ERROR: return "CUBLAS_STATUS_MAPPING_ERROR";
        case CUBLAS_STATUS_EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED";
        case CUBLAS_STATUS_INTERNAL_ERROR: return "CUBLAS_STATUS_INTERNAL_ERROR";
        case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
        case CUBLAS_STATUS_LICENSE_ERROR: return "CUBLAS_STATUS_LICENSE_ERROR";
        default: return "CUBLAS_STATUS_UNKNOWN";
    }
}

CUBLAS_API const char* cublasGetStatusString(cublasStatus_t status) {
    switch (status) {
        case CUBLAS_STATUS_SUCCESS: return "success";
        case CUBLAS_STATUS_NOT_INITIALIZED: return "the library was not initialized";
        case CUBLAS_STATUS_ALLOC_FAILED: return "the resource allocation failed";
        case CUBLAS_STATUS_INVALID_VALUE: return "an invalid numeric value was used as an argument";
        case CUBLAS_STATUS_ARCH_MISMATCH: return "an absent device architectural feature is required";
        case CUBLAS_STATUS_MAPPING_ERROR: return "an access to GPU memory space failed";
        case CUBLAS_STATUS_EXECUTION_FAILED: return "the GPU program failed to execute";
        case CUBLAS_STATUS_INTERNAL_ERROR: return "an internal operation failed";
        case CUBLAS_STATUS_NOT_SUPPORTED: return "the functionality requested is not supported";
        case CUBLAS_STATUS_LICENSE_ERROR: return "error detected trying to check the license";
        default: return "unknown error";
    }
}

namespace {

void blas_gemm(bool na, bool nb, int m, int n, int k, float a, const float* A, int lda, const float* B, int ldb,
               float b, float* C, int ldc) {
    cblas_sgemm(CblasColMajor, na ? CblasNoTrans : CblasTrans, nb ? CblasNoTrans : CblasTrans, m, n, k, a, A, lda, B,
                ldb, b, C, ldc);
}

void blas_gemm(bool na, bool nb, int m, int n, int k, double a, const double* A, int lda, const double* B, int ldb,
               double b, double* C, int ldc) {
    cblas_dgemm(CblasColMajor, na ? CblasNoTrans : CblasTrans, nb ? CblasNoTrans : CblasTrans, m, n, k, a, A, lda, B,
                ldb, b, C, ldc);
}

// C = alpha op(A) op(B) + beta C (column-major; op(A) is m x k, op(B) k x n, C m x n). As in BLAS and
// cuBLAS: beta == 0 means C is not read (it may hold NaN), alpha == 0 or k == 0 scale C by beta only.
template <typename T>
cublasStatus_t gemm(const char* call, void* handle, int transa, int transb, int m, int n, int k, const T* alpha,
                    const T* A, int lda, const T* B, int ldb, const T* beta, T* C, int ldc) {
    int pointer_mode;
    void* stream;
    if (!handle_state(handle, pointer_mode, stream)) return CUBLAS_STATUS_NOT_INITIALIZED;
    const bool na = transa == CUBLAS_OP_N, nb = transb == CUBLAS_OP_N;
    const int a_rows = na ? m : k, a_cols = na ? k : m;
    const int b_rows = nb ? k : n, b_cols = nb ? n : k;
    if (!valid_shape(transa, transb, m, n, k, a_rows, lda, b_rows, ldb, ldc) || alpha == nullptr || beta == nullptr) {
        note("%s: invalid arguments (transa %d, transb %d, m %d, n %d, k %d, lda %d, ldb %d, ldc %d)", call, transa,
             transb, m, n, k, lda, ldb, ldc);
        return CUBLAS_STATUS_INVALID_VALUE;
    }
    if (m == 0 || n == 0) return CUBLAS_STATUS_SUCCESS;
    losskit_emu_stream_drain(stream);
    if (pointer_mode == CUBLAS_POINTER_MODE_DEVICE &&
        (!inside_allocation(call, "alpha", alpha, sizeof(T)) || !inside_allocation(call, "beta", beta, sizeof(T)))) {
        return CUBLAS_STATUS_EXECUTION_FAILED;
    }
    const T a = *alpha, b = *beta;
    const bool reads_ab = k > 0 && a != T(0);
    if ((reads_ab && (!inside_allocation(call, "A", A, extent(a_rows, a_cols, lda) * sizeof(T)) ||
                      !inside_allocation(call, "B", B, extent(b_rows, b_cols, ldb) * sizeof(T)))) ||
        !inside_allocation(call, "C", C, extent(m, n, ldc) * sizeof(T))) {
        return CUBLAS_STATUS_EXECUTION_FAILED;
    }
    if (!reads_ab) {
        for (int j = 0; j < n; ++j) {
            T* c = C + static_cast<size_t>(j) * ldc;
            for (int i = 0; i < m; ++i) c[i] = b == T(0) ? T(0) : b * c[i];
        }
        return CUBLAS_STATUS_SUCCESS;
    }
    blas_gemm(na, nb, m, n, k, a, A, lda, B, ldb, b, C, ldc);
    return CUBLAS_STATUS_SUCCESS;
}

}  // namespace

CUBLAS_API cublasStatus_t cublasSgemm_v2(void* handle, int transa, int transb, int m, int n, int k,
                                         const float* alpha, const float* A, int lda, const float* B, int ldb,
                                         const float* beta, float* C, int ldc) {
    return gemm("cublasSgemm_v2", handle, transa, transb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc);
}

CUBLAS_API cublasStatus_t cublasDgemm_v2(void* handle, int transa, int transb, int m, int n, int k,
                                         const double* alpha, const double* A, int lda, const double* B, int ldb,
                                         const double* beta, double* C, int ldc) {
    return gemm("cublasDgemm_v2", handle, transa, transb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc);
}

// ---- cublasGemmEx ----------------------------------------------------------------------------------------
// C = alpha op(A) op(B) + beta C with typed operands, emulating a tensor-core GEMM deterministically:
//
//   operands   16-bit elements (CUDA_R_16BF, CUDA_R_16F) are widened to float exactly; fp32 elements are
//              first rounded as the compute type says: FAST_TF32 to TF32 (10 mantissa bits, round to
//              nearest, ties away from zero: PTX cvt.rna.tf32.f32), FAST_16BF / FAST_16F to bf16 / fp16
//              (round to nearest even) and back.
//   products   of two such values are exact in fp32 (8+8, 11+11 significant bits) unless they under- or
//              overflow fp32's range; plain fp32 operands (COMPUTE_32F, _PEDANTIC) use fmaf, as the GPU's
//              FFMA does.
//   order      one fp32 accumulator per output element, starting at +0, k ascending:
//                acc = acc + a[p] * b[p]   (product rounded to fp32, then the sum; never contracted: this
//                                           file is compiled with -ffp-contract=off)
//                acc = fmaf(a[p], b[p], acc)   for fp32 operands without a FAST rounding
//   epilogue   r = alpha * acc, then r = r + beta * C (C widened; beta == 0: C is not read), each step one
//              fp32 rounding; r is stored as Ctype (bf16 / fp16: round to nearest even, NaN -> the quiet NaN
//              0x7FC0 / 0x7E00, as losskit.api.HalfFloats and cuda-kernels/include/half.cuh).
// The result is a function of the inputs only: the same on every run, thread count and code path (the AVX2
// kernel and the portable one perform the same operations per element). A GPU accumulates inside
// tensor-core tiles in another order, so its results differ from these by fp32 rounding only.
// COMPUTE_64F (_PEDANTIC) on CUDA_R_64F operands runs the cublasDgemm_v2 path above.
namespace {

enum : int { CUDA_R_32F = 0, CUDA_R_64F = 1, CUDA_R_16F = 2, CUDA_R_16BF = 14 };
constexpr int kLastDataType = 29;  // CUDA_R_8F_E5M2: the last cudaDataType of CUDA 12.6
enum : int {
    CUBLAS_COMPUTE_16F = 64,
    CUBLAS_COMPUTE_16F_PEDANTIC = 65,
    CUBLAS_COMPUTE_32F = 68,
    CUBLAS_COMPUTE_32F_PEDANTIC = 69,
    CUBLAS_COMPUTE_64F = 70,
    CUBLAS_COMPUTE_64F_PEDANTIC = 71,
    CUBLAS_COMPUTE_32I = 72,
    CUBLAS_COMPUTE_32I_PEDANTIC = 73,
    CUBLAS_COMPUTE_32F_FAST_16F = 74,
    CUBLAS_COMPUTE_32F_FAST_16BF = 75,
    CUBLAS_COMPUTE_32F_FAST_TF32 = 77,
};
// cublasGemmAlgo_t: DEFAULT -1, ALGO0..ALGO23, DEFAULT_TENSOR_OP 99, ALGO0_TENSOR_OP..ALGO15_TENSOR_OP
// (100..115). All compute the same here.
bool valid_algo(int algo) { return algo == -1 || (algo >= 0 && algo <= 23) || (algo >= 99 && algo <= 115); }

bool valid_compute(int c) {
    switch (c) {
        case CUBLAS_COMPUTE_16F: case CUBLAS_COMPUTE_16F_PEDANTIC: case CUBLAS_COMPUTE_32F:
        case CUBLAS_COMPUTE_32F_PEDANTIC: case CUBLAS_COMPUTE_64F: case CUBLAS_COMPUTE_64F_PEDANTIC:
        case CUBLAS_COMPUTE_32I: case CUBLAS_COMPUTE_32I_PEDANTIC: case CUBLAS_COMPUTE_32F_FAST_16F:
        case CUBLAS_COMPUTE_32F_FAST_16BF: case CUBLAS_COMPUTE_32F_FAST_TF32:
            return true;
        default:
            return false;
    }
}

std::string type_name(int t) {
    switch (t) {
        case CUDA_R_32F: return "CUDA_R_32F";
        case CUDA_R_64F: return "CUDA_R_64F";
        case CUDA_R_16F: return "CUDA_R_16F";
        case CUDA_R_16BF: return "CUDA_R_16BF";
        case 3: return "CUDA_R_8I";
        case 10: return "CUDA_R_32I";
        default: return "cudaDataType " + std::to_string(t);
    }
}

const char* compute_name(int c) {
    switch (c) {
        case CUBLAS_COMPUTE_16F: return "CUBLAS_COMPUTE_16F";
        case CUBLAS_COMPUTE_16F_PEDANTIC: return "CUBLAS_COMPUTE_16F_PEDANTIC";
        case CUBLAS_COMPUTE_32F: return "CUBLAS_COMPUTE_32F";
        case CUBLAS_COMPUTE_32F_PEDANTIC: return "CUBLAS_COMPUTE_32F_PEDANTIC";
        case CUBLAS_COMPUTE_64F: return "CUBLAS_COMPUTE_64F";
        case CUBLAS_COMPUTE_64F_PEDANTIC: return "CUBLAS_COMPUTE_64F_PEDANTIC";
        case CUBLAS_COMPUTE_32I: return "CUBLAS_COMPUTE_32I";
        case CUBLAS_COMPUTE_32I_PEDANTIC: return "CUBLAS_COMPUTE_32I_PEDANTIC";
        case CUBLAS_COMPUTE_32F_FAST_16F: return "CUBLAS_COMPUTE_32F_FAST_16F";
        case CUBLAS_COMPUTE_32F_FAST_16BF: return "CUBLAS_COMPUTE_32F_FAST_16BF";
        case CUBLAS_COMPUTE_32F_FAST_TF32: return "CUBLAS_COMPUTE_32F_FAST_TF32";
        default: return "an unknown cublasComputeType_t";
    }
}

// The real (non-complex) rows of cuBLAS 12's table of cublasGemmEx combinations (compute; A = B; C).
bool documented_real_combination(int compute, int ab, int c) {
    switch (compute) {
        case CUBLAS_COMPUTE_16F: case CUBLAS_COMPUTE_16F_PEDANTIC:
            return ab == CUDA_R_16F && c == CUDA_R_16F;
        case CUBLAS_COMPUTE_32I: case CUBLAS_COMPUTE_32I_PEDANTIC:
            return ab == 3 && c == 10;
        case CUBLAS_COMPUTE_32F: case CUBLAS_COMPUTE_32F_PEDANTIC:
            return (ab == CUDA_R_16BF && (c == CUDA_R_16BF || c == CUDA_R_32F)) ||
                   (ab == CUDA_R_16F && (c == CUDA_R_16F || c == CUDA_R_32F)) || (ab == 3 && c == CUDA_R_32F) ||
                   (ab == CUDA_R_32F && c == CUDA_R_32F);
        case CUBLAS_COMPUTE_32F_FAST_16F: case CUBLAS_COMPUTE_32F_FAST_16BF: case CUBLAS_COMPUTE_32F_FAST_TF32:
            return ab == CUDA_R_32F && c == CUDA_R_32F;
        case CUBLAS_COMPUTE_64F: case CUBLAS_COMPUTE_64F_PEDANTIC:
            return ab == CUDA_R_64F && c == CUDA_R_64F;
        default:
            return false;
    }
}

// ---- 16-bit and TF32 conversions (the bits of losskit.api.HalfFloats) ----
inline uint32_t bits_of(float f) {
    uint32_t u;
    std::memcpy(&u, &f, 4);
    return u;
}
inline float float_of(uint32_t u) {
    float f;
    std::memcpy(&f, &u, 4);
    return f;
}
inline float bf16_to_float(uint16_t h) { return float_of(static_cast<uint32_t>(h) << 16); }
inline float f16_to_float(uint16_t h) {
    const uint32_t s = static_cast<uint32_t>(h & 0x8000u) << 16, e = (h >> 10) & 0x1Fu, m = h & 0x3FFu;
    if (e == 0) return float_of(s | bits_of(static_cast<float>(m) * 0x1p-24f));  // ±0 and subnormals: exact
    if (e == 31) return float_of(s | 0x7F800000u | (m << 13));                      // ±inf, NaN (payload kept)
    return float_of(s | ((e + 112) << 23) | (m << 13));
}
// Round to nearest even: adding 0x7FFF plus the lowest kept bit carries into the kept half exactly when the
// dropped half is above the midpoint, or at it with the kept half odd.
inline uint16_t float_to_bf16(float f) {
    const uint32_t x = bits_of(f);
    if ((x & 0x7FFFFFFFu) > 0x7F800000u) return 0x7FC0;
    return static_cast<uint16_t>((x + 0x7FFFu + ((x >> 16) & 1u)) >> 16);
}
// Round to nearest even, subnormals included, |f| >= 65520 -> ±inf (F. Giesen's float_to_half_fast3_rtne).
inline uint16_t float_to_f16(float f) {
    const uint32_t x = bits_of(f), sign = (x >> 16) & 0x8000u, a = x & 0x7FFFFFFFu;
    if (a >= 0x47800000u) return static_cast<uint16_t>(a > 0x7F800000u ? 0x7E00u : (0x7C00u | sign));
    if (a < 0x38800000u) return static_cast<uint16_t>((bits_of(float_of(a) + 0.5f) - 0x3F000000u) | sign);
    return static_cast<uint16_t>(((a + 0xC8000FFFu + ((a >> 13) & 1u)) >> 13) | sign);
}
// TF32: keep 10 mantissa bits, round to nearest with ties away from zero (cvt.rna.tf32.f32); a carry out of
// the largest finite values gives ±inf; inf and NaN are kept.
inline float round_tf32(float f) {
    const uint32_t x = bits_of(f);
    if ((x & 0x7F800000u) == 0x7F800000u) return f;
    return float_of((x + 0x1000u) & ~0x1FFFu);
}

enum class Elem { F32, F16, BF16 };
enum class OpRound { None, TF32, BF16, F16 };

template <Elem E>
inline float load_elem(const void* base, size_t i) {
    if constexpr (E == Elem::F32) return static_cast<const float*>(base)[i];
    if constexpr (E == Elem::F16) return f16_to_float(static_cast<const uint16_t*>(base)[i]);
    if constexpr (E == Elem::BF16) return bf16_to_float(static_cast<const uint16_t*>(base)[i]);
}

template <OpRound R>
inline float round_operand(float x) {
    if constexpr (R == OpRound::TF32) return round_tf32(x);
    if constexpr (R == OpRound::BF16) return bf16_to_float(float_to_bf16(x));
    if constexpr (R == OpRound::F16) return f16_to_float(float_to_f16(x));
    return x;
}

// The micro-tile: MR rows of op(A) (two AVX vectors) by NR columns of op(B); each lane of each accumulator
// is one output element's accumulator.
constexpr int MR = 16, NR = 6;

struct Operands {
    bool na, nb;
    int m, n, k;
    const void* A;
    int lda;
    const void* B;
    int ldb;
};

// Packs op(A) rows i0 .. i0 + MR - 1 (zeros past m) as ap[p * MR + r], converted and rounded.
template <Elem E, OpRound R>
void pack_a(const Operands& o, int i0, float* ap) {
    const int rows = o.m - i0 < MR ? o.m - i0 : MR;
    for (int p = 0; p < o.k; ++p) {
        float* dst = ap + static_cast<size_t>(p) * MR;
        for (int r = 0; r < rows; ++r) {
            const size_t i = static_cast<size_t>(i0 + r);
            const size_t idx = o.na ? i + static_cast<size_t>(p) * o.lda : static_cast<size_t>(p) + i * o.lda;
            dst[r] = round_operand<R>(load_elem<E>(o.A, idx));
        }
        for (int r = rows; r < MR; ++r) dst[r] = 0.0f;
    }
}

// Packs op(B) columns in blocks of NR (zeros past n): bp[(jb * k + p) * NR + c].
template <Elem E, OpRound R>
void pack_b(const Operands& o, float* bp) {
    const int blocks = (o.n + NR - 1) / NR;
    for (int jb = 0; jb < blocks; ++jb) {
        for (int p = 0; p < o.k; ++p) {
            float* dst = bp + (static_cast<size_t>(jb) * o.k + p) * NR;
            for (int c = 0; c < NR; ++c) {
                const int j = jb * NR + c;
                if (j >= o.n) {
                    dst[c] = 0.0f;
                    continue;
                }
                const size_t idx = o.nb ? static_cast<size_t>(p) + static_cast<size_t>(j) * o.ldb
                                        : static_cast<size_t>(j) + static_cast<size_t>(p) * o.ldb;
                dst[c] = round_operand<R>(load_elem<E>(o.B, idx));
            }
        }
    }
}

// tile[c * MR + r] = the accumulation over p = 0 .. k-1 (ascending) of ap[p * MR + r] * bp[p * NR + c].
template <bool kFma>
void tile_portable(int k, const float* ap, const float* bp, float* tile) {
    float acc[NR][MR] = {};
    for (int p = 0; p < k; ++p) {
        const float* a = ap + static_cast<size_t>(p) * MR;
        const float* b = bp + static_cast<size_t>(p) * NR;
        for (int c = 0; c < NR; ++c) {
            for (int r = 0; r < MR; ++r) {
                if constexpr (kFma) {
                    acc[c][r] = std::fma(a[r], b[c], acc[c][r]);
                } else {
                    acc[c][r] = acc[c][r] + a[r] * b[c];
                }
            }
        }
    }
    std::memcpy(tile, acc, sizeof acc);
}

// The same operations per element, eight lanes at a time (each lane its own output's accumulator).
template <bool kFma>
__attribute__((target("avx2,fma"))) void tile_avx2(int k, const float* ap, const float* bp, float* tile) {
    __m256 acc[NR][2];
    for (int c = 0; c < NR; ++c) acc[c][0] = acc[c][1] = _mm256_setzero_ps();
    for (int p = 0; p < k; ++p) {
        const __m256 a0 = _mm256_loadu_ps(ap + static_cast<size_t>(p) * MR);
        const __m256 a1 = _mm256_loadu_ps(ap + static_cast<size_t>(p) * MR + 8);
        const float* b = bp + static_cast<size_t>(p) * NR;
        for (int c = 0; c < NR; ++c) {
            const __m256 bc = _mm256_broadcast_ss(b + c);
            if constexpr (kFma) {
                acc[c][0] = _mm256_fmadd_ps(a0, bc, acc[c][0]);
                acc[c][1] = _mm256_fmadd_ps(a1, bc, acc[c][1]);
            } else {
                acc[c][0] = _mm256_add_ps(acc[c][0], _mm256_mul_ps(a0, bc));
                acc[c][1] = _mm256_add_ps(acc[c][1], _mm256_mul_ps(a1, bc));
            }
        }
    }
    for (int c = 0; c < NR; ++c) {
        _mm256_storeu_ps(tile + c * MR, acc[c][0]);
        _mm256_storeu_ps(tile + c * MR + 8, acc[c][1]);
    }
}

bool use_avx2() {
    static const bool yes = [] {
        const char* p = std::getenv("LOSSKIT_EMU_CUBLAS_PORTABLE");  // 1: the portable kernel (same bits)
        if (p != nullptr && std::strcmp(p, "1") == 0) return false;
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    }();
    return yes;
}

inline float load_c(int ctype, const void* C, size_t i) {
    switch (ctype) {
        case CUDA_R_16BF: return bf16_to_float(static_cast<const uint16_t*>(C)[i]);
        case CUDA_R_16F: return f16_to_float(static_cast<const uint16_t*>(C)[i]);
        default: return static_cast<const float*>(C)[i];
    }
}

inline void store_c(int ctype, void* C, size_t i, float v) {
    switch (ctype) {
        case CUDA_R_16BF: static_cast<uint16_t*>(C)[i] = float_to_bf16(v); break;
        case CUDA_R_16F: static_cast<uint16_t*>(C)[i] = float_to_f16(v); break;
        default: static_cast<float*>(C)[i] = v; break;
    }
}

struct Epilogue {
    float alpha, beta;
    void* C;
    int ctype, ldc;
    void apply(float acc, int i, int j) const {
        const size_t idx = static_cast<size_t>(i) + static_cast<size_t>(j) * ldc;
        float r = alpha * acc;
        if (beta != 0.0f) r = r + beta * load_c(ctype, C, idx);
        store_c(ctype, C, idx, r);
    }
};

template <Elem E, OpRound R, bool kFma>
void run_gemm_ex(const Operands& o, const Epilogue& ep) {
    const int blocks = (o.n + NR - 1) / NR;
    const int panels = (o.m + MR - 1) / MR;
    std::vector<float> bp(static_cast<size_t>(blocks) * o.k * NR);
    pack_b<E, R>(o, bp.data());
    const bool avx2 = use_avx2();
    // Threads split the row panels; each output element is computed the same way whichever thread runs it.
    unsigned threads = std::thread::hardware_concurrency();
    if (threads == 0) threads = 1;
    if (threads > 8) threads = 8;
    if (static_cast<double>(o.m) * o.n * o.k < 4e6) threads = 1;
    if (threads > static_cast<unsigned>(panels)) threads = static_cast<unsigned>(panels);
    auto work = [&](unsigned t) {
        std::vector<float> ap(static_cast<size_t>(o.k) * MR + 8);
        float tile[NR * MR];
        for (int pi = static_cast<int>(t); pi < panels; pi += static_cast<int>(threads)) {
            const int i0 = pi * MR;
            pack_a<E, R>(o, i0, ap.data());
            const int rows = o.m - i0 < MR ? o.m - i0 : MR;
            for (int jb = 0; jb < blocks; ++jb) {
                const float* b = bp.data() + static_cast<size_t>(jb) * o.k * NR;
                if (avx2) {
                    tile_avx2<kFma>(o.k, ap.data(), b, tile);
                } else {
                    tile_portable<kFma>(o.k, ap.data(), b, tile);
                }
                const int cols = o.n - jb * NR < NR ? o.n - jb * NR : NR;
                for (int c = 0; c < cols; ++c) {
                    for (int r = 0; r < rows; ++r) ep.apply(tile[c * MR + r], i0 + r, jb * NR + c);
                }
            }
        }
    };
    if (threads <= 1) {
        work(0);
        return;
    }
    std::vector<std::thread> pool;
    for (unsigned t = 1; t < threads; ++t) pool.emplace_back(work, t);
    work(0);
    for (std::thread& th : pool) th.join();
}

size_t elem_size(int t) { return t == CUDA_R_64F ? 8 : (t == CUDA_R_32F ? 4 : 2); }

}  // namespace

CUBLAS_API cublasStatus_t cublasGemmEx(void* handle, int transa, int transb, int m, int n, int k, const void* alpha,
                                       const void* A, int Atype, int lda, const void* B, int Btype, int ldb,
                                       const void* beta, void* C, int Ctype, int ldc, int computeType, int algo) {
    static const char* const call = "cublasGemmEx";
    int pointer_mode;
    void* stream;
    if (!handle_state(handle, pointer_mode, stream)) return CUBLAS_STATUS_NOT_INITIALIZED;
    const bool na = transa == CUBLAS_OP_N, nb = transb == CUBLAS_OP_N;
    const int a_rows = na ? m : k, a_cols = na ? k : m;
    const int b_rows = nb ? k : n, b_cols = nb ? n : k;
    auto known_type = [](int t) { return t >= 0 && t <= kLastDataType; };
    if (!valid_shape(transa, transb, m, n, k, a_rows, lda, b_rows, ldb, ldc) || alpha == nullptr || beta == nullptr ||
        !known_type(Atype) || !known_type(Btype) || !known_type(Ctype) || !valid_compute(computeType) ||
        !valid_algo(algo)) {
        // A legacy cudaDataType computeType (CUDA_R_32F = 0...) lands here: cuBLAS 12's C symbol takes a
        // cublasComputeType_t; cublas_api.h's C++ overload (and JCublas2.cublasGemmEx) migrate it before.
        note("%s: invalid arguments (transa %d, transb %d, m %d, n %d, k %d, lda %d, ldb %d, ldc %d, Atype %d, "
             "Btype %d, Ctype %d, computeType %d, algo %d)",
             call, transa, transb, m, n, k, lda, ldb, ldc, Atype, Btype, Ctype, computeType, algo);
        return CUBLAS_STATUS_INVALID_VALUE;
    }
    const bool compute32 = computeType == CUBLAS_COMPUTE_32F || computeType == CUBLAS_COMPUTE_32F_PEDANTIC;
    const bool fast32 = computeType == CUBLAS_COMPUTE_32F_FAST_TF32 || computeType == CUBLAS_COMPUTE_32F_FAST_16BF ||
                        computeType == CUBLAS_COMPUTE_32F_FAST_16F;
    const bool half_ab = Atype == Btype && (Atype == CUDA_R_16BF || Atype == CUDA_R_16F);
    const bool f32_all = Atype == CUDA_R_32F && Btype == CUDA_R_32F && Ctype == CUDA_R_32F;
    const bool f64_all = Atype == CUDA_R_64F && Btype == CUDA_R_64F && Ctype == CUDA_R_64F;
    if ((computeType == CUBLAS_COMPUTE_64F || computeType == CUBLAS_COMPUTE_64F_PEDANTIC) && f64_all) {
        return gemm(call, handle, transa, transb, m, n, k, static_cast<const double*>(alpha),
                    static_cast<const double*>(A), lda, static_cast<const double*>(B), ldb,
                    static_cast<const double*>(beta), static_cast<double*>(C), ldc);
    }
    if (!((compute32 && ((half_ab && (Ctype == CUDA_R_32F || Ctype == Atype)) || f32_all)) || (fast32 && f32_all))) {
        const bool documented = Atype == Btype && documented_real_combination(computeType, Atype, Ctype);
        note("%s: A %s, B %s, C %s with %s: %s", call, type_name(Atype).c_str(), type_name(Btype).c_str(),
             type_name(Ctype).c_str(), compute_name(computeType),
             documented ? "a combination cuBLAS supports that the emulated cuBLAS does not implement"
                        : "not a combination cuBLAS supports (see cublasGemmEx's table of data types)");
        return CUBLAS_STATUS_NOT_SUPPORTED;
    }
    if (m == 0 || n == 0) return CUBLAS_STATUS_SUCCESS;
    losskit_emu_stream_drain(stream);
    // The scale type of every COMPUTE_32F* combination is CUDA_R_32F.
    if (pointer_mode == CUBLAS_POINTER_MODE_DEVICE &&
        (!inside_allocation(call, "alpha", alpha, sizeof(float)) || !inside_allocation(call, "beta", beta, sizeof(float)))) {
        return CUBLAS_STATUS_EXECUTION_FAILED;
    }
    const float a = *static_cast<const float*>(alpha), b = *static_cast<const float*>(beta);
    const bool reads_ab = k > 0 && a != 0.0f;
    if ((reads_ab && (!inside_allocation(call, "A", A, extent(a_rows, a_cols, lda) * elem_size(Atype)) ||
                      !inside_allocation(call, "B", B, extent(b_rows, b_cols, ldb) * elem_size(Btype)))) ||
        !inside_allocation(call, "C", C, extent(m, n, ldc) * elem_size(Ctype))) {
        return CUBLAS_STATUS_EXECUTION_FAILED;
    }
    if (!reads_ab) {
        for (int j = 0; j < n; ++j) {
            for (int i = 0; i < m; ++i) {
                const size_t idx = static_cast<size_t>(i) + static_cast<size_t>(j) * ldc;
                store_c(Ctype, C, idx, b == 0.0f ? 0.0f : b * load_c(Ctype, C, idx));
            }
        }
        return CUBLAS_STATUS_SUCCESS;
    }
    const Operands o{na, nb, m, n, k, A, lda, B, ldb};
    const Epilogue ep{a, b, C, Ctype, ldc};
    if (Atype == CUDA_R_16BF) {
        run_gemm_ex<Elem::BF16, OpRound::None, false>(o, ep);
    } else if (Atype == CUDA_R_16F) {
        run_gemm_ex<Elem::F16, OpRound::None, false>(o, ep);
    } else if (computeType == CUBLAS_COMPUTE_32F_FAST_TF32) {
        run_gemm_ex<Elem::F32, OpRound::TF32, false>(o, ep);
    } else if (computeType == CUBLAS_COMPUTE_32F_FAST_16BF) {
        run_gemm_ex<Elem::F32, OpRound::BF16, false>(o, ep);
    } else if (computeType == CUBLAS_COMPUTE_32F_FAST_16F) {
        run_gemm_ex<Elem::F32, OpRound::F16, false>(o, ep);
    } else {
        run_gemm_ex<Elem::F32, OpRound::None, true>(o, ep);
    }
    return CUBLAS_STATUS_SUCCESS;
}
