/*
 * The pairs family: two kernels per embedding/pair loss (EXACT and FAST, suffix _fast), stamped from
 * row_skeleton.cuh (one warp per row of D, dot products and distances). Its MEAN pre-pass is
 * losskit_rows_denominator (rows.cu).
 * Symbols: losskit_pairs_<term key with '-' and '/' as '_'>[_fast] (losskit.cuda.KernelNames).
 */
#include "terms_pairs.cuh"

LOSSKIT_ROW_KERNEL(pairs, cosine_proximity, PairCosineProximity)
LOSSKIT_ROW_KERNEL(pairs, cosine_embedding, PairCosineEmbedding)
LOSSKIT_ROW_KERNEL(pairs, contrastive_pairs, PairContrastive)
LOSSKIT_ROW_KERNEL(pairs, triplet, PairTriplet)
LOSSKIT_ROW_KERNEL(pairs, dice, PairDice)
LOSSKIT_ROW_KERNEL(pairs, tversky, PairTversky)
