/*
 * The rows family: one kernel per multi-class loss, stamped from row_skeleton.cuh (one warp per row,
 * online softmax for the cross-entropies), plus the MEAN pre-pass shared with the pairs family.
 * Symbols: losskit_rows_<term key with '-' and '/' as '_'> (losskit.cuda.KernelNames).
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
 * Σ s·d per block (the MEAN/BATCHMEAN gradient's pre-pass), one thread per row, with the label range
 * check the CPU backend's pre-pass makes (ignored rows contribute nothing). Same flags as the row kernels.
 */
extern "C" __global__ void __launch_bounds__(LOSSKIT_DEN_BLOCK, 1)
    losskit_rows_denominator(const int32_t* y32, const int64_t* y64, const float* w, const float* cw,
                             double* partials, unsigned long long* bad, int64_t rows, int32_t classes,
                             int32_t ignoreIndex, int32_t flags, double denConst) {
    const bool hasIgnore = (flags & 2) != 0;
    const int denKind = (flags >> 2) & 3;
    const int valueSlots = (flags >> 4) & 3;
    double sum = 0;
    double unused = 0;
    for (int64_t row = (int64_t)blockIdx.x * LOSSKIT_DEN_BLOCK + threadIdx.x; row < rows;
         row += (int64_t)gridDim.x * LOSSKIT_DEN_BLOCK) {
        const double s = w != nullptr ? (double)__ldg(w + row) : 1.0;
        int64_t label = -1;
        if (y32 != nullptr || y64 != nullptr) {
            label = y32 != nullptr ? (int64_t)__ldg(y32 + row) : (int64_t)__ldg(y64 + row);
            if (hasIgnore && label == ignoreIndex) continue;
            if (!(label >= 0 && label < classes)) {
                lk_report(bad, row, LK_STAGE_LABEL, lk_in_row(0, lk_code(valueSlots, LK_REASON_LABEL)));
                continue;
            }
        }
        sum += s * row_denominator(denKind, cw, label, denConst);
    }
    block_sum2<LOSSKIT_DEN_BLOCK>(sum, unused);
    if (threadIdx.x == 0) {
        partials[blockIdx.x] = sum;
    }
}
