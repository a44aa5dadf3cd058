/*
 * The row skeleton shared by the rows and pairs families: one warp per row (LOSSKIT_ROW_BLOCK / 32 rows
 * per block at a time, grid-stride over rows). Generic per row, in the CPU backend's order: the weight
 * check, the label (ignoreIndex rows write zero gradient and loss; out-of-range labels are reported),
 * checkFinite, then the term — a warp-cooperative __device__ function that returns the row's loss on
 * every lane and writes its gradient already multiplied by r.g = gradFactor·s. Lane 0 accumulates
 * Σ s·l and Σ s·d; the block folds them (include/reduce.cuh) into partials[block], partials[grid + block].
 *
 * Kernel parameters (the same for every row and pair loss):
 *   a, b, c     the form's float [N, len] slots in order (null when absent)
 *   rowTarget   the per-row float target [N] or null; y32 / y64: int labels [N] (one of them) or null
 *   w           per-row weights or null; cw: classWeight [C] or null
 *   ga, gb, gc  gradient destinations or null; losses: s·l per row (NONE) or null
 *   partials    [2·gridDim.x]; bad: first domain violation (include/domain.cuh)
 *   rows, len   N and the row length; classes: valid labels [0, classes); ignoreIndex
 *   flags       bit 0 checkFinite, bit 1 has ignoreIndex, bits 2-3 denominator kind (0 one, 1 class
 *               weight of the label, 2 denConst), bits 4-5 number of float slots (= the form index of
 *               the label or row-target slot)
 *   gradFactor  gradScale / Σ s·d under MEAN/BATCHMEAN; denConst: d for kind 2
 *   gradFactorAt  null, or where the device holds gradFactor (folded by finish.cu from the denominator
 *               pre-pass, so the host never waits for it); it overrides gradFactor
 *   p0..p5      the loss's scalar parameters in catalogue order
 */
#ifndef LOSSKIT_ROW_SKELETON_CUH
#define LOSSKIT_ROW_SKELETON_CUH

#include "include/domain.cuh"
#include "include/reduce.cuh"
#include "include/stable_math.cuh"

#define LOSSKIT_ROW_BLOCK 128

/* One row as a term sees it: pointers already offset to the row's first element. */
struct RowCtx {
    const float* a;
    const float* b;
    const float* c;
    float* ga;
    float* gb;
    float* gc;
    int64_t len;
    int lane;
    int64_t label;
    double rowTarget;
    double g;
    const float* cw;
};

#define LK_COLS(j) for (int64_t j = r.lane; j < r.len; j += 32)
#define LK_A(j) ((double)__ldg(r.a + (j)))
#define LK_B(j) ((double)__ldg(r.b + (j)))
#define LK_C(j) ((double)__ldg(r.c + (j)))
#define LK_CW(j) (r.cw != nullptr ? (double)__ldg(r.cw + (j)) : 1.0)

#define LK_ROW_TERM(NAME) \
    struct NAME { __device__ static __forceinline__ double eval(const RowCtx& r, const LkParams& P, unsigned long long& bad)

/* Records a violation at column j of this lane (the first in check order wins after warp_allmin_u64). */
#define LK_ROW_BAD(j, slot, reason) bad = min_u64(bad, lk_in_row((j), lk_code((slot), (reason))))

__device__ __forceinline__ unsigned long long min_u64(unsigned long long a, unsigned long long b) { return a < b ? a : b; }

/* logsumexp of row a with the online softmax: one read per lane, then a butterfly merge (all lanes equal). */
__device__ __forceinline__ double row_lse(const RowCtx& r) {
    LseState st;
    st.m = -INFINITY;
    st.s = 0;
    st.nan = false;
    LK_COLS(j) { lse_add(st, LK_A(j)); }
    for (int mask = 16; mask > 0; mask >>= 1) {
        const double m2 = __shfl_xor_sync(LOSSKIT_FULL_MASK, st.m, mask);
        const double s2 = __shfl_xor_sync(LOSSKIT_FULL_MASK, st.s, mask);
        const int n2 = __shfl_xor_sync(LOSSKIT_FULL_MASK, st.nan ? 1 : 0, mask);
        lse_merge(st, m2, s2, n2 != 0);
    }
    return lse_value(st);
}

struct RowArgs {
    const float* a;
    const float* b;
    const float* c;
    const float* rowTarget;
    const int32_t* y32;
    const int64_t* y64;
    const float* w;
    const float* cw;
    float* ga;
    float* gb;
    float* gc;
    float* losses;
    double* partials;
    unsigned long long* bad;
    int64_t rows;
    int64_t len;
    int32_t classes;
    int32_t ignoreIndex;
    int32_t flags;
    double gradFactor;
    double denConst;
    LkParams P;
};

__device__ __forceinline__ double row_denominator(int kind, const float* cw, int64_t label, double denConst) {
    return kind == 0 ? 1.0 : kind == 1 ? (cw != nullptr ? (double)__ldg(cw + label) : 1.0) : denConst;
}

template <class Term>
__device__ __forceinline__ void row_kernel(const RowArgs& A) {
    constexpr int WARPS = LOSSKIT_ROW_BLOCK / 32;
    const int lane = threadIdx.x & 31;
    const int warp = threadIdx.x >> 5;
    const bool checkFinite = (A.flags & 1) != 0;
    const bool hasIgnore = (A.flags & 2) != 0;
    const int denKind = (A.flags >> 2) & 3;
    const int valueSlots = (A.flags >> 4) & 3;
    const int64_t len = A.len;
    double sumL = 0;
    double sumW = 0;
    for (int64_t row = (int64_t)blockIdx.x * WARPS + warp; row < A.rows; row += (int64_t)gridDim.x * WARPS) {
        const int64_t off = row * len;
        const double s = A.w != nullptr ? (double)__ldg(A.w + row) : 1.0;
        if (!(s >= 0 && s < INFINITY)) {
            if (lane == 0) {
                lk_report(A.bad, row, LK_STAGE_WEIGHT, lk_in_row(0, lk_code(LK_SLOT_WEIGHTS, LK_REASON_WEIGHT)));
            }
            continue;
        }
        int64_t label = -1;
        if (A.y32 != nullptr || A.y64 != nullptr) {
            label = A.y32 != nullptr ? (int64_t)__ldg(A.y32 + row) : (int64_t)__ldg(A.y64 + row);
            if (hasIgnore && label == A.ignoreIndex) {
                for (int64_t j = lane; j < len; j += 32) {
                    if (A.ga != nullptr) A.ga[off + j] = 0.0f;
                    if (A.gb != nullptr) A.gb[off + j] = 0.0f;
                    if (A.gc != nullptr) A.gc[off + j] = 0.0f;
                }
                if (lane == 0 && A.losses != nullptr) A.losses[row] = 0.0f;
                continue;
            }
            if (!(label >= 0 && label < A.classes)) {
                if (lane == 0) {
                    lk_report(A.bad, row, LK_STAGE_LABEL, lk_in_row(0, lk_code(valueSlots, LK_REASON_LABEL)));
                }
                continue;
            }
        }
        const double rowTarget = A.rowTarget != nullptr ? (double)__ldg(A.rowTarget + row) : 0.0;
        if (checkFinite) {
            unsigned long long bad = LK_NO_ERROR;
            for (int k = 0; k < valueSlots; k++) {
                const float* slot = k == 0 ? A.a : k == 1 ? A.b : A.c;
                for (int64_t j = lane; j < len; j += 32) {
                    if (!lk_isfinite((double)__ldg(slot + off + j))) {
                        bad = min_u64(bad, lk_in_row(k * len + j, lk_code(k, LK_REASON_FINITE)));
                    }
                }
            }
            if (A.rowTarget != nullptr && !lk_isfinite(rowTarget)) {
                bad = min_u64(bad, lk_in_row(valueSlots * len, lk_code(valueSlots, LK_REASON_FINITE)));
            }
            bad = warp_allmin_u64(bad);
            if (bad != LK_NO_ERROR) {
                if (lane == 0) lk_report(A.bad, row, LK_STAGE_FINITE, bad);
                continue;
            }
        }
        RowCtx r;
        r.a = A.a != nullptr ? A.a + off : nullptr;
        r.b = A.b != nullptr ? A.b + off : nullptr;
        r.c = A.c != nullptr ? A.c + off : nullptr;
        r.ga = A.ga != nullptr ? A.ga + off : nullptr;
        r.gb = A.gb != nullptr ? A.gb + off : nullptr;
        r.gc = A.gc != nullptr ? A.gc + off : nullptr;
        r.len = len;
        r.lane = lane;
        r.label = label;
        r.rowTarget = rowTarget;
        r.g = A.gradFactor * s;
        r.cw = A.cw;
        unsigned long long bad = LK_NO_ERROR;
        const double l = Term::eval(r, A.P, bad);
        bad = warp_allmin_u64(bad);
        if (bad != LK_NO_ERROR) {
            if (lane == 0) lk_report(A.bad, row, LK_STAGE_TERM, bad);
            continue;
        }
        if (lane == 0) {
            const double sl = s * l;
            sumL += sl;
            sumW += s * row_denominator(denKind, A.cw, label, A.denConst);
            if (A.losses != nullptr) A.losses[row] = (float)sl;
        }
    }
    block_sum2<LOSSKIT_ROW_BLOCK>(sumL, sumW);
    if (threadIdx.x == 0) {
        A.partials[blockIdx.x] = sumL;
        A.partials[gridDim.x + blockIdx.x] = sumW;
    }
}

#define LOSSKIT_ROW_KERNEL(PREFIX, NAME, TERM)                                                                   \
    extern "C" __global__ void __launch_bounds__(LOSSKIT_ROW_BLOCK, 1) losskit_##PREFIX##_##NAME(                  \
        const float* a, const float* b, const float* c, const float* rowTarget, const int32_t* y32,             \
        const int64_t* y64, const float* w, const float* cw, float* ga, float* gb, float* gc, float* losses,    \
        double* partials, unsigned long long* bad, int64_t rows, int64_t len, int32_t classes,                  \
        int32_t ignoreIndex, int32_t flags, double gradFactor, const double* gradFactorAt, double denConst,      \
        double p0, double p1, double p2, double p3, double p4, double p5) {                                     \
        RowArgs A;                                                                                              \
        A.a = a;                                                                                                \
        A.b = b;                                                                                                \
        A.c = c;                                                                                                \
        A.rowTarget = rowTarget;                                                                                \
        A.y32 = y32;                                                                                            \
        A.y64 = y64;                                                                                            \
        A.w = w;                                                                                                \
        A.cw = cw;                                                                                              \
        A.ga = ga;                                                                                              \
        A.gb = gb;                                                                                              \
        A.gc = gc;                                                                                              \
        A.losses = losses;                                                                                      \
        A.partials = partials;                                                                                  \
        A.bad = bad;                                                                                            \
        A.rows = rows;                                                                                          \
        A.len = len;                                                                                            \
        A.classes = classes;                                                                                    \
        A.ignoreIndex = ignoreIndex;                                                                            \
        A.flags = flags;                                                                                        \
        A.gradFactor = gradFactorAt != nullptr ? *gradFactorAt : gradFactor;                                    \
        A.denConst = denConst;                                                                                  \
        A.P.p[0] = p0;                                                                                          \
        A.P.p[1] = p1;                                                                                          \
        A.P.p[2] = p2;                                                                                          \
        A.P.p[3] = p3;                                                                                          \
        A.P.p[4] = p4;                                                                                          \
        A.P.p[5] = p5;                                                                                          \
        row_kernel<TERM>(A);                                                                                    \
    }

#endif
