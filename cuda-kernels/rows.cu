/*
 * The rows family: two kernels per multi-class loss (EXACT and FAST, suffix _fast), stamped from
 * row_skeleton.cuh (one warp per row, the row's maximum then Σ e^{x−max} for the cross-entropies), plus the
 * MEAN pre-pass shared with the pairs family.
 * Symbols: losskit_rows_<term key with '-' and '/' as '_'>[_fast] (losskit.cuda.KernelNames).
 */
#include "terms_rows.cuh"

LOSSKIT_ROW_KERNEL(rows, cross_entropy, RowCrossEntropy)
LOSSKIT_ROW_KERNEL(rows, cross_entropy_soft, RowSoftCrossEntropy)
LOSSKIT_ROW_KERNEL(rows, nll, RowNll)
LOSSKIT_ROW_KERNEL(rows, categorical_cross_entropy, RowCategorical)
LOSSKIT_ROW_KERNEL(rows, sparse_categorical_cross_entropy, RowSparse)
LOSSKIT_ROW_KERNEL(rows, log_loss, RowLogLoss)
LOSSKIT_ROW_KERNEL(rows, log_loss_binary, RowLogLossBinary)
LOSSKIT_ROW_KERNEL(rows, multi_margin, RowMultiMargin)
LOSSKIT_ROW_KERNEL(rows, kl_divergence, RowKl)
LOSSKIT_ROW_KERNEL(rows, entropy, RowEntropy)
LOSSKIT_ROW_KERNEL(rows, distribution_cross_entropy, RowDistributionCrossEntropy)

#define LOSSKIT_DEN_BLOCK 256

/*
 * Σ s·d per block (the MEAN/BATCHMEAN gradient's pre-pass), one thread per lane of the row kernels' canonical
 * order — thread t adds rows t, t + 256, … of the block — so each partial equals the row kernel's Σ s·d bit for
 * bit; with the label range check the CPU backend's pre-pass makes (ignored rows contribute nothing). Same flags
 * as the row kernels.
 */
extern "C" __global__ void __launch_bounds__(LOSSKIT_DEN_BLOCK, 1)
    losskit_rows_denominator(const int32_t* y32, const int64_t* y64, const float* w, const float* cw,
                             double* partials, unsigned long long* bad, int64_t rows, int64_t per, int32_t classes,
                             int32_t ignoreIndex, int32_t flags, double denConst) {
    const bool hasIgnore = (flags & 2) != 0;
    const int denKind = (flags >> 2) & 3;
    const int valueSlots = (flags >> 4) & 3;
    const int64_t start = (int64_t)blockIdx.x * per;
    const int64_t end = start + per < rows ? start + per : rows;
    double sum = 0;
    for (int64_t row = start + threadIdx.x; row < end; row += LOSSKIT_DEN_BLOCK) {
        const float s = w != nullptr ? __ldg(w + row) : 1.0f;
        int64_t label = -1;
        if (y32 != nullptr || y64 != nullptr) {
            label = y32 != nullptr ? (int64_t)__ldg(y32 + row) : (int64_t)__ldg(y64 + row);
            if (hasIgnore && label == ignoreIndex) continue;
            if (!(label >= 0 && label < classes)) {
                lk_report(bad, row, LK_STAGE_LABEL, lk_in_row(0, lk_code(valueSlots, LK_REASON_LABEL)));
                continue;
            }
        }
        sum = fma((double)s, row_denominator(denKind, cw, label, denConst), sum);
    }
    double unused = 0;
    lk_block_tree2(sum, unused);
    if (threadIdx.x == 0) {
        partials[blockIdx.x] = sum;
    }
}
