package losskit.cpu;

import static losskit.cpu.FastMath.C3H;
import static losskit.cpu.FastMath.C3L;
import static losskit.cpu.FastMath.E0;
import static losskit.cpu.FastMath.E1;
import static losskit.cpu.FastMath.E2;
import static losskit.cpu.FastMath.E3;
import static losskit.cpu.FastMath.E4;
import static losskit.cpu.FastMath.G11;
import static losskit.cpu.FastMath.G13;
import static losskit.cpu.FastMath.G15;
import static losskit.cpu.FastMath.G17;
import static losskit.cpu.FastMath.G3H;
import static losskit.cpu.FastMath.G3L;
import static losskit.cpu.FastMath.G5H;
import static losskit.cpu.FastMath.G5L;
import static losskit.cpu.FastMath.G7H;
import static losskit.cpu.FastMath.G7L;
import static losskit.cpu.FastMath.G9;
import static losskit.cpu.FastMath.EXPM1_LO;
import static losskit.cpu.FastMath.EXP_HI;
import static losskit.cpu.FastMath.EXP_LO;
import static losskit.cpu.FastMath.L2H;
import static losskit.cpu.FastMath.L2H13;
import static losskit.cpu.FastMath.L2L;
import static losskit.cpu.FastMath.L2L13;
import static losskit.cpu.FastMath.L2LL13;
import static losskit.cpu.FastMath.LOG2E;
import static losskit.cpu.FastMath.Q0;
import static losskit.cpu.FastMath.Q1;
import static losskit.cpu.FastMath.Q2;
import static losskit.cpu.FastMath.Q3;
import static losskit.cpu.FastMath.SHIFT;
import static losskit.cpu.FastMath.SHIFT_BITS;
import static losskit.cpu.FastMath.SQRT_HALF_BITS;
import static losskit.cpu.FastMath.T0;
import static losskit.cpu.FastMath.T1;
import static losskit.cpu.FastMath.T2;
import static losskit.cpu.FastMath.T3;
import static losskit.cpu.FastMath.TANH_HI;
import static losskit.cpu.FastMath.TANH_SMALL;
import static jdk.incubator.vector.VectorOperators.ASHR;
import static jdk.incubator.vector.VectorOperators.EQ;
import static jdk.incubator.vector.VectorOperators.GE;
import static jdk.incubator.vector.VectorOperators.GT;
import static jdk.incubator.vector.VectorOperators.IS_NAN;
import static jdk.incubator.vector.VectorOperators.LSHL;
import static jdk.incubator.vector.VectorOperators.LSHR;
import static jdk.incubator.vector.VectorOperators.LT;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorSpecies;
import losskit.api.HalfFloats;

/**
 * Vector API twins of {@link FastMath} and of the 16-bit conversions of {@link losskit.api.HalfFloats}, as
 * array passes: each public method applies one function to n consecutive elements, <b>n a multiple of
 * {@link #L}</b> (the caller runs a tail through the scalar function, which gives the same bits). Lane for
 * lane the same operations in the same order as the scalar code, with its final selections as blends, so
 * every result equals the scalar one bit for bit, for any lane count ({@code FastVectorMathTest}).
 *
 * <p>Shape, for the JIT: a function runs as a few passes over a chunk of {@value #CHUNK} elements, each pass
 * one method with its part of the formula in the loop body, arrays in and out (per-thread scratch arrays
 * that stay in L1), called through an interface from one megamorphic call site ({@link Pass}), and no
 * helper takes or returns a vector. C2 stops inlining in a method whose parse
 * reaches its node budget (NodeCountInliningCutoff); the Vector API calls past that point are not inlined,
 * and every vector crossing them is boxed (measured: 700-1600 bytes allocated per element, 3-10x slower).
 * A whole exp fits one method; expm1, log, tanh and pow did not, so every function here is split at the
 * same places (argument, exp core, result; log reduction, sum, special cases). {@link VectorMath} explains
 * the other limit (a helper taking a vector, compiled on its own, stops being inlined). Only loaded when
 * {@code jdk.incubator.vector} is in the boot layer ({@link Simd}).
 */
final class FastVectorMath {
    /** float32 lanes at the machine's preferred width, int lanes of the same shape, short lanes of the same count. */
    static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;
    static final VectorSpecies<Integer> I = VectorSpecies.of(int.class, F.vectorShape());
    /** null where float lanes are 64 bits wide (no 32-bit short species): the 16-bit passes then run the scalar code. */
    static final VectorSpecies<Short> S = F.vectorBitSize() >= 128
            ? VectorSpecies.of(short.class, VectorShape.forBitSize(F.vectorBitSize() / 2)) : null;
    /** Lanes per vector: every n passed here is a multiple of it. */
    static final int L = F.length();

    /** Elements per chunk: a multiple of every lane count; the scratch arrays of a chunk stay in L1. */
    static final int CHUNK = 512;

    /** Per-thread intermediate arrays of one chunk (the passes' outputs and inputs). */
    private static final class Scratch {
        final float[] a = new float[CHUNK];
        final float[] b = new float[CHUNK];
        final float[] c = new float[CHUNK];
        final float[] d = new float[CHUNK];
        final float[] e = new float[CHUNK];
        /** k of e^x = 2^k(1 + q): an int array (a float→int vector conversion is not intrinsic on AVX2 in JDK 17: it boxes). */
        final int[] k = new int[CHUNK];
    }

    private static final ThreadLocal<Scratch> SCRATCH = ThreadLocal.withInitial(Scratch::new);
    /** A chunk of zeros: the low part of a float argument. Never written. */
    private static final float[] ZERO = new float[CHUNK];

    private static final float INF = Float.POSITIVE_INFINITY;

    private FastVectorMath() {
    }

    private static FloatVector c(float v) {
        return FloatVector.broadcast(F, v);
    }

    // ---- the functions: passes over chunks ----------------------------------------------------

    /**
     * One pass over a chunk of m elements (x and out already offset to the chunk). The passes are called
     * through this interface from one call site in {@link #run}, which therefore sees all of them and stays
     * megamorphic: C2 never inlines a pass into the chunk loop, so each pass is compiled on its own, within
     * the inlining budget (a pass inlined into its caller, next to the others, would bring the caller past
     * it: measured).
     */
    @FunctionalInterface
    private interface Pass {
        void run(float[] x, int xOff, float y, float[] out, int outOff, Scratch s, int m);
    }

    private static final Pass[] EXP = {
        (x, xo, y, out, oo, s, m) -> clampExp(x, xo, s.a, m),
        (x, xo, y, out, oo, s, m) -> expCore(s.a, ZERO, s.b, s.c, s.k, m),
        (x, xo, y, out, oo, s, m) -> expFinish(x, xo, s.b, s.c, s.k, out, oo, m)};
    private static final Pass[] EXPM1 = {
        (x, xo, y, out, oo, s, m) -> clampExpm1(x, xo, s.a, m),
        (x, xo, y, out, oo, s, m) -> expCore(s.a, ZERO, s.b, s.c, s.k, m),
        (x, xo, y, out, oo, s, m) -> expm1Finish(x, xo, s.b, s.c, s.k, out, oo, m)};
    private static final Pass[] TANH = {
        (x, xo, y, out, oo, s, m) -> tanhArgument(x, xo, s.a, m),
        (x, xo, y, out, oo, s, m) -> expCore(s.a, ZERO, s.b, s.c, s.k, m),
        (x, xo, y, out, oo, s, m) -> tanhFar(s.b, s.c, s.k, s.d, m),
        (x, xo, y, out, oo, s, m) -> tanhSelect(x, xo, s.d, out, oo, m)};
    private static final Pass[] LOG = {
        (x, xo, y, out, oo, s, m) -> logReduce(x, xo, s.a, s.b, s.c, m),
        (x, xo, y, out, oo, s, m) -> logSum(s.a, s.b, s.c, out, oo, m),
        (x, xo, y, out, oo, s, m) -> logSpecials(x, xo, out, oo, m)};
    private static final Pass[] LOG1P = {
        (x, xo, y, out, oo, s, m) -> log1pReduce(x, xo, s.d, s.e, s.c, m),
        (x, xo, y, out, oo, s, m) -> log1pDivide(s.d, s.e, s.a, s.b, m),
        (x, xo, y, out, oo, s, m) -> logSum(s.a, s.b, s.c, out, oo, m),
        (x, xo, y, out, oo, s, m) -> log1pSpecials(x, xo, out, oo, m)};
    private static final Pass[] POW = {
        (x, xo, y, out, oo, s, m) -> logReduce(x, xo, s.a, s.b, s.c, m),
        (x, xo, y, out, oo, s, m) -> logPairCubic(s.a, s.b, s.d, s.e, m),
        (x, xo, y, out, oo, s, m) -> logPairSum(s.a, s.b, s.c, s.d, s.e, m),
        (x, xo, y, out, oo, s, m) -> powProduct(s.d, s.e, y, s.a, s.b, m),
        (x, xo, y, out, oo, s, m) -> expCore(s.a, s.b, s.c, s.d, s.k, m),
        (x, xo, y, out, oo, s, m) -> powScale(s.c, s.d, s.k, s.e, m),
        (x, xo, y, out, oo, s, m) -> powSpecials(x, xo, y, s.e, out, oo, m)};

    private static void run(Pass[] passes, float[] x, int xOff, float y, float[] out, int outOff, int n) {
        Scratch s = SCRATCH.get();
        for (int c = 0; c < n; c += CHUNK) {
            int m = Math.min(CHUNK, n - c);
            for (Pass p : passes) {
                p.run(x, xOff + c, y, out, outOff + c, s, m);
            }
        }
    }

    /** out[outOff + i] = FastMath.exp(x[xOff + i]) for i &lt; n, n a multiple of L. */
    static void exp(float[] x, int xOff, float[] out, int outOff, int n) {
        run(EXP, x, xOff, 0f, out, outOff, n);
    }

    /** out[outOff + i] = FastMath.expm1(x[xOff + i]) for i &lt; n, n a multiple of L. */
    static void expm1(float[] x, int xOff, float[] out, int outOff, int n) {
        run(EXPM1, x, xOff, 0f, out, outOff, n);
    }

    /** out[outOff + i] = FastMath.tanh(x[xOff + i]) for i &lt; n, n a multiple of L. */
    static void tanh(float[] x, int xOff, float[] out, int outOff, int n) {
        run(TANH, x, xOff, 0f, out, outOff, n);
    }

    /** out[outOff + i] = FastMath.log(x[xOff + i]) for i &lt; n, n a multiple of L. */
    static void log(float[] x, int xOff, float[] out, int outOff, int n) {
        run(LOG, x, xOff, 0f, out, outOff, n);
    }

    /** out[outOff + i] = FastMath.log1p(x[xOff + i]) for i &lt; n, n a multiple of L. */
    static void log1p(float[] x, int xOff, float[] out, int outOff, int n) {
        run(LOG1P, x, xOff, 0f, out, outOff, n);
    }

    /**
     * One pass of {@link #logPair(float[], int, float[], int, float[], int, int)} over a chunk: {@link Pass} with
     * two outputs (hi and lo rows). Called from one call site, {@link #runPair}, for the same reason.
     */
    @FunctionalInterface
    private interface PairPass {
        void run(float[] x, int xOff, float[] hi, int hiOff, float[] lo, int loOff, Scratch s, int m);
    }

    /**
     * FastMath.logPair: log's reduction (sh, sl, e) and rounding (hi, before the special cases); logTail's
     * W(z) in four passes of one pair Horner step each (wh, wl); 2s·W + e·ln 2 (A + Al over wh, wl); then
     * lo = (A − hi) + Al and the special cases. Split where log and tanh are, for C2's node budget.
     */
    private static final PairPass[] LOG_PAIR = {
        (x, xo, hi, ho, lo, lo2, s, m) -> logReduce(x, xo, s.a, s.b, s.c, m),
        (x, xo, hi, ho, lo, lo2, s, m) -> logSum(s.a, s.b, s.c, hi, ho, m),
        (x, xo, hi, ho, lo, lo2, s, m) -> logTailW7(s.a, s.b, s.d, s.e, m),
        (x, xo, hi, ho, lo, lo2, s, m) -> logTailStep(s.a, s.b, G5H, G5L, s.d, s.e, m),
        (x, xo, hi, ho, lo, lo2, s, m) -> logTailStep(s.a, s.b, G3H, G3L, s.d, s.e, m),
        (x, xo, hi, ho, lo, lo2, s, m) -> logTailStep(s.a, s.b, 1f, 0f, s.d, s.e, m),
        (x, xo, hi, ho, lo, lo2, s, m) -> logTailSum(s.a, s.b, s.c, s.d, s.e, m),
        (x, xo, hi, ho, lo, lo2, s, m) -> logPairFinish(x, xo, s.d, s.e, hi, ho, lo, lo2, m)};

    private static void runPair(PairPass[] passes, float[] x, int xOff, float[] hi, int hiOff, float[] lo, int loOff,
                                int n) {
        Scratch s = SCRATCH.get();
        for (int c = 0; c < n; c += CHUNK) {
            int m = Math.min(CHUNK, n - c);
            for (PairPass p : passes) {
                p.run(x, xOff + c, hi, hiOff + c, lo, loOff + c, s, m);
            }
        }
    }

    /**
     * hi[hiOff + i] = FastMath.hiOf(p), lo[loOff + i] = FastMath.loOf(p), p = FastMath.logPair(x[xOff + i]), for
     * i &lt; n, n a multiple of L. hi must not overlap x (the special cases read x after hi is written); lo may.
     */
    static void logPair(float[] x, int xOff, float[] hi, int hiOff, float[] lo, int loOff, int n) {
        runPair(LOG_PAIR, x, xOff, hi, hiOff, lo, loOff, n);
    }

    /** out[outOff + i] = FastMath.pow(x[xOff + i], y) for i &lt; n, n a multiple of L. */
    static void pow(float[] x, int xOff, float y, float[] out, int outOff, int n) {
        run(POW, x, xOff, y, out, outOff, n);
    }

    // ---- exp family ----------------------------------------------------------------------------

    /** FastMath.expDD's clamp of a float argument: xc = x in (EXP_LO, EXP_HI), else the bound (NaN: EXP_LO). */
    private static void clampExp(float[] xa, int xOff, float[] xcOut, int n) {
        for (int i = 0; i < n; i += L) {
            FloatVector x = FloatVector.fromArray(F, xa, xOff + i);
            VectorMask<Float> inRange = x.compare(GT, EXP_LO).and(x.compare(LT, EXP_HI));
            c(EXP_LO).blend(c(EXP_HI), x.compare(GE, EXP_HI)).blend(x, inRange).intoArray(xcOut, i);
        }
    }

    /**
     * FastMath.pow's yh + yl = y·(lh + ll) and expDD's clamp of that pair: the low part is zeroed where the
     * high part is clamped.
     */
    private static void powProduct(float[] lhIn, float[] llIn, float y, float[] xcOut, float[] xlOut, int n) {
        FloatVector yv = c(y);
        for (int i = 0; i < n; i += L) {
            FloatVector lh = FloatVector.fromArray(F, lhIn, i);
            FloatVector xh = yv.mul(lh);
            FloatVector xl = yv.fma(lh, xh.neg()).add(yv.mul(FloatVector.fromArray(F, llIn, i)));
            VectorMask<Float> inRange = xh.compare(GT, EXP_LO).and(xh.compare(LT, EXP_HI));
            c(EXP_LO).blend(c(EXP_HI), xh.compare(GE, EXP_HI)).blend(xh, inRange).intoArray(xcOut, i);
            c(0f).blend(xl, inRange).intoArray(xlOut, i);
        }
    }

    /** FastMath.expm1's clamp to [EXPM1_LO, EXP_HI] (NaN: EXPM1_LO). */
    private static void clampExpm1(float[] xa, int xOff, float[] xcOut, int n) {
        for (int i = 0; i < n; i += L) {
            FloatVector x = FloatVector.fromArray(F, xa, xOff + i);
            FloatVector xc = c(EXPM1_LO).blend(x, x.compare(GT, EXPM1_LO));
            c(EXP_HI).blend(xc, xc.compare(LT, EXP_HI)).intoArray(xcOut, i);
        }
    }

    /** FastMath.tanh's exp argument 2·min(|x|, TANH_HI) (NaN: 2·TANH_HI). */
    private static void tanhArgument(float[] xa, int xOff, float[] out, int n) {
        for (int i = 0; i < n; i += L) {
            FloatVector a = FloatVector.fromArray(F, xa, xOff + i).abs();
            c(2f).mul(c(TANH_HI).blend(a, a.compare(LT, TANH_HI))).intoArray(out, i);
        }
    }

    /**
     * The shift to k and FastMath.expm1Parts: e^{xc + xl} = 2^k (1 + qh + ql) for clamped arguments.
     */
    private static void expCore(float[] xcIn, float[] xlIn, float[] qhOut, float[] qlOut, int[] kOut, int n) {
        for (int i = 0; i < n; i += L) {
            FloatVector xc = FloatVector.fromArray(F, xcIn, i);
            FloatVector xl = FloatVector.fromArray(F, xlIn, i);
            FloatVector sh = xc.fma(c(LOG2E), c(SHIFT));
            FloatVector kf = sh.sub(SHIFT);
            FloatVector rh = kf.fma(c(-L2H), xc);
            FloatVector rm = kf.fma(c(-L2L), xl);
            FloatVector r = rh.add(rm);
            FloatVector rc = rh.sub(r).add(rm);
            FloatVector r2 = r.mul(r);
            FloatVector r2l = r.fma(r, r2.neg());
            FloatVector h = c(0.5f).mul(r2);
            FloatVector qh = r.add(h);
            FloatVector e1 = h.sub(qh.sub(r));
            FloatVector p = c(E4).fma(r, c(E3)).fma(r, c(E2)).fma(r, c(E1)).fma(r, c(E0));
            FloatVector t = r2.mul(r).mul(p);
            FloatVector ql = e1.add(c(0.5f).fma(r2l, t).add(rc.fma(qh, rc)));
            qh.intoArray(qhOut, i);
            ql.intoArray(qlOut, i);
            sh.reinterpretAsInts().sub(SHIFT_BITS).intoArray(kOut, i);
        }
    }

    /** FastMath.expDD's result: 1 + qh + ql rounded once, ×2^⌊k/2⌋ ×2^{k−⌊k/2⌋}; exp's NaN case. */
    private static void expFinish(float[] xa, int xOff, float[] qhIn, float[] qlIn, int[] kIn, float[] out, int outOff,
            int n) {
        for (int i = 0; i < n; i += L) {
            FloatVector qh = FloatVector.fromArray(F, qhIn, i);
            FloatVector ql = FloatVector.fromArray(F, qlIn, i);
            IntVector k = IntVector.fromArray(I, kIn, i);
            FloatVector p1 = c(1f).add(qh);
            FloatVector pl = c(1f).sub(p1).add(qh);
            FloatVector res = p1.add(pl.add(ql));
            IntVector k1 = k.lanewise(ASHR, 1);
            FloatVector s1 = k1.add(127).lanewise(LSHL, 23).reinterpretAsFloats();
            FloatVector s2 = k.sub(k1).add(127).lanewise(LSHL, 23).reinterpretAsFloats();
            res = res.mul(s1).mul(s2);
            FloatVector x = FloatVector.fromArray(F, xa, xOff + i);
            res.blend(x, x.test(IS_NAN)).intoArray(out, outOff + i);
        }
    }

    /** FastMath.expm1 after expm1Parts: (s − 1) + s·qh + s·ql, ×2^{k−min(k, 64)}, and the special cases. */
    private static void expm1Finish(float[] xa, int xOff, float[] qhIn, float[] qlIn, int[] kIn, float[] out, int outOff,
            int n) {
        for (int i = 0; i < n; i += L) {
            FloatVector qh = FloatVector.fromArray(F, qhIn, i);
            FloatVector ql = FloatVector.fromArray(F, qlIn, i);
            IntVector k = IntVector.fromArray(I, kIn, i);
            IntVector k1 = k.min(64);
            FloatVector s = k1.add(127).lanewise(LSHL, 23).reinterpretAsFloats();
            FloatVector v = s.sub(1f);
            FloatVector bb = v.sub(s);
            FloatVector vl = s.sub(v.sub(bb)).add(c(-1f).sub(bb));
            FloatVector b = s.mul(qh);
            FloatVector hi = v.add(b);
            FloatVector e = b.sub(hi.sub(v));
            FloatVector lo = vl.add(e.add(s.mul(ql)));
            FloatVector s2 = k.sub(k1).add(127).lanewise(LSHL, 23).reinterpretAsFloats();
            FloatVector res = hi.add(lo).mul(s2);
            FloatVector x = FloatVector.fromArray(F, xa, xOff + i);
            res = res.blend(x, x.compare(EQ, 0f));
            res.blend(x, x.test(IS_NAN)).intoArray(out, outOff + i);
        }
    }

    /**
     * FastMath.tanh after expm1Parts of 2a, first half: the far form 1 − 2/(E + 1), E = 2^k(1 + qh + ql), for every
     * lane. Split from {@link #tanhSelect} because as one pass (the largest of all, 414 bytes) its C2 compile at
     * times failed a vector intrinsic (PrintIntrinsics: "missing constant") and boxed every vector from then on:
     * 8 bytes per element for log-cosh's gradient, steadily, while FastMathThroughput's tanh read 0 or 100 bytes
     * per element from run to run (measured, JDK 17.0.15, AVX2).
     */
    private static void tanhFar(float[] qhIn, float[] qlIn, int[] kIn, float[] bigOut, int n) {
        for (int i = 0; i < n; i += L) {
            FloatVector qh = FloatVector.fromArray(F, qhIn, i);
            FloatVector ql = FloatVector.fromArray(F, qlIn, i);
            IntVector k = IntVector.fromArray(I, kIn, i);
            FloatVector p1 = c(1f).add(qh);
            FloatVector pp = c(1f).sub(p1).add(qh).add(ql);
            FloatVector pn = p1.add(pp);
            FloatVector pnl = pp.sub(pn.sub(p1));
            FloatVector s = k.add(127).lanewise(LSHL, 23).reinterpretAsFloats();
            FloatVector eh = pn.mul(s);
            FloatVector el = pnl.mul(s);
            FloatVector sum = eh.add(1f);
            FloatVector suml = c(1f).sub(sum.sub(eh)).add(el);
            FloatVector dh = c(2f).div(sum);
            FloatVector dl = dh.neg().fma(sum, c(2f)).sub(dh.mul(suml)).div(sum);
            FloatVector th = c(1f).sub(dh);
            FloatVector te = c(1f).sub(th).sub(dh);
            th.add(te.sub(dl)).intoArray(bigOut, i);
        }
    }

    /** FastMath.tanh's end: the polynomial for a &lt; 1/4, else the far form ({@link #tanhFar}); the sign, NaN. */
    private static void tanhSelect(float[] xa, int xOff, float[] bigIn, float[] out, int outOff, int n) {
        for (int i = 0; i < n; i += L) {
            FloatVector x = FloatVector.fromArray(F, xa, xOff + i);
            FloatVector a = x.abs();
            FloatVector z = a.mul(a);
            FloatVector pt = c(T3).fma(z, c(T2)).fma(z, c(T1)).fma(z, c(T0));
            FloatVector small = a.fma(z.mul(pt), a);
            FloatVector big = FloatVector.fromArray(F, bigIn, i);
            FloatVector tv = big.blend(small, a.compare(LT, TANH_SMALL));
            IntVector sign = x.reinterpretAsInts().and(0x8000_0000);
            FloatVector res = tv.reinterpretAsInts().or(sign).reinterpretAsFloats();
            res.blend(x, x.test(IS_NAN)).intoArray(out, outOff + i);
        }
    }

    /**
     * FastMath.pow after y·log x: FastMath.expDD's result (before pow's special cases) into a scratch row. With
     * {@link #powSpecials} this was one pass of 357 bytes, which C2 at times compiled past its node budget
     * (boxing: FAST focal-logits 160 MB per 10^7-element call after other losses had run); the result goes
     * through a row, not through out, because pow may run in place (out = x) and the special cases read x.
     */
    private static void powScale(float[] qhIn, float[] qlIn, int[] kIn, float[] resOut, int n) {
        for (int i = 0; i < n; i += L) {
            FloatVector qh = FloatVector.fromArray(F, qhIn, i);
            FloatVector ql = FloatVector.fromArray(F, qlIn, i);
            IntVector k = IntVector.fromArray(I, kIn, i);
            FloatVector p1 = c(1f).add(qh);
            FloatVector pl = c(1f).sub(p1).add(qh);
            FloatVector res = p1.add(pl.add(ql));
            IntVector k1 = k.lanewise(ASHR, 1);
            FloatVector s1 = k1.add(127).lanewise(LSHL, 23).reinterpretAsFloats();
            FloatVector s2 = k.sub(k1).add(127).lanewise(LSHL, 23).reinterpretAsFloats();
            res.mul(s1).mul(s2).intoArray(resOut, i);
        }
    }

    /** FastMath.pow's special cases in their order, over {@link #powScale}'s result. */
    private static void powSpecials(float[] xa, int xOff, float y, float[] resIn, float[] out, int outOff, int n) {
        float atZero = y > 0f ? 0f : INF;
        float atInf = y > 0f ? INF : 0f;
        for (int i = 0; i < n; i += L) {
            FloatVector res = FloatVector.fromArray(F, resIn, i);
            FloatVector x = FloatVector.fromArray(F, xa, xOff + i);
            FloatVector yv = c(y);
            // (no ?: between vectors or masks here: C2 boxes a vector merged from two paths)
            res = res.blend(c(atZero), x.compare(EQ, 0f));
            res = res.blend(c(atInf), x.compare(EQ, INF));
            res = res.blend(c(Float.NaN), x.test(IS_NAN).or(yv.test(IS_NAN)));
            res = res.blend(c(Float.NaN), x.compare(LT, 0f));
            res = res.blend(c(1f), x.compare(EQ, 1f));
            res.blend(c(1f), yv.compare(EQ, 0f)).intoArray(out, outOff + i);
        }
    }

    // ---- log family ----------------------------------------------------------------------------

    /** FastMath.log's (and logDD's) reduction: x sanitised, 2^e·m, s = sh + sl = f/(2 + f), e as a float. */
    private static void logReduce(float[] xa, int xOff, float[] shOut, float[] slOut, float[] efOut, int n) {
        for (int i = 0; i < n; i += L) {
            FloatVector x = FloatVector.fromArray(F, xa, xOff + i);
            FloatVector xs = c(1f).blend(x, x.compare(GT, 0f).and(x.compare(LT, INF)));
            VectorMask<Float> sub = xs.compare(LT, 0x1p-126f);
            xs = xs.blend(xs.mul(0x1p24f), sub);
            IntVector ix = xs.reinterpretAsInts().sub(SQRT_HALF_BITS);
            IntVector e = ix.lanewise(ASHR, 23).sub(IntVector.zero(I).blend(24, sub.cast(I)));
            FloatVector m = ix.and(0x007f_ffff).add(SQRT_HALF_BITS).reinterpretAsFloats();
            FloatVector f = m.sub(1f);
            FloatVector d = c(2f).add(f);
            FloatVector dl = c(2f).sub(d).add(f);
            FloatVector sh = f.div(d);
            FloatVector sl = sh.neg().fma(d, f).sub(sh.mul(dl)).div(d);
            sh.intoArray(shOut, i);
            sl.intoArray(slOut, i);
            ((FloatVector) e.convert(VectorOperators.I2F, 0)).intoArray(efOut, i);
        }
    }

    /** FastMath.log1p's reduction up to the numerator pair nh + nl = f + ul·2^−e, e as a float. */
    private static void log1pReduce(float[] xa, int xOff, float[] nhOut, float[] nlOut, float[] efOut, int n) {
        for (int i = 0; i < n; i += L) {
            FloatVector x = FloatVector.fromArray(F, xa, xOff + i);
            FloatVector xs = c(0f).blend(x, x.compare(GT, -1f).and(x.compare(LT, INF)));
            FloatVector u = c(1f).add(xs);
            FloatVector bb = u.sub(1f);
            FloatVector ul = c(1f).sub(u.sub(bb)).add(xs.sub(bb));
            IntVector ix = u.reinterpretAsInts().sub(SQRT_HALF_BITS);
            IntVector e = ix.lanewise(ASHR, 23);
            FloatVector m = ix.and(0x007f_ffff).add(SQRT_HALF_BITS).reinterpretAsFloats();
            FloatVector f = m.sub(1f);
            FloatVector scale = IntVector.broadcast(I, 127).sub(e.min(126)).lanewise(LSHL, 23).reinterpretAsFloats();
            FloatVector fl = ul.mul(scale);
            FloatVector nh = f.add(fl);
            FloatVector nl = fl.sub(nh.sub(f));
            nh.intoArray(nhOut, i);
            nl.intoArray(nlOut, i);
            ((FloatVector) e.convert(VectorOperators.I2F, 0)).intoArray(efOut, i);
        }
    }

    /** FastMath.log1p's s = sh + sl = (nh + nl)/(2 + nh + nl). */
    private static void log1pDivide(float[] nhIn, float[] nlIn, float[] shOut, float[] slOut, int n) {
        for (int i = 0; i < n; i += L) {
            FloatVector nh = FloatVector.fromArray(F, nhIn, i);
            FloatVector nl = FloatVector.fromArray(F, nlIn, i);
            FloatVector d = c(2f).add(nh);
            FloatVector dl = c(2f).sub(d).add(nh).add(nl);
            FloatVector sh = nh.div(d);
            FloatVector sl = sh.neg().fma(d, nh).add(nl).sub(sh.mul(dl)).div(d);
            sh.intoArray(shOut, i);
            sl.intoArray(slOut, i);
        }
    }

    /** FastMath.log's and log1p's sum e·ln 2 + 2s + s³(2/3 + zQ(z)), rounded once; no special cases yet. */
    private static void logSum(float[] shIn, float[] slIn, float[] efIn, float[] out, int outOff, int n) {
        for (int i = 0; i < n; i += L) {
            FloatVector sh = FloatVector.fromArray(F, shIn, i);
            FloatVector sl = FloatVector.fromArray(F, slIn, i);
            FloatVector ef = FloatVector.fromArray(F, efIn, i);
            FloatVector z = sh.mul(sh);
            FloatVector q = c(Q3).fma(z, c(Q2)).fma(z, c(Q1)).fma(z, c(Q0)).fma(z, c(C3H));
            FloatVector tail = sh.mul(z).mul(q);
            FloatVector eh = ef.mul(L2H13);
            FloatVector el = ef.mul(L2L13);
            FloatVector s2 = c(2f).mul(sh);
            FloatVector hi = eh.add(s2);
            FloatVector err = s2.sub(hi.sub(eh));
            FloatVector lo = err.add(el.add(c(2f).fma(sl, tail)));
            hi.add(lo).intoArray(out, outOff + i);
        }
    }

    /** FastMath.log's special cases, applied to out in place. */
    private static void logSpecials(float[] xa, int xOff, float[] out, int outOff, int n) {
        for (int i = 0; i < n; i += L) {
            FloatVector x = FloatVector.fromArray(F, xa, xOff + i);
            FloatVector res = FloatVector.fromArray(F, out, outOff + i);
            res = res.blend(x, x.compare(EQ, INF));
            res = res.blend(c(-INF), x.compare(EQ, 0f));
            res = res.blend(c(Float.NaN), x.compare(LT, 0f));
            res.blend(x, x.test(IS_NAN)).intoArray(out, outOff + i);
        }
    }

    /** FastMath.log1p's special cases, applied to out in place. */
    private static void log1pSpecials(float[] xa, int xOff, float[] out, int outOff, int n) {
        for (int i = 0; i < n; i += L) {
            FloatVector x = FloatVector.fromArray(F, xa, xOff + i);
            FloatVector res = FloatVector.fromArray(F, out, outOff + i);
            res = res.blend(x, x.compare(EQ, INF));
            res = res.blend(x, x.abs().compare(LT, 0x1p-24f));
            res = res.blend(c(-INF), x.compare(EQ, -1f));
            res = res.blend(c(Float.NaN), x.compare(LT, -1f));
            res.blend(x, x.test(IS_NAN)).intoArray(out, outOff + i);
        }
    }

    /**
     * FastMath.logTail's W(z), first step: z = s² as a pair (z, zl), the float P(z), then fmaPair(P, 0, z, zl, G7)
     * into (wh, wl). One pair Horner step per pass, each recomputing (z, zl) from s (the same operations, so the
     * same bits): two steps in one pass came to 322 bytes, near the size where C2 starts boxing.
     */
    private static void logTailW7(float[] shIn, float[] slIn, float[] whOut, float[] wlOut, int n) {
        for (int i = 0; i < n; i += L) {
            FloatVector sh = FloatVector.fromArray(F, shIn, i);
            FloatVector sl = FloatVector.fromArray(F, slIn, i);
            FloatVector z = sh.mul(sh);
            FloatVector zl = c(2f).mul(sh).fma(sl, sh.fma(sh, z.neg()));
            FloatVector p = c(G17).fma(z, c(G15)).fma(z, c(G13)).fma(z, c(G11)).fma(z, c(G9));
            FloatVector ph = p.mul(z);
            FloatVector pl = p.fma(z, ph.neg()).add(p.mul(zl).add(c(0f).mul(z)));
            FloatVector wh = c(G7H).add(ph);
            c(G7H).sub(wh).add(ph).add(c(G7L).add(pl)).intoArray(wlOut, i);
            wh.intoArray(whOut, i);
        }
    }

    /** FastMath.logTail's W(z), a later step: (wh, wl) = fmaPair(wh, wl, z, zl, ch, cl), in place. */
    private static void logTailStep(float[] shIn, float[] slIn, float ch, float cl, float[] wh, float[] wl, int n) {
        for (int i = 0; i < n; i += L) {
            FloatVector sh = FloatVector.fromArray(F, shIn, i);
            FloatVector sl = FloatVector.fromArray(F, slIn, i);
            FloatVector z = sh.mul(sh);
            FloatVector zl = c(2f).mul(sh).fma(sl, sh.fma(sh, z.neg()));
            FloatVector ah = FloatVector.fromArray(F, wh, i);
            FloatVector al = FloatVector.fromArray(F, wl, i);
            FloatVector ph = ah.mul(z);
            FloatVector pl = ah.fma(z, ph.neg()).add(ah.mul(zl).add(al.mul(z)));
            FloatVector vh = c(ch).add(ph);
            c(ch).sub(vh).add(ph).add(c(cl).add(pl)).intoArray(wl, i);
            vh.intoArray(wh, i);
        }
    }

    /** FastMath.logTail, the sum: 2s·W + e·ln 2 as the pair (A, Al), over (wh, wl). */
    private static void logTailSum(float[] shIn, float[] slIn, float[] efIn, float[] wh, float[] wl, int n) {
        for (int i = 0; i < n; i += L) {
            FloatVector sh = FloatVector.fromArray(F, shIn, i);
            FloatVector sl = FloatVector.fromArray(F, slIn, i);
            FloatVector ef = FloatVector.fromArray(F, efIn, i);
            FloatVector w = FloatVector.fromArray(F, wh, i);
            FloatVector wlo = FloatVector.fromArray(F, wl, i);
            FloatVector s2 = c(2f).mul(sh);
            FloatVector ph = s2.mul(w);
            FloatVector pl = s2.fma(w, ph.neg()).add(s2.mul(wlo).add(c(2f).mul(sl).mul(w)));
            FloatVector eh = ef.mul(L2H13);
            FloatVector mh = ef.mul(L2L13);
            FloatVector ml = ef.fma(c(L2L13), mh.neg());
            FloatVector h1 = eh.add(ph);
            FloatVector err1 = ph.sub(h1.sub(eh));
            FloatVector h2 = h1.add(mh);
            FloatVector err2 = mh.sub(h2.sub(h1));
            err1.add(err2).add(pl.add(ef.fma(c(L2LL13), ml))).intoArray(wl, i);
            h2.intoArray(wh, i);
        }
    }

    /** FastMath.logPair's end: lo = (A − hi) + Al, then the special cases of both (hi holds log's rounding). */
    private static void logPairFinish(float[] xa, int xOff, float[] ah, float[] al, float[] hi, int hiOff, float[] lo,
                                      int loOff, int n) {
        for (int i = 0; i < n; i += L) {
            FloatVector x = FloatVector.fromArray(F, xa, xOff + i);
            FloatVector res = FloatVector.fromArray(F, hi, hiOff + i);
            FloatVector rest = FloatVector.fromArray(F, ah, i).sub(res).add(FloatVector.fromArray(F, al, i));
            VectorMask<Float> inf = x.compare(EQ, INF);
            VectorMask<Float> zero = x.compare(EQ, 0f);
            VectorMask<Float> nan = x.compare(LT, 0f).or(x.test(IS_NAN));
            res.blend(x, inf).blend(-INF, zero).blend(Float.NaN, nan).intoArray(hi, hiOff + i);
            rest.blend(0f, inf).blend(0f, zero).blend(Float.NaN, nan).intoArray(lo, loOff + i);
        }
    }

    /**
     * FastMath.logDD after the reduction, first part: the cubic term C3·s³ as the pair (t3, t3l). logDD was one
     * pass of 383 bytes, which C2 at times compiled past its node budget and boxed (FAST focal-logits, through
     * pow, 160 MB per 10^7-element call after other losses had run); {@link #logPairSum} recomputes z, s³ and
     * the polynomial from sh (the same operations, so the same bits).
     */
    private static void logPairCubic(float[] shIn, float[] slIn, float[] t3Out, float[] t3lOut, int n) {
        for (int i = 0; i < n; i += L) {
            FloatVector sh = FloatVector.fromArray(F, shIn, i);
            FloatVector sl = FloatVector.fromArray(F, slIn, i);
            FloatVector z = sh.mul(sh);
            FloatVector zl = sh.fma(sh, z.neg());
            FloatVector s3 = z.mul(sh);
            FloatVector s3l = z.fma(sh, s3.neg()).add(zl.fma(sh, c(3f).mul(z).mul(sl)));
            FloatVector t3 = c(C3H).mul(s3);
            c(C3H).fma(s3, t3.neg()).add(c(C3L).fma(s3, c(C3H).mul(s3l))).intoArray(t3lOut, i);
            t3.intoArray(t3Out, i);
        }
    }

    /** FastMath.logDD, second part: log x = lh + ll, over (t3, t3l). */
    private static void logPairSum(float[] shIn, float[] slIn, float[] efIn, float[] lhInOut, float[] llInOut, int n) {
        for (int i = 0; i < n; i += L) {
            FloatVector sh = FloatVector.fromArray(F, shIn, i);
            FloatVector sl = FloatVector.fromArray(F, slIn, i);
            FloatVector ef = FloatVector.fromArray(F, efIn, i);
            FloatVector t3 = FloatVector.fromArray(F, lhInOut, i);
            FloatVector t3l = FloatVector.fromArray(F, llInOut, i);
            FloatVector z = sh.mul(sh);
            FloatVector q = c(Q3).fma(z, c(Q2)).fma(z, c(Q1)).fma(z, c(Q0));
            FloatVector s3 = z.mul(sh);
            FloatVector t5 = s3.mul(z).mul(q);
            FloatVector eh = ef.mul(L2H13);
            FloatVector el = ef.mul(L2L13);
            FloatVector s2 = c(2f).mul(sh);
            FloatVector hi = eh.add(s2);
            FloatVector err1 = s2.sub(hi.sub(eh));
            FloatVector hi2 = hi.add(t3);
            FloatVector err2 = t3.sub(hi2.sub(hi));
            FloatVector lo = err1.add(err2).add(el.add(c(2f).fma(sl, t3l).add(t5)));
            FloatVector lh = hi2.add(lo);
            lh.intoArray(lhInOut, i);
            lo.sub(lh.sub(hi2)).intoArray(llInOut, i);
        }
    }

    // ---- 16-bit floats (losskit.api.HalfFloats) ------------------------------------------------

    /** dst[dOff + i] = HalfFloats.bf16ToFloat(src[off + i]) for i &lt; n, n a multiple of L. */
    static void widenBf16(short[] src, int off, float[] dst, int dOff, int n) {
        if (S == null) {
            HalfFloats.widen(src, off, dst, dOff, n, true);
            return;
        }
        for (int i = 0; i < n; i += L) {
            IntVector h = (IntVector) ShortVector.fromArray(S, src, off + i).convertShape(VectorOperators.S2I, I, 0);
            h.lanewise(LSHL, 16).reinterpretAsFloats().intoArray(dst, dOff + i);
        }
    }

    /** dst[dOff + i] = HalfFloats.floatToBf16(src[off + i]) for i &lt; n, n a multiple of L. */
    static void narrowBf16(float[] src, int off, short[] dst, int dOff, int n) {
        if (S == null) {
            HalfFloats.narrow(src, off, dst, dOff, n, true);
            return;
        }
        for (int i = 0; i < n; i += L) {
            FloatVector f = FloatVector.fromArray(F, src, off + i);
            IntVector x = f.reinterpretAsInts();
            IntVector r = x.add(0x7FFF).add(x.lanewise(LSHR, 16).and(1)).lanewise(LSHR, 16);
            r = r.blend(0x7FC0, x.and(0x7FFF_FFFF).compare(GT, 0x7F80_0000));
            ((ShortVector) r.convertShape(VectorOperators.I2S, S, 0)).intoArray(dst, dOff + i);
        }
    }

    /** dst[dOff + i] = HalfFloats.f16ToFloat(src[off + i]) for i &lt; n, n a multiple of L. */
    static void widenF16(short[] src, int off, float[] dst, int dOff, int n) {
        if (S == null) {
            HalfFloats.widen(src, off, dst, dOff, n, false);
            return;
        }
        for (int i = 0; i < n; i += L) {
            IntVector h = ((IntVector) ShortVector.fromArray(S, src, off + i).convertShape(VectorOperators.S2I, I, 0))
                    .and(0xFFFF);
            IntVector s = h.and(0x8000).lanewise(LSHL, 16);
            IntVector e = h.lanewise(LSHR, 10).and(0x1F);
            IntVector m = h.and(0x3FF);
            FloatVector mf = ((FloatVector) m.convert(VectorOperators.I2F, 0)).mul(0x1p-24f);
            IntVector sub = s.or(mf.reinterpretAsInts());
            IntVector mShift = m.lanewise(LSHL, 13);
            IntVector normal = s.or(e.add(112).lanewise(LSHL, 23)).or(mShift);
            IntVector special = s.or(0x7F80_0000).or(mShift);
            IntVector bits = normal.blend(special, e.compare(EQ, 31)).blend(sub, e.compare(EQ, 0));
            bits.reinterpretAsFloats().intoArray(dst, dOff + i);
        }
    }

    /** dst[dOff + i] = HalfFloats.floatToF16(src[off + i]) for i &lt; n, n a multiple of L. */
    static void narrowF16(float[] src, int off, short[] dst, int dOff, int n) {
        if (S == null) {
            HalfFloats.narrow(src, off, dst, dOff, n, false);
            return;
        }
        for (int i = 0; i < n; i += L) {
            FloatVector f = FloatVector.fromArray(F, src, off + i);
            IntVector x = f.reinterpretAsInts();
            IntVector sign = x.lanewise(LSHR, 16).and(0x8000);
            IntVector a = x.and(0x7FFF_FFFF);
            IntVector big = sign.or(0x7C00).blend(0x7E00, a.compare(GT, 0x7F80_0000));
            IntVector sub = a.reinterpretAsFloats().add(0.5f).reinterpretAsInts().sub(0x3F00_0000).or(sign);
            IntVector normal = a.add(0xC800_0FFF).add(a.lanewise(LSHR, 13).and(1)).lanewise(LSHR, 13).or(sign);
            // unsigned a >= 0x47800000 and a < 0x38800000: a is non-negative, so signed comparisons do
            IntVector r = normal.blend(sub, a.compare(LT, 0x3880_0000)).blend(big, a.compare(GE, 0x4780_0000));
            ((ShortVector) r.convertShape(VectorOperators.I2S, S, 0)).intoArray(dst, dOff + i);
        }
    }
}
