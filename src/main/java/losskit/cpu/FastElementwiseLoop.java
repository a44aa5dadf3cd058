package losskit.cpu;

/**
 * The scalar FAST elementwise skeleton, the twin of {@code ew_kernel<lkf, Term>} in
 * {@code cuda-kernels/elementwise.cu}: the block's elements in rows of 2048, element k of a row into lane k
 * (a float64 chain per lane, in element order), then the canonical tree over the lanes. Per element, in the
 * CPU's check order: the weight, {@code checkFinite}, the float32 term (or its float64 cold path); s·l into the
 * lane by one fma, (s·∂)·gradFactor and s·l rounded to float32 into the outputs.
 *
 * <p>{@link LoopCopies} defines this class again per term class, so the JIT inlines each term into its own
 * copy: keep it self-contained (no lambdas, no nested or anonymous classes).
 */
final class FastElementwiseLoop implements FastElementwiseBlock {
    @Override
    public void run(FastElementwiseJob j, int block, long from, long to) {
        FastScratch s = FastScratch.get();
        HostWindow x = new HostWindow(j.x, s.in[0]);
        HostWindow t = new HostWindow(j.t, s.in[1]);
        HostWindow v = j.v == null ? null : new HostWindow(j.v, s.in[2]);
        HostWindow w = j.w == null ? null : new HostWindow(j.w, s.in[3]);
        HostWindow gx = j.gx == null ? null : new HostWindow(j.gx, s.out[0]);
        HostWindow gv = j.gv == null ? null : new HostWindow(j.gv, s.out[1]);
        HostWindow out = j.out == null ? null : new HostWindow(j.out, s.out[2]);
        double[] accL = s.lanesL;
        double[] accW = s.lanesW;
        java.util.Arrays.fill(accL, 0.0);
        if (w != null) {
            java.util.Arrays.fill(accW, 0.0);
        }
        TermOut o = new TermOut();
        for (long row = from; row < to; row += CanonicalSum.EW_LANES) {
            int cnt = (int) Math.min(CanonicalSum.EW_LANES, to - row);
            x.load(row, cnt);
            t.load(row, cnt);
            if (v != null) {
                v.load(row, cnt);
            }
            if (w != null) {
                w.load(row, cnt);
            }
            if (gx != null) {
                gx.begin(row, cnt);
            }
            if (gv != null) {
                gv.begin(row, cnt);
            }
            if (out != null) {
                out.begin(row, cnt);
            }
            if (!elements(j, block, o, row, 0, cnt, x, t, v, w, gx, gv, out, accL, accW)) {
                return;
            }
            if (gx != null) {
                gx.commit();
            }
            if (gv != null) {
                gv.commit();
            }
            if (out != null) {
                out.commit();
            }
        }
        j.parts.loss[block] = CanonicalSum.tree(accL, CanonicalSum.EW_LANES);
        j.parts.weight[block] = w == null ? to - from : CanonicalSum.tree(accW, CanonicalSum.EW_LANES);
    }

    /**
     * Elements {@code row + k}, k ∈ [kFrom, kTo), of a row whose windows are loaded (outputs begun), in element
     * order: checks, term (or its cold path), s·l into lane k, outputs. Returns false after recording the first
     * violation with {@code j.parts.fail}. The one definition of an element's FAST semantics: this loop runs it
     * for whole rows, {@link FastVectorLoop} for the rest of a row its twin does not cover (a tail shorter than
     * a vector, or from a chunk on where a check failed or the twin declined).
     */
    static boolean elements(FastElementwiseJob j, int block, TermOut o, long row, int kFrom, int kTo, HostWindow x,
                            HostWindow t, HostWindow v, HostWindow w, HostWindow gx, HostWindow gv, HostWindow out,
                            double[] accL, double[] accW) {
        FastElementwiseTerm term = j.term;
        for (int k = kFrom; k < kTo; k++) {
            long i = row + k;
            float xf = x.arr[x.off + k];
            float tf = t.arr[t.off + k];
            float af = v != null ? v.arr[v.off + k]
                    : j.posWeight != null ? j.posWeight[(int) (i % j.posWeight.length)] : j.auxConstant;
            float sw = 1f;
            if (w != null) {
                sw = w.arr[w.off + k];
                if (!(sw >= 0f && sw < Float.POSITIVE_INFINITY)) {
                    o.reject(-2, 0, sw, "finite and >= 0");
                    j.parts.fail(block, i, o);
                    return false;
                }
            }
            if (j.checkFinite && !finite(o, xf, tf, v != null ? af : 0f)) {
                j.parts.fail(block, i, o);
                return false;
            }
            o.fd = 0f;
            o.fdAux = 0f;
            o.cold = false;
            float l = term.eval(xf, tf, af, o);
            if (o.badSlot != 0) {
                j.parts.fail(block, i, o);
                return false;
            }
            float g;
            float ga;
            float lo;
            if (o.cold) {
                term.cold(xf, tf, af, o);
                accL[k] = Math.fma((double) sw, o.cl, accL[k]);
                g = (float) (j.gradFactor * sw * o.cd);
                ga = (float) (j.gradFactor * sw * o.cdAux);
                lo = (float) (sw * o.cl);
            } else {
                accL[k] = Math.fma((double) sw, (double) l, accL[k]);
                g = j.grad(sw, o.fd);
                ga = j.grad(sw, o.fdAux);
                lo = sw * l;
            }
            if (w != null) {
                accW[k] += sw;
            }
            if (gx != null) {
                gx.arr[gx.off + k] = g;
            }
            if (gv != null) {
                gv.arr[gv.off + k] = ga;
            }
            if (out != null) {
                out.arr[out.off + k] = lo;
            }
        }
        return true;
    }

    private static boolean finite(TermOut o, float x, float t, float aux) {
        if (!(Math.abs(x) <= Float.MAX_VALUE)) {
            o.reject(0, 0, x, "finite (checkFinite)");
        } else if (!(Math.abs(t) <= Float.MAX_VALUE)) {
            o.reject(1, 0, t, "finite (checkFinite)");
        } else if (!(Math.abs(aux) <= Float.MAX_VALUE)) {
            o.reject(2, 0, aux, "finite (checkFinite)");
        }
        return o.badSlot == 0;
    }
}
