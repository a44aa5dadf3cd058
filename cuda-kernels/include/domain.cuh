/*
 * Data-dependent domain checks report the FIRST offending item through one device word, an atomicMin
 * over a 64-bit key whose order is the CPU backend's check order:
 *
 *   key = row << 33 | stage << 31 | rank << 8 | code
 *     row    element (elementwise) or row index, < 2^31
 *     stage  0 weight, 1 label, 2 checkFinite, 3 the term's own domain checks
 *     rank   position inside the row in check order: the column (term checks), value-slot ordinal ·
 *            row length + column (checkFinite); saturates at 2^23 − 1
 *     code   slot << 4 | reason: slot = the form's slot index, 15 = weights
 *
 * The host (losskit.cuda.Domain) turns the code back into the same LossInputException the CPU raises,
 * reading the offending value from the host data. Reason codes are shared with that class.
 */
#ifndef LOSSKIT_DOMAIN_CUH
#define LOSSKIT_DOMAIN_CUH

#include <stdint.h>

/*
 * A loss's scalar parameters, in catalogue order (losskit.cuda.KernelNames#scalarParams): as passed, and rounded
 * once to float32 when the kernel starts (what a FAST term computes with; flags and small integers read the same
 * from either), so no element converts a parameter.
 */
struct LkParams {
    double p[6];
    float pf[6];
    /*
     * 1 − fl64(1 − p[k]) rounded to float32: the distance from 1 of the upper clip bound 1 − eps as the
     * float64 oracle computes it (1 − 1e-15 is 1 − 9.992e-16 in float64), for FAST's clips (lk_clip_unit).
     */
    float pc[6];
};

#define LK_NO_ERROR 0xffffffffffffffffull

#define LK_REASON_UNIT 1      /* [0, 1] */
#define LK_REASON_SIGN 2      /* -1 or +1 */
#define LK_REASON_GT_M1 3     /* > -1 */
#define LK_REASON_NONNEG 4    /* >= 0 */
#define LK_REASON_BINARY 5    /* 0 or 1 */
#define LK_REASON_FINITE 6    /* finite (checkFinite) */
#define LK_REASON_WEIGHT 7    /* finite and >= 0 */
#define LK_REASON_LABEL 8     /* [0, C) or ignoreIndex */

#define LK_SLOT_WEIGHTS 15

#define LK_STAGE_WEIGHT 0
#define LK_STAGE_LABEL 1
#define LK_STAGE_FINITE 2
#define LK_STAGE_TERM 3

/* slot << 4 | reason */
__device__ __forceinline__ unsigned lk_code(int slot, int reason) { return ((unsigned)slot << 4) | (unsigned)reason; }

/* A term-stage violation inside a row: rank << 8 | code (min over the row = the CPU's first). */
__device__ __forceinline__ unsigned long long lk_in_row(int64_t rank, unsigned code) {
    const unsigned long long r = rank < (1ll << 23) ? (unsigned long long)rank : ((1ull << 23) - 1);
    return (r << 8) | code;
}

__device__ __forceinline__ void lk_report(unsigned long long* bad, int64_t row, int stage, unsigned long long inRow) {
    const unsigned long long key = ((unsigned long long)row << 33) | ((unsigned long long)stage << 31) | inRow;
    atomicMin(bad, key);
}

#endif
