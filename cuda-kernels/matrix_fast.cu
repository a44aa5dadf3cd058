/*
 * The matrix family in FAST precision (its own module: matrix.cu holds the float64 kernels): linear-cross-entropy on float32 logits that a
 * tensor-core GEMM wrote (losskit.cuda.CudaMatrixFast: cublasGemmEx, bf16/fp16 operands or float32 ones,
 * float32 accumulation), reduced in float32 with compensated sums, and its gradient written in the form the
 * backward GEMMs take:
 *
 *   losskit_matrix_linear_cross_entropy_fast   one block per row of a block of logits
 *   losskit_matrix_fast_narrow                 a float32 gradient rounded once into a 16-bit device destination
 *   losskit_matrix_fast_sum_slabs              dh's per-slab float32 partials summed in float64, slab order
 *
 * Why a split gradient. The backward GEMMs (dh = G·W, dW += Gᵀ·h) multiply G with the operands, so G must have
 * the operands' dtype. Rounded to bfloat16 once, G carries a relative error of up to 2⁻⁹ per element, and in
 * dW_v = Σ_i G_iv h_i those errors add up over the N rows as a random walk against a sum that is coherent
 * only where many rows agree: ~1e-3 of the largest gradient element at N = 8 192, ten times the contract
 * (issue 17: 1e-4·max|g| with bf16 operands). So for 16-bit operands G is written as two 16-bit arrays,
 * hi = round(G) and lo = round(G − hi), and each backward product is two GEMMs (G·W = hi·W + lo·W, β = 1 for
 * the second): G is then exact to ~2⁻¹⁷ (bf16) or ~2⁻²² (fp16) of itself, the products hi·W and lo·W are exact
 * in float32 (8 × 8 or 11 × 11 significant bits), and the error left is float32 accumulation. It costs two
 * extra GEMMs per row block (five instead of three); docs/BENCHMARKS.md models the time. float32 operands
 * need no split: G is written over the logits and the backward GEMMs are float32 GEMMs.
 *
 * Arithmetic. Every float operation that decides a result bit is an explicitly rounded intrinsic (__fadd_rn,
 * __fmul_rn, …) and the elementary functions are LossKit's own (include/fast_math.cuh), so that the emulated
 * driver (g++) and a GPU (nvcc, which would contract a*b+c into an fma) compute this kernel's part of the
 * result bit for bit alike; the GEMMs are cuBLAS's and differ by accumulation order only. Per row:
 *   pass 1   z_v = softcap·tanh(u_v/softcap) when softcap > 0 (written back over u, so that the later
 *            passes read z), the row max m of the finite logits, whether a NaN or +∞ was seen, and Σ_v z_v
 *            (label smoothing) as a Neumaier-compensated float32 sum;
 *   pass 2   S = Σ_v e^{z_v − m}, Neumaier-compensated (each term ≤ 1: the sum is exact to ~2⁻²³ of itself
 *            whatever V is);
 *            lse = m + log(S_hi + S_lo), in float64 (once per row);
 *            l = (1 − ε)(lse − z_y) + ε·lse − (ε/V)·Σ_v z_v + zLoss·lse², in float64 from the float32 parts;
 *   pass 3   p_v = e^{(z_v − m) − log S}: the subtraction of m is exact where it matters (Sterbenz, near the
 *            max) and log S ≤ log V is small, so p carries ~1 ulp of its own rather than ulp(lse);
 *            G_v = g·(p_v·(1 + 2·zLoss·lse) − ε/V − (1 − ε)[v = y])·(1 − (z_v/softcap)² when softcap > 0).
 * Reductions are fixed trees in shared memory (no atomics): the same input gives the same bits.
 *
 * NaN semantics follow matrix.cu (and the CPU oracle): lse is NaN when a logit is NaN or +∞ or when every
 * logit is −∞; −∞ logits add e^{−∞} = 0.
 */
#include <stdint.h>

#include "include/dtype.cuh"
#include "include/fast_math.cuh"

#define LOSSKIT_MATRIX_FAST_BLOCK 256

/* A Neumaier-compensated float32 sum: the value is s + c. */
struct FastSum {
    float s;
    float c;
};

__device__ __forceinline__ void fast_sum_add(FastSum& a, float x) {
    const float t = __fadd_rn(a.s, x);
    const float e = fabsf(a.s) >= fabsf(x) ? __fadd_rn(__fsub_rn(a.s, t), x) : __fadd_rn(__fsub_rn(x, t), a.s);
    a.c = __fadd_rn(a.c, e);
    a.s = t;
}

__device__ __forceinline__ void fast_sum_merge(FastSum& a, const FastSum& b) {
    fast_sum_add(a, b.s);
    a.c = __fadd_rn(a.c, b.c);
}

/*
 * The block's max (of m), any-bad (of bad) and compensated sum (of sum), merged in a fixed tree over
 * blockDim.x threads (a power of two); every thread gets the block's result. Ends with a barrier.
 */
__device__ __forceinline__ void fast_block_reduce(float& m, int& bad, FastSum& sum) {
    __shared__ float sm[LOSSKIT_MATRIX_FAST_BLOCK];
    __shared__ float ss[LOSSKIT_MATRIX_FAST_BLOCK];
    __shared__ float sc[LOSSKIT_MATRIX_FAST_BLOCK];
    __shared__ int sb[LOSSKIT_MATRIX_FAST_BLOCK];
    const int t = threadIdx.x;
    sm[t] = m;
    sb[t] = bad;
    ss[t] = sum.s;
    sc[t] = sum.c;
    __syncthreads();
    for (int stride = blockDim.x / 2; stride > 0; stride >>= 1) {
        if (t < stride) {
            sm[t] = sm[t] > sm[t + stride] ? sm[t] : sm[t + stride];
            sb[t] |= sb[t + stride];
            FastSum a = {ss[t], sc[t]};
            const FastSum b = {ss[t + stride], sc[t + stride]};
            fast_sum_merge(a, b);
            ss[t] = a.s;
            sc[t] = a.c;
        }
        __syncthreads();
    }
    m = sm[0];
    bad = sb[0];
    sum.s = ss[0];
    sum.c = sc[0];
    __syncthreads();
}

/* Element i of a float32 or 16-bit array as its raw bits (4 or 2 bytes) copied to element i of dst, or zeroed. */
__device__ __forceinline__ void fast_copy_row(const void* src, void* dst, int dt, int64_t n, bool zero) {
    if (dt == LK_DT_F32) {
        const float* s = reinterpret_cast<const float*>(src);
        float* d = reinterpret_cast<float*>(dst);
        for (int64_t k = threadIdx.x; k < n; k += blockDim.x) d[k] = zero ? 0.0f : s[k];
    } else {
        const unsigned short* s = reinterpret_cast<const unsigned short*>(src);
        unsigned short* d = reinterpret_cast<unsigned short*>(dst);
        for (int64_t k = threadIdx.x; k < n; k += blockDim.x) d[k] = zero ? (unsigned short)0 : s[k];
    }
}

__device__ __forceinline__ unsigned short fast_round16(float f, int dt) {
    return dt == LK_DT_BF16 ? lk_f32_to_bf16(f) : lk_f32_to_f16(f);
}

/*
 * A row that contributes nothing (ignored, shifted out): its G is zero (over the float32 logits zr, or the
 * 16-bit pair hiRow/loRow when those are non-null) when G is written, and its copies of h are zeroed (hOutTwin:
 * the second copy of 16-bit operands, or null). Each thread writes the entries it owns in the passes.
 */
__device__ __forceinline__ void fast_dead_row(float* zr, unsigned short* hiRow, unsigned short* loRow, int64_t classes,
                                              bool writeG, bool copyH, const void* hRow, void* hOutRow, void* hOutTwin,
                                              int dt, int64_t dim) {
    if (writeG) {
        for (int64_t v = threadIdx.x; v < classes; v += blockDim.x) {
            if (hiRow != nullptr) {
                hiRow[v] = 0;
                loRow[v] = 0;
            } else {
                zr[v] = 0.0f;
            }
        }
    }
    if (copyH) {
        fast_copy_row(hRow, hOutRow, dt, dim, true);
        if (hOutTwin != nullptr) fast_copy_row(hRow, hOutTwin, dt, dim, true);
    }
}


/*
 * linear-cross-entropy, FAST, one block per row r of a block of float32 logits u (row-major [rows × classes];
 * row r is row first + r of the call). Parameters as losskit_matrix_linear_cross_entropy (matrix.cu), plus:
 *   h, hOut, dim   the call's hidden states (dtype dt, [N × dim]) and the block's copy of its rows for
 *                  dW += Gᵀ·h (flags bit 2): a row whose G is all zero (ignored, zero weight, shifted out) is
 *                  zeroed there, so that 0·∞ in h cannot make dW NaN (the CPU oracle skips such rows). For
 *                  16-bit operands the copy holds the block's rows twice ([2·rows × dim]: row r and row
 *                  rows + r), so that dW += [h; h]ᵀ·[G_hi; G_lo] is one GEMM with k = 2·rows, reading and
 *                  writing the float32 dW once per block instead of twice
 *   dt             the operands' dtype (LK_DT_F32, LK_DT_BF16, LK_DT_F16): G goes over u for float32, else
 *                  into gHi and gLo ([rows × classes] of dt each; the launcher puts gLo right after gHi's
 *                  rows, so that the pair is one [2·rows × classes] matrix)
 *   rowLse         lse per call row (may be null), written for every row: ignored and shifted-out rows too
 *   upstream       null, or the NONE upstream gradient u per call row: g = u·s·scale
 *   softcap        0 or the cap s of z = s·tanh(u/s)
 *   zloss          the z-loss coefficient on lse²
 *   shift          0, or the sequence length T: row i (t = i mod T) is scored against label i + 1 and the
 *                  last row of every sequence counts as ignored
 * flags: bit 0 write G, bit 1 ignoreIndex applies, bit 2 write hOut.
 */
extern "C" __global__ void __launch_bounds__(LOSSKIT_MATRIX_FAST_BLOCK, 1)
    losskit_matrix_linear_cross_entropy_fast(float* u, int64_t classes, const int32_t* y32, const int64_t* y64,
                                             const float* w, const void* h, void* hOut, int64_t dim, int32_t dt,
                                             void* gHi, void* gLo, double* rowLoss, double* rowLse, int64_t first,
                                             double scale, double eps, int32_t ignoreIndex, int32_t flags,
                                             float softcap, double zloss, int64_t shift, const float* upstream) {
    const int64_t row = first + blockIdx.x;
    float* zr = u + (int64_t)blockIdx.x * classes;
    const int t = threadIdx.x;
    const bool writeG = (flags & 1) != 0;
    const bool half = dt != LK_DT_F32;
    const int64_t es = half ? 2 : 4;
    const void* hRow = reinterpret_cast<const char*>(h) + row * dim * es;
    void* hOutRow = reinterpret_cast<char*>(hOut) + (int64_t)blockIdx.x * dim * es;
    // 16-bit: the copy holds the block's rows twice (rows r and count + r), against G's hi and lo rows
    void* hOutTwin = half ? reinterpret_cast<char*>(hOut) + ((int64_t)blockIdx.x + gridDim.x) * dim * es : nullptr;
    unsigned short* hiRow = half ? reinterpret_cast<unsigned short*>(gHi) + (int64_t)blockIdx.x * classes : nullptr;
    unsigned short* loRow = half ? reinterpret_cast<unsigned short*>(gLo) + (int64_t)blockIdx.x * classes : nullptr;

    bool dead = shift > 0 && row % shift == shift - 1;
    int64_t label = 0;
    if (!dead) {
        const int64_t at = shift > 0 ? row + 1 : row;
        label = y32 != nullptr ? (int64_t)y32[at] : y64[at];
        dead = (flags & 2) != 0 && label == ignoreIndex;
    }
    // a dead row's lse, when asked for, is computed by the live path's passes 1 and 2 (its G is then zeroed)
    if (dead && rowLse == nullptr) {
        fast_dead_row(zr, hiRow, loRow, classes, writeG, (flags & 4) != 0, hRow, hOutRow, hOutTwin, dt, dim);
        if (t == 0) {
            rowLoss[row] = 0.0;
            if (rowLse != nullptr) rowLse[row] = 0.0;
        }
        return;
    }

    // pass 1: soft-capping (written back), max, bad, Σ z
    const bool capped = softcap > 0.0f;
    float m = -INFINITY;
    int bad = 0;
    FastSum zsum = {0.0f, 0.0f};
    for (int64_t v = t; v < classes; v += blockDim.x) {
        float x = zr[v];
        if (capped) {
            x = __fmul_rn(softcap, lk_tanhf(__fdiv_rn(x, softcap)));
            zr[v] = x;
        }
        if (x != x || x == INFINITY) {
            bad = 1;
        } else if (x > m) {
            m = x;
        }
        fast_sum_add(zsum, x);
    }
    fast_block_reduce(m, bad, zsum);
    // read after pass 1's barrier (the capped value) and before pass 3, where its owner overwrites it with G
    const float zy = dead ? 0.0f : zr[label];  // a dead row's label may be ignoreIndex: not an index

    // pass 2: S = Σ e^{z − m}
    FastSum se = {0.0f, 0.0f};
    if (m != -INFINITY) {
        for (int64_t v = t; v < classes; v += blockDim.x) fast_sum_add(se, lk_expf(__fsub_rn(zr[v], m)));
    }
    float unusedMax = 0.0f;
    int unusedBad = 0;
    fast_block_reduce(unusedMax, unusedBad, se);

    const double V = (double)classes;
    const double logS = log((double)se.s + (double)se.c);
    const double lse = bad || m == -INFINITY ? (double)NAN : (double)m + logS;
    const double zs = (double)zsum.s + (double)zsum.c;
    // lse − z_y = (m − z_y) + log S: m − z_y is exact in float64
    const double ce = (1 - eps) * (((double)m - (double)zy) + logS) + eps * lse - eps / V * zs;
    const double l = (bad || m == -INFINITY ? (double)NAN : ce) + zloss * lse * lse;
    const double s = w != nullptr ? (double)w[row] : 1.0;
    if (t == 0) {
        rowLoss[row] = dead ? 0.0 : s * l;
        if (rowLse != nullptr) rowLse[row] = lse;
    }
    if (dead) {
        // after pass 2's barrier: each thread zeroes the entries it owns (z_y was read before that barrier)
        fast_dead_row(zr, hiRow, loRow, classes, writeG, (flags & 4) != 0, hRow, hOutRow, hOutTwin, dt, dim);
        return;
    }
    if (!writeG) return;

    // pass 3: G
    const float g = (float)(scale * s * (upstream != nullptr ? (double)upstream[row] : 1.0));
    const float logSf = (float)logS;
    const float pScale = (float)(1.0 + 2.0 * zloss * lse);
    const float smooth = (float)(eps / V);
    const float hit = (float)(1 - eps);
    const float mm = bad ? NAN : m;
    int nonzero = 0;
    for (int64_t v = t; v < classes; v += blockDim.x) {
        const float x = zr[v];
        const float p = lk_expf(__fsub_rn(__fsub_rn(x, mm), logSf));
        float d = __fsub_rn(__fmul_rn(p, pScale), smooth);
        if (v == label) d = __fsub_rn(d, hit);
        if (capped) {
            const float q = __fdiv_rn(x, softcap);
            d = __fmul_rn(d, __fsub_rn(1.0f, __fmul_rn(q, q)));
        }
        const float gv = __fmul_rn(g, d);
        nonzero |= gv != 0.0f;  // NaN counts as nonzero
        if (half) {
            const unsigned short hi = fast_round16(gv, dt);
            hiRow[v] = hi;
            const float back = lk_half_bits(hi, dt);
            // a non-finite hi (G NaN or ±∞, or beyond float16's range) carries the whole value: lo 0, not ∞ − ∞
            loRow[v] = fabsf(back) < INFINITY ? fast_round16(__fsub_rn(gv, back), dt) : (unsigned short)0;
        } else {
            zr[v] = gv;
        }
    }
    nonzero = __syncthreads_or(nonzero);
    if ((flags & 4) != 0) {
        fast_copy_row(hRow, hOutRow, dt, dim, !nonzero);
        if (half) fast_copy_row(hRow, hOutTwin, dt, dim, !nonzero);
    }
}

/* dst[i] = src[i] rounded once to nearest even into dtype dt (LK_DT_BF16 or LK_DT_F16), grid-stride. */
extern "C" __global__ void __launch_bounds__(LOSSKIT_MATRIX_FAST_BLOCK, 1)
    losskit_matrix_fast_narrow(const float* src, unsigned short* dst, int64_t n, int32_t dt) {
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        dst[i] = fast_round16(src[i], dt);
    }
}

/*
 * out[i] = Σ_s partial[s·n + i] for s = 0 … slabs − 1, summed in float64 in slab order and rounded once:
 * dh = G·W as a deterministic split-K over slabs of classes (losskit.cuda.CudaMatrixFast.SLAB says why).
 */
extern "C" __global__ void __launch_bounds__(LOSSKIT_MATRIX_FAST_BLOCK, 1)
    losskit_matrix_fast_sum_slabs(const float* partial, int64_t slabs, int64_t n, float* out) {
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        double acc = 0.0;
        for (int64_t s = 0; s < slabs; ++s) acc += (double)partial[s * n + i];
        out[i] = (float)acc;
    }
}

/*
 * ---- info-nce in FAST precision ---------------------------------------------------------------------------
 * losskit.cuda.CudaMatrixFast.infoNce: S = q·kᵀ in float32 per block of rows (cublasGemmEx, operands in their
 * dtype), L = S/τ never stored. With t = (float)τ, per row i and column j:
 *   diag     losskit_matrix_info_nce_fast_diagonal s_ii = q_i·k_i in float64, once per call (exact products, a
 *            fixed tree), rounded once to float32 and used for S's diagonal in both passes instead of the
 *            GEMM's: a confident row's loss ≈ Σ_j e^{(s_ij − s_ii)/τ} moves by δs_ii/τ of itself, and the GEMM's
 *            float32 accumulation leaves δs_ii ~ 5e-7 at D = 1 024 (7e-6 of the loss at τ = 0.07, past the
 *            per-row contract on confident pairs), the rounding 3e-8; the off-diagonal errors average out;
 *   pass 1   losskit_matrix_info_nce_fast          one block per row of the block: the row max m_i of S (exact,
 *            a float32), bad (a NaN or +∞), S_i = Σ_j e^{(s_ij − m_i)/t} Neumaier-compensated (each term ≤ 1,
 *            s_ij − m_i exact near the max by Sterbenz), log S_i in float64, and the diagonal s_ii as it is;
 *            losskit_matrix_info_nce_fast_columns  one thread per column: the block's rows folded into the column
 *            state (cm_j, cs_j + cc_j) online, in row order (fixed: the same bits whatever the block size only
 *            up to the GEMM's bits), as the CPU oracle folds:
 *              s > cm:  (cs, cc) = (cs, cc)·e^{(cm − s)/t} then + 1, cm = s;   else (cs, cc) += e^{(s − cm)/t}
 *            The state is float32 with a compensated sum: every term is ≤ 1 and the sum exact to ~2⁻²³ of
 *            itself, as the row sums are; a rescale (a new column max, rare once the diagonal is reached and
 *            at most one per row) costs one rounding of lk_expf and one of the product, ~1e-7 relative each,
 *            and float64 state would need exp() in float64, whose CUDA and glibc bits differ (the emulator
 *            and a GPU would not agree);
 *   finish   losskit_matrix_info_nce_fast_finish   per row, in float64 from the float32 parts:
 *              r_i = (m_i − s_ii)/τ + log S_i,  c_i = (cm_i − s_ii)/τ + log(cs_i + cc_i)
 *            (m − s_ii exact in float64), l_i = r_i, or ½(r_i + c_i) when symmetric;
 *   pass 2   losskit_matrix_info_nce_fast_gradient one block per row of the recomputed block:
 *              G_ij = g·(a·(e^{(s_ij − m_i)/t − log S_i} − [i = j]) + a·(e^{(s_ij − cm_j)/t − log C_j} − [i = j]))
 *            (a = 1, no column term; a = ½ with it when symmetric), g = gradScale / (N under MEAN) / τ, written
 *            as matrix_fast.cu's 16-bit hi + lo pair or over S for float32; then dq_block = G·k (slabs of
 *            keys, summed in float64) and dk += Gᵀ·q_block.
 * NaN semantics: a NaN or +∞ in S makes its row's (column's) log-sum-exp NaN, so the value is NaN and the
 * call is computed again in float64 (losskit.cuda.CudaMatrixLosses.run), which gives the oracle's result.
 */

/* info-nce FAST, pass 1, one block per row r of a block of S ([rows × n] row-major; row first + r of the call). */
extern "C" __global__ void __launch_bounds__(LOSSKIT_MATRIX_FAST_BLOCK, 1)
    losskit_matrix_info_nce_fast(float* s, int64_t n, int64_t first, double tau, const double* exactDiag,
                                 float* rowMax, double* rowLogS, float* diag) {
    const int64_t row = first + blockIdx.x;
    float* sr = s + (int64_t)blockIdx.x * n;
    const float t = (float)tau;
    const float sii = __double2float_rn(exactDiag[row]);
    float m = -INFINITY;
    int bad = 0;
    FastSum unused = {0.0f, 0.0f};
    for (int64_t j = threadIdx.x; j < n; j += blockDim.x) {
        const float x = j == row ? sii : sr[j];
        if (j == row) sr[j] = sii;  // the column kernel reads it (its thread alone reads and writes s_ii)
        if (x != x || x == INFINITY) {
            bad = 1;
        } else if (x > m) {
            m = x;
        }
    }
    fast_block_reduce(m, bad, unused);
    FastSum se = {0.0f, 0.0f};
    if (m != -INFINITY) {
        for (int64_t j = threadIdx.x; j < n; j += blockDim.x) {
            fast_sum_add(se, lk_expf(__fdiv_rn(__fsub_rn(sr[j], m), t)));
        }
    }
    float unusedMax = 0.0f;
    int unusedBad = 0;
    fast_block_reduce(unusedMax, unusedBad, se);
    if (threadIdx.x == 0) {
        rowMax[row] = bad ? NAN : m;
        rowLogS[row] = log((double)se.s + (double)se.c);
        diag[row] = sii;
    }
}

/*
 * info-nce FAST, pass 1, the column state: one thread per column j folds rows 0 … rows − 1 of the block in
 * order into (colMax[j], colSum[j] + colComp[j]); firstBlock starts from (−∞, 0). A NaN or +∞ makes the sum NaN.
 */
extern "C" __global__ void __launch_bounds__(LOSSKIT_MATRIX_FAST_BLOCK, 1)
    losskit_matrix_info_nce_fast_columns(const float* s, int64_t n, int64_t rows, double tau, float* colMax,
                                         float* colSum, float* colComp, int32_t firstBlock) {
    const float t = (float)tau;
    for (int64_t j = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; j < n; j += (int64_t)gridDim.x * blockDim.x) {
        float cm = firstBlock ? -INFINITY : colMax[j];
        FastSum cs = {firstBlock ? 0.0f : colSum[j], firstBlock ? 0.0f : colComp[j]};
        for (int64_t i = 0; i < rows; ++i) {
            const float x = s[i * n + j];
            if (x != x || x == INFINITY) {
                cs.s = NAN;
            } else if (x > cm) {
                const float e = lk_expf(__fdiv_rn(__fsub_rn(cm, x), t));
                cs.s = __fmul_rn(cs.s, e);
                cs.c = __fmul_rn(cs.c, e);
                fast_sum_add(cs, 1.0f);
                cm = x;
            } else {
                fast_sum_add(cs, lk_expf(__fdiv_rn(__fsub_rn(x, cm), t)));
            }
        }
        colMax[j] = cm;
        colSum[j] = cs.s;
        colComp[j] = cs.c;
    }
}

/*
 * info-nce FAST, after pass 1, per row i: colLogS[i] = log(colSum[i] + colComp[i]), r = (m_i − s_ii)/τ + log S_i,
 * rowLoss[i] = r, or ½(r + (cm_i − s_ii)/τ + colLogS[i]) when symmetric; rowLse[i] (may be null) = m_i/τ + log S_i.
 */
extern "C" __global__ void __launch_bounds__(LOSSKIT_MATRIX_FAST_BLOCK, 1)
    losskit_matrix_info_nce_fast_finish(const float* rowMax, const double* rowLogS, const float* diag,
                                        const float* colMax, const float* colSum, const float* colComp,
                                        double* colLogS, double* rowLoss, int64_t n, double tau, int32_t symmetric) {
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        const double sii = (double)diag[i];
        const double r = ((double)rowMax[i] - sii) / tau + rowLogS[i];
        const double cl = log((double)colSum[i] + (double)colComp[i]);
        colLogS[i] = cl;
        rowLoss[i] = symmetric ? 0.5 * (r + (((double)colMax[i] - sii) / tau + cl)) : r;
    }
}

/*
 * info-nce FAST, pass 2, one block per row r of a block of S (recomputed): G (pass 2 above) written as a 16-bit
 * hi + lo pair into gHi, gLo ([rows × n] of dt) for 16-bit operands, over S for float32 (dt LK_DT_F32).
 */
extern "C" __global__ void __launch_bounds__(LOSSKIT_MATRIX_FAST_BLOCK, 1)
    losskit_matrix_info_nce_fast_gradient(float* s, int64_t n, int64_t first, double tau, const double* exactDiag,
                                          const float* rowMax, const double* rowLogS, const float* colMax, const double* colLogS,
                                          double g, int32_t symmetric, int32_t dt, void* gHi, void* gLo) {
    const int64_t row = first + blockIdx.x;
    float* sr = s + (int64_t)blockIdx.x * n;
    const bool half = dt != LK_DT_F32;
    unsigned short* hiRow = half ? reinterpret_cast<unsigned short*>(gHi) + (int64_t)blockIdx.x * n : nullptr;
    unsigned short* loRow = half ? reinterpret_cast<unsigned short*>(gLo) + (int64_t)blockIdx.x * n : nullptr;
    const float t = (float)tau;
    const float m = rowMax[row];
    const float logS = (float)rowLogS[row];
    const float gf = (float)g;
    for (int64_t j = threadIdx.x; j < n; j += blockDim.x) {
        const float x = j == row ? __double2float_rn(exactDiag[row]) : sr[j];
        const float e = j == row ? 1.0f : 0.0f;
        float d = __fsub_rn(lk_expf(__fsub_rn(__fdiv_rn(__fsub_rn(x, m), t), logS)), e);
        if (symmetric) {
            const float pc = lk_expf(__fsub_rn(__fdiv_rn(__fsub_rn(x, colMax[j]), t), (float)colLogS[j]));
            d = __fmul_rn(0.5f, __fadd_rn(d, __fsub_rn(pc, e)));
        }
        const float gv = __fmul_rn(gf, d);
        if (half) {
            const unsigned short hi = fast_round16(gv, dt);
            hiRow[j] = hi;
            const float back = lk_half_bits(hi, dt);
            loRow[j] = fabsf(back) < INFINITY ? fast_round16(__fsub_rn(gv, back), dt) : (unsigned short)0;
        } else {
            sr[j] = gv;
        }
    }
}

/*
 * info-nce FAST: exactDiag[i] = q_i·k_i in float64 (products of float32 or 16-bit values are exact in float64;
 * the sum a fixed tree over the block), one block per row, block-stride over the rows. blockDim.x is a power
 * of two ≤ LOSSKIT_MATRIX_FAST_BLOCK.
 */
/*
 * The block's float64 sum of x in a fixed tree (blockDim.x a power of two), for thread 0; ends with a barrier.
 * (Its shared array sits in a device function, as fast_block_reduce's do: the emulator's g++ puts all of a
 * library's shared variables in one section, which inline and out-of-line functions cannot share.)
 */
__device__ __forceinline__ double fast_block_sum_f64(double x) {
    __shared__ double part[LOSSKIT_MATRIX_FAST_BLOCK];
    const int t = threadIdx.x;
    part[t] = x;
    __syncthreads();
    for (int stride = blockDim.x / 2; stride > 0; stride >>= 1) {
        if (t < stride) part[t] = __dadd_rn(part[t], part[t + stride]);
        __syncthreads();
    }
    const double sum = part[0];
    __syncthreads();
    return sum;
}

extern "C" __global__ void __launch_bounds__(LOSSKIT_MATRIX_FAST_BLOCK, 1)
    losskit_matrix_info_nce_fast_diagonal(const void* q, const void* k, int64_t n, int64_t dim, int32_t dt,
                                          double* exactDiag) {
    const int t = threadIdx.x;
    for (int64_t row = blockIdx.x; row < n; row += gridDim.x) {
        double acc = 0.0;
        for (int64_t c = t; c < dim; c += blockDim.x) {
            const int64_t at = row * dim + c;
            float a;
            float b;
            if (dt == LK_DT_F32) {
                a = reinterpret_cast<const float*>(q)[at];
                b = reinterpret_cast<const float*>(k)[at];
            } else {
                a = lk_half_bits(reinterpret_cast<const unsigned short*>(q)[at], dt);
                b = lk_half_bits(reinterpret_cast<const unsigned short*>(k)[at], dt);
            }
            acc = __dadd_rn(acc, __dmul_rn((double)a, (double)b));
        }
        const double sum = fast_block_sum_f64(acc);
        if (t == 0) exactDiag[row] = sum;
    }
}
