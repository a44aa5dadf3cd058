package losskit.cpu;

import java.util.concurrent.ForkJoinPool;
import losskit.api.SummationOrder;

/**
 * The fixed split of a reduction into blocks. Block boundaries depend only on the input's shape, never
 * on the thread count, and block partials are folded by a tree whose shape is the block count's; so a
 * result is bitwise identical whether one thread or sixteen computed it. Workers take contiguous runs of blocks.
 *
 * <p>Blocks hold at least {@link #BLOCK_ELEMENTS} elements and there are at most {@link #MAX_BLOCKS} of
 * them (larger inputs get larger blocks), so the per-block partials are bounded memory whatever n is:
 * a value-only call needs O(1) memory beyond its inputs. Elementwise block lengths are multiples of 2048
 * elements (the FAST lanes, {@link CanonicalSum}), so vector loops run full width in every block but the last.
 * The CUDA backend launches one block per plan block: the split is part of the summation order that makes
 * FAST results bitwise equal across backends.
 */
final class BlockPlan {
    /** Least elements per block: large enough to amortise a task, small enough to spread 10⁵ elements over cores. */
    static final int BLOCK_ELEMENTS = SummationOrder.BLOCK_ELEMENTS;
    /** Most blocks per call: 16× more than 64 workers need for balance, a 40 KB bound on the partials. */
    static final int MAX_BLOCKS = SummationOrder.MAX_BLOCKS;
    /** Below this many elements the caller's thread does all the work: no hand-off cost for small calls. */
    static final long INLINE_ELEMENTS = 1 << 15;

    /** A block's work: items [from, to) written to partial slot {@code block}. */
    interface BlockTask {
        void run(int block, long from, long to);
    }

    final long items;
    final long itemsPerBlock;
    final int blocks;

    /** @param items elements or rows; @param itemLength elements per item (1, or the row length) */
    BlockPlan(long items, long itemLength) {
        this.items = items;
        this.itemsPerBlock = SummationOrder.itemsPerBlock(items, itemLength);
        this.blocks = SummationOrder.blocks(items, itemLength);
    }

    void run(ForkJoinPool pool, long elements, BlockTask task) {
        if (elements <= INLINE_ELEMENTS || blocks == 1 || pool.getParallelism() == 1) {
            for (int b = 0; b < blocks; b++) {
                runBlock(task, b);
            }
            return;
        }
        int tasks = Math.min(blocks, pool.getParallelism() * 4);
        ParallelFor.run(pool, blocks, blocks / tasks, b -> runBlock(task, b));
    }

    private void runBlock(BlockTask task, int b) {
        long from = b * itemsPerBlock;
        task.run(b, from, Math.min(items, from + itemsPerBlock));
    }
}
