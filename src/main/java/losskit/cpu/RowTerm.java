package losskit.cpu;

/**
 * The math of one row (or pair/embedding) loss: the row's value, and its gradient written through
 * {@link Row#ga} etc. already multiplied by {@link Row#g}. Its CUDA twin has the same name in
 * {@code cuda-kernels/terms_rows.cuh} or {@code terms_pairs.cuh}.
 */
public interface RowTerm {
    /** @return the row's loss {@code l} (class weights included); domain violations go to {@code o}. */
    double eval(Row r, TermOut o);
}
