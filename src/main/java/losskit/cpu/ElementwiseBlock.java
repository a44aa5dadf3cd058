package losskit.cpu;

/** One block of an elementwise call: elements [from, to) into partial slot {@code block}. */
interface ElementwiseBlock {
    void run(ElementwiseJob job, int block, int from, int to);
}
