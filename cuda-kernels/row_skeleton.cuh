/*
 * The row skeleton shared by the rows and pairs families, stamped twice per loss: EXACT (T = double) and FAST
 * (T = lkf, float32 per-column arithmetic; sums over columns and the row's own combination in float64).
 * Generic per row, in the CPU backend's order: the weight check, the label (ignoreIndex rows write zero
 * gradient and loss; out-of-range labels are reported), checkFinite, then the term — a warp-cooperative
 * __device__ function that returns the row's loss (float64, the same on every lane) and writes its gradient
 * already multiplied by r.g = gradFactor·s.
 *
 * Summation order (include/canonical.cuh): CUDA block b is block b of the summation order's split of the rows
 * (losskit.api.SummationOrder, `per` rows each); the block's rows go to 256 lanes, row ρ of the block to lane
 * ρ mod 256, owned by thread ρ mod 256 — warp w computes the rows whose lane is in [32w, 32w + 32), in row order,
 * and lane m of the warp chains row 32w + m + 256k into its accumulators Σ s·l and Σ s·d; the block then adds the
 * 256 lanes by the canonical tree. Sums over a row's columns use lk_row_sum's lanes (every lane receives them).
 * The CPU backend forms the same sums (losskit.cpu.FastRowDriver).
 *
 * Kernel parameters (the same for every row and pair loss):
 *   a, b, c     the form's [N, len] value slots in order (null when absent), float32 or 16-bit (flags)
 *   rowTarget   the per-row target [N] or null (float32 or 16-bit); y32 / y64: int labels [N] (one) or null
 *   w           per-row float32 weights or null; cw: float32 classWeight [C] or null
 *   ga, gb, gc  gradient destinations or null; losses: s·l per row (NONE) or null (float32 or 16-bit)
 *   partials    [2·gridDim.x]; bad: first domain violation (include/domain.cuh)
 *   rows, len   N and the row length; per: rows per block; classes: valid labels [0, classes); ignoreIndex
 *   flags       bit 0 checkFinite, bit 1 has ignoreIndex, bits 2-3 denominator kind (0 one, 1 class
 *               weight of the label, 2 denConst), bits 4-5 number of value slots (= the form index of
 *               the label or row-target slot); 2-bit dtype codes at bit 6 a, 8 b, 10 c, 12 rowTarget,
 *               14 ga, 16 gb, 18 gc, 20 losses
 *   gradFactor  gradScale / Σ s·d under MEAN/BATCHMEAN; denConst: d for kind 2
 *   gradFactorAt  null, or where the device holds gradFactor (folded by finish.cu from the denominator
 *               pre-pass, so the host never waits for it); it overrides gradFactor
 *   p0..p5      the loss's scalar parameters in catalogue order
 */
#ifndef LOSSKIT_ROW_SKELETON_CUH
#define LOSSKIT_ROW_SKELETON_CUH

#include "include/canonical.cuh"
#include "include/domain.cuh"
#include "include/dtype.cuh"
#include "include/precision.cuh"

#define LOSSKIT_ROW_BLOCK 256
#define LK_FAST lk_is_fast<T>::value
#define LK_FLT_MAX_ROW 0x1.fffffep127f
#define LK_IN 0
#define LK_TG 1

/* One row as a term sees it: pointers already offset to the row's first element. */
template <class T>
struct RowCtx {
    const void* a;
    const void* b;
    const void* c;
    void* ga;
    void* gb;
    void* gc;
    int dta, dtb, dtc, dtga, dtgb, dtgc;
    int64_t len;
    int lane;
    int64_t label;
    T rowTarget;
    /* gradFactor·s: in float64, and as T (FAST: that product rounded once to float32) */
    double gd;
    T g;
    const float* cw;
};

/* Column j of slot a, b or c (widened exactly to float32, then as T). */
template <class T> __device__ __forceinline__ T row_a(const RowCtx<T>& r, int64_t j) { return T(lk_load1(r.a, r.dta, j)); }
template <class T> __device__ __forceinline__ T row_b(const RowCtx<T>& r, int64_t j) { return T(lk_load1(r.b, r.dtb, j)); }
template <class T> __device__ __forceinline__ T row_c(const RowCtx<T>& r, int64_t j) { return T(lk_load1(r.c, r.dtc, j)); }
/* classWeight[j] (1 without class weights). */
template <class T> __device__ __forceinline__ T row_cw(const RowCtx<T>& r, int64_t j) {
    return r.cw != nullptr ? T(__ldg(r.cw + j)) : T(1.0);
}
/* Writes gradient value v (rounded once to the destination's dtype) at column j. */
__device__ __forceinline__ void row_put(void* g, int dt, int64_t j, double v) { lk_store1(g, dt, j, (float)v); }
__device__ __forceinline__ void row_put(void* g, int dt, int64_t j, lkf v) { lk_store1(g, dt, j, v.v); }

#define LK_COLS(j) for (int64_t j = r.lane; j < r.len; j += 32)

#define LK_ROW_TERM(NAME) \
    struct NAME { template <class T> __device__ static __forceinline__ double eval(const RowCtx<T>& r, const LkParams& P, unsigned long long& bad)

/* Records a violation at column j of this lane (the first in check order wins after warp_allmin_u64). */
#define LK_ROW_BAD(j, slot, reason) bad = min_u64(bad, lk_in_row((j), lk_code((slot), (reason))))

__device__ __forceinline__ unsigned long long min_u64(unsigned long long a, unsigned long long b) { return a < b ? a : b; }

__device__ __forceinline__ double row_denominator(int kind, const float* cw, int64_t label, double denConst) {
    return kind == 0 ? 1.0 : kind == 1 ? (cw != nullptr ? (double)__ldg(cw + label) : 1.0) : denConst;
}

__device__ __forceinline__ int row_dtype(int flags, int bit) { return (flags >> bit) & 3; }

/* The first column (in check order) whose input p or target t leaves [0, 1], reported through bad. */
template <class T>
__device__ __forceinline__ bool row_check_unit(const RowCtx<T>& r, bool input, bool target, unsigned long long& bad) {
    LK_COLS(j) {
        if (input) {
            const float p = lk_load1(r.a, r.dta, j);
            if (!(p >= 0.0f && p <= 1.0f)) {
                LK_ROW_BAD(j, LK_IN, LK_REASON_UNIT);
                break;
            }
        }
        if (target) {
            const float t = lk_load1(r.b, r.dtb, j);
            if (!(t >= 0.0f && t <= 1.0f)) {
                LK_ROW_BAD(j, LK_TG, LK_REASON_UNIT);
                break;
            }
        }
    }
    bad = warp_allmin_u64(bad);
    return bad == LK_NO_ERROR;
}

struct RowArgs {
    const void* a;
    const void* b;
    const void* c;
    const void* rowTarget;
    const int32_t* y32;
    const int64_t* y64;
    const float* w;
    const float* cw;
    void* ga;
    void* gb;
    void* gc;
    void* losses;
    double* partials;
    unsigned long long* bad;
    int64_t rows;
    int64_t len;
    int64_t per;
    int32_t classes;
    int32_t ignoreIndex;
    int32_t flags;
    double gradFactor;
    double denConst;
    LkParams P;
};

/* One row, by its warp: returns whether it counts, with s·l (the loss) and s (the weight) in sl and s. */
template <class T, class Term>
__device__ __forceinline__ bool row_one(const RowArgs& A, int64_t row, int lane, double& l, float& s, int64_t& label) {
    const bool checkFinite = (A.flags & 1) != 0;
    const bool hasIgnore = (A.flags & 2) != 0;
    const int valueSlots = (A.flags >> 4) & 3;
    const int64_t len = A.len;
    const int64_t off = row * len;
    const int dta = row_dtype(A.flags, 6), dtb = row_dtype(A.flags, 8), dtc = row_dtype(A.flags, 10);
    const int dtga = row_dtype(A.flags, 14), dtgb = row_dtype(A.flags, 16), dtgc = row_dtype(A.flags, 18);
    s = A.w != nullptr ? __ldg(A.w + row) : 1.0f;
    if (!(s >= 0.0f && s < INFINITY)) {
        if (lane == 0) {
            lk_report(A.bad, row, LK_STAGE_WEIGHT, lk_in_row(0, lk_code(LK_SLOT_WEIGHTS, LK_REASON_WEIGHT)));
        }
        return false;
    }
    label = -1;
    if (A.y32 != nullptr || A.y64 != nullptr) {
        label = A.y32 != nullptr ? (int64_t)__ldg(A.y32 + row) : (int64_t)__ldg(A.y64 + row);
        if (hasIgnore && label == A.ignoreIndex) {
            for (int64_t j = lane; j < len; j += 32) {
                if (A.ga != nullptr) lk_store1(A.ga, dtga, off + j, 0.0f);
                if (A.gb != nullptr) lk_store1(A.gb, dtgb, off + j, 0.0f);
                if (A.gc != nullptr) lk_store1(A.gc, dtgc, off + j, 0.0f);
            }
            if (lane == 0 && A.losses != nullptr) lk_store1(A.losses, row_dtype(A.flags, 20), row, 0.0f);
            return false;
        }
        if (!(label >= 0 && label < A.classes)) {
            if (lane == 0) {
                lk_report(A.bad, row, LK_STAGE_LABEL, lk_in_row(0, lk_code(valueSlots, LK_REASON_LABEL)));
            }
            return false;
        }
    }
    const float rowTarget = A.rowTarget != nullptr ? lk_load1(A.rowTarget, row_dtype(A.flags, 12), row) : 0.0f;
    if (checkFinite) {
        unsigned long long bad = LK_NO_ERROR;
        for (int k = 0; k < valueSlots; k++) {
            const void* slot = k == 0 ? A.a : k == 1 ? A.b : A.c;
            const int dt = k == 0 ? dta : k == 1 ? dtb : dtc;
            for (int64_t j = lane; j < len; j += 32) {
                if (!(fabsf(lk_load1(slot, dt, off + j)) <= LK_FLT_MAX_ROW)) {
                    bad = min_u64(bad, lk_in_row(k * len + j, lk_code(k, LK_REASON_FINITE)));
                }
            }
        }
        if (A.rowTarget != nullptr && !(fabsf(rowTarget) <= LK_FLT_MAX_ROW)) {
            bad = min_u64(bad, lk_in_row(valueSlots * len, lk_code(valueSlots, LK_REASON_FINITE)));
        }
        bad = warp_allmin_u64(bad);
        if (bad != LK_NO_ERROR) {
            if (lane == 0) lk_report(A.bad, row, LK_STAGE_FINITE, bad);
            return false;
        }
    }
    RowCtx<T> r;
    r.a = A.a != nullptr ? (const void*)((const char*)A.a + off * (dta == LK_DT_F32 ? 4 : 2)) : nullptr;
    r.b = A.b != nullptr ? (const void*)((const char*)A.b + off * (dtb == LK_DT_F32 ? 4 : 2)) : nullptr;
    r.c = A.c != nullptr ? (const void*)((const char*)A.c + off * (dtc == LK_DT_F32 ? 4 : 2)) : nullptr;
    r.ga = A.ga != nullptr ? (void*)((char*)A.ga + off * (dtga == LK_DT_F32 ? 4 : 2)) : nullptr;
    r.gb = A.gb != nullptr ? (void*)((char*)A.gb + off * (dtgb == LK_DT_F32 ? 4 : 2)) : nullptr;
    r.gc = A.gc != nullptr ? (void*)((char*)A.gc + off * (dtgc == LK_DT_F32 ? 4 : 2)) : nullptr;
    r.dta = dta;
    r.dtb = dtb;
    r.dtc = dtc;
    r.dtga = dtga;
    r.dtgb = dtgb;
    r.dtgc = dtgc;
    r.len = len;
    r.lane = lane;
    r.label = label;
    r.rowTarget = T(rowTarget);
    r.gd = (lkd(A.gradFactor) * lkd(s)).v;
    r.g = lk_to<T>(r.gd);
    r.cw = A.cw;
    unsigned long long bad = LK_NO_ERROR;
    l = Term::eval(r, A.P, bad);
    bad = warp_allmin_u64(bad);
    if (bad != LK_NO_ERROR) {
        if (lane == 0) lk_report(A.bad, row, LK_STAGE_TERM, bad);
        return false;
    }
    return true;
}

template <class T, class Term>
__device__ __forceinline__ void row_kernel(const RowArgs& A) {
    const int lane = threadIdx.x & 31;
    const int warp = threadIdx.x >> 5;
    const int denKind = (A.flags >> 2) & 3;
    const int64_t start = (int64_t)blockIdx.x * A.per;
    const int64_t end = start + A.per < A.rows ? start + A.per : A.rows;
    double accL = 0;
    double accW = 0;
    for (int64_t base = start + 32 * warp; base < end; base += LK_ROW_LANES) {
        for (int m = 0; m < 32; m++) {
            const int64_t row = base + m;
            if (row >= end) break;
            double l;
            float s;
            int64_t label;
            if (!row_one<T, Term>(A, row, lane, l, s, label)) continue;
            if (lane == m) {
                accL = fma((double)s, l, accL);
                accW = fma((double)s, row_denominator(denKind, A.cw, label, A.denConst), accW);
                if (A.losses != nullptr) lk_store1(A.losses, row_dtype(A.flags, 20), row, (float)((lkd(s) * lkd(l)).v));
            }
        }
    }
    lk_block_tree2(accL, accW);
    if (threadIdx.x == 0) {
        A.partials[blockIdx.x] = accL;
        A.partials[gridDim.x + blockIdx.x] = accW;
    }
}

#define LOSSKIT_ROW_KERNEL_AS(NAME, T, TERM)                                                                   \
    extern "C" __global__ void __launch_bounds__(LOSSKIT_ROW_BLOCK, 1) NAME(                                  \
        const void* a, const void* b, const void* c, const void* rowTarget, const int32_t* y32,               \
        const int64_t* y64, const float* w, const float* cw, void* ga, void* gb, void* gc, void* losses,      \
        double* partials, unsigned long long* bad, int64_t rows, int64_t len, int64_t per, int32_t classes,   \
        int32_t ignoreIndex, int32_t flags, double gradFactor, const double* gradFactorAt, double denConst,    \
        double p0, double p1, double p2, double p3, double p4, double p5) {                                   \
        RowArgs A;                                                                                            \
        A.a = a;                                                                                              \
        A.b = b;                                                                                              \
        A.c = c;                                                                                              \
        A.rowTarget = rowTarget;                                                                              \
        A.y32 = y32;                                                                                          \
        A.y64 = y64;                                                                                          \
        A.w = w;                                                                                              \
        A.cw = cw;                                                                                            \
        A.ga = ga;                                                                                            \
        A.gb = gb;                                                                                            \
        A.gc = gc;                                                                                            \
        A.losses = losses;                                                                                    \
        A.partials = partials;                                                                                \
        A.bad = bad;                                                                                          \
        A.rows = rows;                                                                                        \
        A.len = len;                                                                                          \
        A.per = per;                                                                                          \
        A.classes = classes;                                                                                  \
        A.ignoreIndex = ignoreIndex;                                                                          \
        A.flags = flags;                                                                                      \
        A.gradFactor = gradFactorAt != nullptr ? *gradFactorAt : gradFactor;                                  \
        A.denConst = denConst;                                                                                \
        A.P.p[0] = p0;                                                                                        \
        A.P.p[1] = p1;                                                                                        \
        A.P.p[2] = p2;                                                                                        \
        A.P.p[3] = p3;                                                                                        \
        A.P.p[4] = p4;                                                                                        \
        A.P.p[5] = p5;                                                                                        \
        lk_params_narrow(A.P);                                                                                \
        row_kernel<T, TERM>(A);                                                                               \
    }

#define LOSSKIT_ROW_KERNEL(PREFIX, NAME, TERM)                           \
    LOSSKIT_ROW_KERNEL_AS(losskit_##PREFIX##_##NAME, double, TERM)       \
    LOSSKIT_ROW_KERNEL_AS(losskit_##PREFIX##_##NAME##_fast, lkf, TERM)

#endif
