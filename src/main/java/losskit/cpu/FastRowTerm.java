package losskit.cpu;

/**
 * The math of one row or pair loss in FAST precision, the twin of the same term's FAST instantiation in
 * {@code cuda-kernels/terms_rows.cuh} / {@code terms_pairs.cuh}: per-column float32 arithmetic, sums over the
 * columns in the canonical order ({@link FastRow#sum}), the row's own combination in float64. Returns the row's
 * loss and writes its gradient (already multiplied by the row's gradient factor).
 */
interface FastRowTerm {
    double eval(FastRow r, TermOut o);
}
