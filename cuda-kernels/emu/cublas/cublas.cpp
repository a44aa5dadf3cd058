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
//   cublasGetVersion_v2, GetProperty, GetCudartVersion, GetStatusName, GetStatusString
// Device pointers are host addresses in the emulated driver, so a GEMM runs on them directly through
// OpenBLAS's cblas_sgemm / cblas_dgemm (the same precision as cuBLAS: results differ from a GPU's by
// summation order only). Before it runs, every operand's extent (from m, n, k and the leading dimension) is
// checked against the driver's allocation (cuMemGetAddressRange): a GEMM that would read or write past
// an allocation fails with CUBLAS_STATUS_EXECUTION_FAILED and says which operand and by how much, where
// a GPU would fault or silently corrupt memory. Work runs at submission, on the calling thread, once the
// work queued before it on its stream has completed (losskit_emu_stream_drain): the driver runs streams
// asynchronously, each on its own worker.
#include <cblas.h>

#include <cinttypes>
#include <cstdarg>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <set>
#include <string>

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
    {
        std::lock_guard<std::mutex> guard(lock());
        Handle* h = live_handle(handle);
        if (h == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;
        pointer_mode = h->pointer_mode;
        stream = h->stream;
    }
    const bool na = transa == CUBLAS_OP_N, nb = transb == CUBLAS_OP_N;
    const int a_rows = na ? m : k, a_cols = na ? k : m;
    const int b_rows = nb ? k : n, b_cols = nb ? n : k;
    if (!valid_op(transa) || !valid_op(transb) || m < 0 || n < 0 || k < 0 || lda < (a_rows > 1 ? a_rows : 1) ||
        ldb < (b_rows > 1 ? b_rows : 1) || ldc < (m > 1 ? m : 1) || alpha == nullptr || beta == nullptr) {
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
