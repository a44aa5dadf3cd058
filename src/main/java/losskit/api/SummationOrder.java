package losskit.api;

/**
 * The order in which every backend forms a call's float64 sums: a function of the input's shape only, never
 * of the thread count, the GPU or its SM count. FAST results are bitwise equal across backends because they
 * all follow it (docs/SEMANTICS.md, "Summation order"); EXACT uses the same block split.
 *
 * <p>A call's items (elements, or rows of row and pair losses) are split into blocks of
 * {@link #itemsPerBlock} consecutive items; block partials are folded in double-double by the fixed
 * adjacent-pairwise tree of {@link Partial.DoubleDouble#fold} (a function of the block count). Within a block, items go to lanes (item i of the block to lane i mod L, each lane a
 * float64 chain in item order starting at +0.0) and the lanes are added by the adjacent-pairwise tree:
 * {@link #ELEMENT_LANES} lanes for elementwise losses, {@link #ROW_LANES} for row and pair losses. A sum over
 * the columns of a row uses {@link #COLUMN_LANES} lanes per {@link #SEGMENT}-column segment, the segments
 * added by the aligned pairwise tree. The CUDA kernels launch one CUDA block per block of this split.
 */
public final class SummationOrder {
    /** Least elements (items × row length) per block. */
    public static final int BLOCK_ELEMENTS = 1 << 14;
    /** Most blocks per call. */
    public static final int MAX_BLOCKS = 1024;
    /** Lanes of an elementwise block (float64 chains, item i of the block on lane i mod 2048). */
    public static final int ELEMENT_LANES = 2048;
    /** Lanes of a row or pair block (row i of the block on lane i mod 256). */
    public static final int ROW_LANES = 256;
    /** Lanes of a sum over one segment of a row's columns. */
    public static final int COLUMN_LANES = 128;
    /** Columns per segment of a sum over a row (rows longer than this are summed segment by segment). */
    public static final int SEGMENT = 16384;

    private SummationOrder() {
    }

    /**
     * Items per block for {@code items} items of {@code itemLength} elements each (1 for elementwise losses):
     * at least {@link #BLOCK_ELEMENTS} elements, at most {@link #MAX_BLOCKS} blocks; for elementwise losses a
     * multiple of {@link #ELEMENT_LANES} (whole lane rows in every block but the last).
     *
     * @param items      elements (elementwise) or rows
     * @param itemLength 1 for elementwise losses, else the row length
     * @return the items of every block but the last
     */
    public static long itemsPerBlock(long items, long itemLength) {
        long least = Math.max(1, BLOCK_ELEMENTS / Math.max(1, itemLength));
        long per = Math.max(least, (items + MAX_BLOCKS - 1) / MAX_BLOCKS);
        if (itemLength == 1) {
            per = (per + ELEMENT_LANES - 1) & ~(ELEMENT_LANES - 1L);
        }
        return per;
    }

    /**
     * The number of blocks of {@code items} items of {@code itemLength} elements.
     *
     * @param items      elements (elementwise) or rows
     * @param itemLength 1 for elementwise losses, else the row length
     * @return between 1 and {@link #MAX_BLOCKS}
     */
    public static int blocks(long items, long itemLength) {
        long per = itemsPerBlock(items, itemLength);
        return (int) Math.max(1, (items + per - 1) / per);
    }
}
