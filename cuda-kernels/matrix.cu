/*
 * The matrix family: losses over a matrix product that is never materialised. cuBLAS computes the
 * products block by block (losskit.cuda.CudaMatrixLosses: cublasDgemm_v2 through JCublas2) into a
 * bounded workspace of float64 logits; these kernels do the rest per block, in float64, in a fixed order
 * (no atomics, every reduction a fixed tree), so the same input gives the same bits:
 *
 *   losskit_matrix_linear_cross_entropy   one block per row of the logits z = h·Wᵀ: log-sum-exp, the
 *                                          row's loss, and G = ∂l/∂z written over z (for dh = G·W and
 *                                          dW += Gᵀ·h, both GEMMs)
 *   losskit_matrix_info_nce               one block per row of L = q·kᵀ/τ: row log-sum-exp and diagonal
 *   losskit_matrix_info_nce_columns       one thread per column: the column log-sum-exps, folded online
 *                                          over the row blocks in row order
 *   losskit_matrix_info_nce_finish        per row: column log-sum-exp and the row's loss
 *   losskit_matrix_info_nce_gradient      one block per row of L: G = ∂l/∂(q·kᵀ) written over L
 *   losskit_matrix_widen / _narrow        float32 → float64 copies of device-resident operands and float64
 *                                          → float32 gradients into device destinations (host data is
 *                                          converted on the host on its way)
 *   losskit_matrix_widen_half / _narrow_half  the same for bfloat16 and float16 (a dtype argument):
 *                                          widened exactly, gradients rounded once from float64
 *
 * Layout: a block of logits is row-major [rows × width] (cuBLAS writes it as the column-major
 * width × rows product), row r of the block is row first + r of the call.
 *
 * The log-sum-exp follows losskit.cpu.MatrixLosses (max, then Σ e^{z−max}): NaN when any logit is NaN
 * or +∞, or when every logit is −∞; −∞ logits contribute e^{−∞} = 0. It is computed online (one read of
 * the row for max and sum: each thread keeps (m, s), the block merges the threads' states in a fixed tree).
 * The tree is in shared memory rather than warp shuffles: the same work on a GPU, and eight barriers
 * instead of twenty collectives per warp in the emulator the tests run these kernels on.
 */
#include <stdint.h>

#include "include/half.cuh"

/* The largest block: a power of two. Launches use a power of two from 32 up to it, chosen by the row
 * width (losskit.cuda.CudaMatrixLosses.block), so that a narrow row does not idle 200 threads. */
#define LOSSKIT_MATRIX_BLOCK 256

/* Online log-sum-exp state of one thread: running max m of the finite logits, s = Σ e^{z−m}, bad = a
 * NaN or +∞ was seen. Empty: m = −∞, s = 0. */
struct MatLse {
    double m;
    double s;
    int bad;
};

__device__ __forceinline__ void mat_lse_add(MatLse& st, double v) {
    if (v != v || v == INFINITY) {
        st.bad = 1;
    } else if (v > st.m) {
        st.s = st.s * exp(st.m - v) + 1.0;  // m = −∞ at the start: s·e^{−∞} = 0
        st.m = v;
    } else if (v != -INFINITY) {
        st.s += exp(v - st.m);
    }
}

__device__ __forceinline__ void mat_lse_merge(MatLse& a, const MatLse& b) {
    a.bad |= b.bad;
    if (b.m == -INFINITY) return;
    if (a.m == -INFINITY) {
        a.m = b.m;
        a.s = b.s;
        return;
    }
    const double m = a.m > b.m ? a.m : b.m;
    a.s = a.s * exp(a.m - m) + b.s * exp(b.m - m);
    a.m = m;
}

__device__ __forceinline__ double mat_lse_value(const MatLse& st) {
    return st.bad || st.m == -INFINITY ? NAN : st.m + log(st.s);
}

/*
 * Merges every thread's (state, extra sum) over the block in a fixed tree (blockDim.x a power of two);
 * every thread returns the block's result. Ends with a barrier, so the shared arrays can be reused.
 */
__device__ __forceinline__ MatLse mat_block_lse(MatLse st, double& extra) {
    __shared__ double sm[LOSSKIT_MATRIX_BLOCK];
    __shared__ double ss[LOSSKIT_MATRIX_BLOCK];
    __shared__ double sx[LOSSKIT_MATRIX_BLOCK];
    __shared__ int sb[LOSSKIT_MATRIX_BLOCK];
    const int t = threadIdx.x;
    sm[t] = st.m;
    ss[t] = st.s;
    sb[t] = st.bad;
    sx[t] = extra;
    __syncthreads();
    for (int stride = blockDim.x / 2; stride > 0; stride >>= 1) {
        if (t < stride) {
            MatLse a = {sm[t], ss[t], sb[t]};
            const MatLse b = {sm[t + stride], ss[t + stride], sb[t + stride]};
            mat_lse_merge(a, b);
            sm[t] = a.m;
            ss[t] = a.s;
            sb[t] = a.bad;
            sx[t] += sx[t + stride];
        }
        __syncthreads();
    }
    const MatLse out = {sm[0], ss[0], sb[0]};
    extra = sx[0];
    __syncthreads();
    return out;
}

/*
 * linear-cross-entropy, one block per row of a block of GEMM products u = h·Wᵀ (row r = row first + r of the
 * call). The logits are z = u, or z = c·tanh(u/c) with a softcap c > 0 (Gemma 2). With lse = logsumexp_v z_v,
 * smoothing ε over V classes, z-loss ζ and label y (PyTorch's cross_entropy, plus PaLM's z-loss):
 *   l = (1−ε)(lse − z_y) + (ε/V)·Σ_v (lse − z_v) + ζ·lse² = (1−ε)(lse − z_y) + ε·lse − (ε/V)·Σ_v z_v + ζ·lse²
 *   ∂l/∂z_v = softmax_v·(1 + 2ζ·lse) − ε/V − (1−ε)[v = y],   ∂z_v/∂u_v = 1 − (z_v/c)² (softcap only)
 *   G_v = g·∂l/∂u_v,  g = s·scale  (s the row's weight, scale = gradScale / Σ s·d under MEAN)
 * rowLoss[first + r] = s·l (0 for an ignored row, whose G is 0). A row is ignored when its label is
 * ignoreIndex, or, with shift T > 0 (causal-LM sequences of T rows), when it is the last row of its
 * sequence; otherwise its label is y[row + 1] with a shift, y[row] without. Labels were checked on the host
 * (in [0, V) or ignoreIndex, the ones read): y32 or y64 holds them. z is never overwritten with the capped
 * logits: each thread recomputes c·tanh(u/c) from its own entries, so no thread reads another's writes.
 *
 *   z            [rows × classes] products u in; G out (flags bit 0)
 *   h            the device's float64 copy of hidden [N × dim]: with flags bit 2, a row whose G is all zero (an
 *                ignored or zero-weight row) is zeroed there, so that dW += Gᵀ·h skips it as the CPU
 *                oracle does (0·∞ would make dW NaN); the call no longer needs it after dW
 *   flags        bit 0 write G, bit 1 ignoreIndex applies, bit 2 zero the h rows of dead rows
 *   softcap      c, or 0 for none;  zLoss  ζ (0 for none);  shift  T, or 0 for none
 *   rowLse       null, or lse per call row, written for every row (ignored and shifted-out rows too)
 *   upstream     null, or the NONE upstream gradient u per call row: g = u·s·scale
 */
__device__ __forceinline__ double mat_cap(double u, double softcap) {
    return softcap > 0 ? softcap * tanh(u / softcap) : u;
}

extern "C" __global__ void __launch_bounds__(LOSSKIT_MATRIX_BLOCK, 1)
    losskit_matrix_linear_cross_entropy(double* z, int64_t classes, const int32_t* y32, const int64_t* y64,
                                        const float* w, double* h, int64_t dim, double* rowLoss, int64_t first,
                                        double scale, double eps, int32_t ignoreIndex, int32_t flags,
                                        double softcap, double zLoss, int64_t shift, double* rowLse,
                                        const float* upstream) {
    const int64_t row = first + blockIdx.x;
    double* zr = z + (int64_t)blockIdx.x * classes;
    const int t = threadIdx.x;
    const bool writeG = (flags & 1) != 0;
    bool dead = shift > 0 && row % shift == shift - 1;
    int64_t label = 0;
    if (!dead) {
        const int64_t at = shift > 0 ? row + 1 : row;
        label = y32 != nullptr ? (int64_t)y32[at] : y64[at];
        dead = (flags & 2) != 0 && label == ignoreIndex;
    }
    if (dead) {
        if (rowLse != nullptr) {
            // an ignored row's logits exist: its lse is returned too (each thread then zeroes what it read)
            MatLse dl = {-INFINITY, 0.0, 0};
            for (int64_t v = t; v < classes; v += blockDim.x) mat_lse_add(dl, mat_cap(zr[v], softcap));
            double unused = 0.0;
            dl = mat_block_lse(dl, unused);
            if (t == 0) rowLse[row] = mat_lse_value(dl);
        }
        if (writeG) {
            for (int64_t v = t; v < classes; v += blockDim.x) zr[v] = 0.0;
        }
        if ((flags & 4) != 0) {
            for (int64_t k = t; k < dim; k += blockDim.x) h[row * dim + k] = 0.0;
        }
        if (t == 0) rowLoss[row] = 0.0;
        return;
    }
    MatLse st = {-INFINITY, 0.0, 0};
    double zsum = 0;
    for (int64_t v = t; v < classes; v += blockDim.x) {
        const double x = mat_cap(zr[v], softcap);
        mat_lse_add(st, x);
        zsum += x;
    }
    // read before the barrier that ends mat_block_lse: after it, the owner of z_y overwrites it with G
    const double zy = mat_cap(zr[label], softcap);
    st = mat_block_lse(st, zsum);
    const double lse = mat_lse_value(st);
    const double V = (double)classes;
    double l = (1 - eps) * (lse - zy) + eps / V * (V * lse - zsum);
    if (zLoss != 0) l += zLoss * lse * lse;
    const double s = w != nullptr ? (double)w[row] : 1.0;
    if (t == 0 && rowLse != nullptr) rowLse[row] = lse;
    if (!writeG) {
        if (t == 0) rowLoss[row] = s * l;
        return;
    }
    const double g = scale * s * (upstream != nullptr ? (double)upstream[row] : 1.0);
    const double smooth = eps / V;
    const double pScale = 1 + 2 * zLoss * lse;
    int nonzero = 0;
    for (int64_t v = t; v < classes; v += blockDim.x) {
        const double x = mat_cap(zr[v], softcap);
        const double p = exp(x - lse);
        double dz = (zLoss != 0 ? p * pScale : p) - smooth - (v == label ? 1 - eps : 0.0);
        if (softcap > 0) {
            const double c = x / softcap;
            dz *= 1 - c * c;
        }
        const double gv = g * dz;
        zr[v] = gv;
        nonzero |= gv != 0.0;  // NaN counts as nonzero
    }
    nonzero = __syncthreads_or(nonzero);
    if (t == 0) rowLoss[row] = s * l;
    if ((flags & 4) != 0 && !nonzero) {
        for (int64_t k = t; k < dim; k += blockDim.x) h[row * dim + k] = 0.0;
    }
}

/*
 * info-nce, pass 1, one block per row of a block of S = q·kᵀ (from cuBLAS): L = S/τ,
 * rowLse[first + r] = logsumexp_j L_rj and diag[first + r] = L_{r, first + r}.
 */
extern "C" __global__ void __launch_bounds__(LOSSKIT_MATRIX_BLOCK, 1)
    losskit_matrix_info_nce(const double* z, int64_t n, int64_t first, double tau, double* rowLse, double* diag) {
    const int64_t row = first + blockIdx.x;
    const double* zr = z + (int64_t)blockIdx.x * n;
    MatLse st = {-INFINITY, 0.0, 0};
    double unused = 0;
    for (int64_t j = threadIdx.x; j < n; j += blockDim.x) mat_lse_add(st, zr[j] / tau);
    st = mat_block_lse(st, unused);
    if (threadIdx.x == 0) {
        rowLse[row] = mat_lse_value(st);
        diag[row] = zr[row] / tau;
    }
}

/*
 * info-nce, pass 1, column log-sum-exps: one thread per column j folds rows 0..rows−1 of the block in
 * order into (colMax[j], colSum[j]) — the CPU oracle's online formula, step for step:
 *   x > m:  s = s·e^{m−x} + 1, m = x;   else  s += e^{x−m}
 * firstBlock starts from (−∞, 0) instead of reading the state.
 */
extern "C" __global__ void __launch_bounds__(LOSSKIT_MATRIX_BLOCK, 1)
    losskit_matrix_info_nce_columns(const double* z, int64_t n, int64_t rows, double tau, double* colMax,
                                    double* colSum, int32_t firstBlock) {
    for (int64_t j = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; j < n;
         j += (int64_t)gridDim.x * blockDim.x) {
        double m = firstBlock ? -INFINITY : colMax[j];
        double s = firstBlock ? 0.0 : colSum[j];
        for (int64_t i = 0; i < rows; ++i) {
            const double x = z[i * n + j] / tau;
            if (x > m) {
                s = s * exp(m - x) + 1.0;
                m = x;
            } else {
                s += exp(x - m);
            }
        }
        colMax[j] = m;
        colSum[j] = s;
    }
}

/*
 * info-nce, after pass 1, per row i: colLse[i] = colMax[i] + log(colSum[i]), r = rowLse[i] − diag[i],
 * rowLoss[i] = r, or ½(r + colLse[i] − diag[i]) when symmetric (CLIP).
 */
extern "C" __global__ void __launch_bounds__(LOSSKIT_MATRIX_BLOCK, 1)
    losskit_matrix_info_nce_finish(const double* rowLse, const double* diag, const double* colMax,
                                   const double* colSum, double* colLse, double* rowLoss, int64_t n,
                                   int32_t symmetric) {
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x) {
        const double c = colMax[i] + log(colSum[i]);
        const double r = rowLse[i] - diag[i];
        colLse[i] = c;
        rowLoss[i] = symmetric ? 0.5 * (r + c - diag[i]) : r;
    }
}

/*
 * info-nce, pass 2, one block per row of a block of S = q·kᵀ (recomputed), with L = S/τ:
 *   ∂l/∂L_ij = a·(softmax_row(L)_ij − [i = j]) + b·(softmax_col(L)_ij − [i = j]),  (a, b) = (1, 0), or
 *   (½, ½) when symmetric;  G_ij = g·∂l/∂L_ij with g = gradScale / (N under MEAN) / τ (the 1/τ of
 *   ∂L/∂S), written over S; then dq = G·k and dk += Gᵀ·q (GEMMs).
 */
extern "C" __global__ void __launch_bounds__(LOSSKIT_MATRIX_BLOCK, 1)
    losskit_matrix_info_nce_gradient(double* z, int64_t n, int64_t first, double tau, const double* rowLse,
                                     const double* colLse, double g, int32_t symmetric) {
    const int64_t row = first + blockIdx.x;
    double* zr = z + (int64_t)blockIdx.x * n;
    const double a = symmetric ? 0.5 : 1.0;
    const double lr = rowLse[row];
    for (int64_t j = threadIdx.x; j < n; j += blockDim.x) {
        const double x = zr[j] / tau;
        const double e = row == j ? 1.0 : 0.0;
        double gij = a * (exp(x - lr) - e);
        if (symmetric) gij += a * (exp(x - colLse[j]) - e);
        zr[j] = g * gij;
    }
}


/* dst[i] = src[i] as float64 (exact), grid-stride: a device-resident float32 operand's float64 copy. */
extern "C" __global__ void __launch_bounds__(LOSSKIT_MATRIX_BLOCK, 1)
    losskit_matrix_widen(const float* src, double* dst, int64_t n) {
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        dst[i] = (double)src[i];
    }
}

/* dst[i] = src[i] rounded to float32 (a gradient's one rounding), grid-stride: into a device destination. */
extern "C" __global__ void __launch_bounds__(LOSSKIT_MATRIX_BLOCK, 1)
    losskit_matrix_narrow(const double* src, float* dst, int64_t n) {
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        dst[i] = (float)src[i];
    }
}

/* dtype codes of the 16-bit kernels (losskit.cuda.CudaMatrixLosses; include/dtype.cuh's LK_DT_BF16/_F16) */
#define LOSSKIT_MATRIX_BF16 1
#define LOSSKIT_MATRIX_F16 2

/* dst[i] = src[i] as float64 (exact), grid-stride: a device-resident bfloat16 or float16 operand's copy. */
extern "C" __global__ void __launch_bounds__(LOSSKIT_MATRIX_BLOCK, 1)
    losskit_matrix_widen_half(const unsigned short* src, double* dst, int64_t n, int32_t dtype) {
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        const unsigned short b = src[i];
        dst[i] = (double)(dtype == LOSSKIT_MATRIX_BF16 ? lk_bf16_to_f32(b) : lk_f16_to_f32(b));
    }
}

/*
 * d as float32 rounded to odd (an inexact result takes whichever float32 neighbour of d has an odd last
 * bit): a later rounding to bfloat16 or float16 then equals the direct rounding of d (losskit.api.HalfFloats
 * .doubleToBf16, step for step).
 */
__device__ __forceinline__ float mat_round_to_odd(double d) {
    const float f = (float)d;
    if ((double)f == d || d != d || f == INFINITY || f == -INFINITY) return f;
    const unsigned bits = __float_as_uint(f);
    if ((bits & 1u) != 0) return f;
    return __uint_as_float(fabs((double)f) < fabs(d) ? bits + 1u : bits - 1u);
}

/* dst[i] = src[i] rounded once to bfloat16 or float16 (a gradient's one rounding), grid-stride. */
extern "C" __global__ void __launch_bounds__(LOSSKIT_MATRIX_BLOCK, 1)
    losskit_matrix_narrow_half(const double* src, unsigned short* dst, int64_t n, int32_t dtype) {
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        const float f = mat_round_to_odd(src[i]);
        dst[i] = dtype == LOSSKIT_MATRIX_BF16 ? lk_f32_to_bf16(f) : lk_f32_to_f16(f);
    }
}
