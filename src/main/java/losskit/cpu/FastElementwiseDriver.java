package losskit.cpu;

import java.util.concurrent.ForkJoinPool;
import losskit.api.LossInputException;
import losskit.api.Param;
import losskit.api.Partial;
import losskit.api.Tensor;
import losskit.api.ValidatedCall;

/**
 * Runs an elementwise call in FAST precision, the twin of the {@code _fast} kernels of
 * {@code cuda-kernels/elementwise.cu}: the same blocks ({@link BlockPlan}), the same lanes and tree within a
 * block ({@link CanonicalSum}), the same float32 terms ({@link FastElementwiseTerms}) and the same rounding of
 * every output, so the partials, the gradient and the per-element losses are bitwise those of the GPU.
 * Blocks run on the vector path ({@link FastVectorLoop}) when the term has a vector twin and the JVM the Vector
 * API, else on the scalar skeleton ({@link FastElementwiseLoop}, one copy per term class).
 */
final class FastElementwiseDriver {
    private static final LoopCopies<FastElementwiseBlock> SCALAR_LOOPS = new LoopCopies<>(FastElementwiseBlock.class,
            FastElementwiseLoop.class);

    private FastElementwiseDriver() {
    }

    /** @param twin the term's vector twin, or null for the scalar path */
    static Partial run(ValidatedCall call, FastElementwiseTerm term, FastTwin twin, ForkJoinPool pool) {
        long n = call.rows();
        BlockPlan plan = new BlockPlan(n, 1);
        double scale = call.loss().gradScale();
        if (RowDriver.divides(call) && call.wantsGradient()) {
            double total = call.weights() == null ? n : sumWeights(call, plan, pool);
            // MEAN over zero total weight is NaN with an all-zero gradient (LOSSES.md)
            scale = total == 0 ? 0 : scale / total;
        }
        BlockPartials parts = new BlockPartials(plan.blocks);
        FastElementwiseJob job = new FastElementwiseJob(call, term, scale, parts);
        FastElementwiseBlock loop = twin != null ? new FastVectorLoop(twin) : SCALAR_LOOPS.forTerm(term);
        plan.run(pool, n, (block, from, to) -> loop.run(job, block, from, to));
        int bad = parts.firstBad();
        if (bad >= 0) {
            String[] names = ElementwiseDriver.slotNames(call);
            int slot = parts.badSlot[bad];
            throw new LossInputException(call.loss().id(), slot < 0 ? "weights" : names[slot], parts.badItem[bad],
                    ElementwiseDriver.format(parts.badValue[bad]), "is out of the domain", parts.badExpected[bad]);
        }
        Partial partial = parts.fold(call, n);
        Outer.applyToGradient(call, partial);
        return partial;
    }

    /** Σ weights in the main pass's blocks, lanes and tree (the CUDA losskit_ew_weight_sum), folded by the block tree. */
    static double sumWeights(ValidatedCall call, BlockPlan plan, ForkJoinPool pool) {
        BlockPartials parts = new BlockPartials(plan.blocks);
        Tensor w = call.weights();
        plan.run(pool, plan.items, (block, from, to) -> {
            FastScratch s = FastScratch.get();
            HostWindow win = new HostWindow(w, s.in[3]);
            double[] lanes = s.lanesL;
            java.util.Arrays.fill(lanes, 0.0);
            for (long row = from; row < to; row += CanonicalSum.EW_LANES) {
                int cnt = (int) Math.min(CanonicalSum.EW_LANES, to - row);
                win.load(row, cnt);
                float[] a = win.arr;
                int o = win.off;
                for (int k = 0; k < cnt; k++) {
                    lanes[k] += a[o + k];
                }
            }
            parts.weight[block] = CanonicalSum.tree(lanes, CanonicalSum.EW_LANES);
        });
        return parts.foldedWeight();
    }
}

/** One block of a FAST elementwise call. */
interface FastElementwiseBlock {
    void run(FastElementwiseJob job, int block, long from, long to);
}

/** Per-worker scratch of the FAST drivers: lane accumulators and float32 windows (no allocation per block). */
final class FastScratch {
    private static final ThreadLocal<FastScratch> LOCAL = ThreadLocal.withInitial(FastScratch::new);
    final double[] lanesL = new double[CanonicalSum.EW_LANES];
    final double[] lanesW = new double[CanonicalSum.EW_LANES];
    /** Input windows: x, t, aux, weights. */
    final float[][] in = new float[4][CanonicalSum.EW_LANES];
    /** Output windows: ∂x, ∂aux, losses. */
    final float[][] out = new float[3][CanonicalSum.EW_LANES];
    /** Vector twins' per-element results: l, ∂, ∂aux, two temporaries, and the aux operand of posWeight[i % len]. */
    final float[][] twin = new float[6][CanonicalSum.EW_LANES];
    /** Row windows of the row and pair families: value slots and their gradients (grown to the row length). */
    final float[][] rowIn = new float[3][0];
    final float[][] rowOut = new float[3][0];
    private final FastRow row = new FastRow();

    static FastScratch get() {
        return LOCAL.get();
    }

    /** The worker's row view, its scratch (and the row windows' arrays) at least {@code len} long. */
    FastRow row(int len) {
        for (int k = 0; k < 3; k++) {
            if (rowIn[k].length < len) {
                rowIn[k] = new float[len];
                rowOut[k] = new float[len];
            }
        }
        row.ensure(len);
        return row;
    }
}

/** Everything a FAST elementwise block reads, resolved once per call. */
final class FastElementwiseJob {
    final FastElementwiseTerm term;
    final Tensor x;
    final Tensor t;
    final Tensor v;
    final Tensor w;
    final Tensor gx;
    final Tensor gv;
    final Tensor out;
    /** bce-logits' posWeight: aux is {@code posWeight[i % length]}, or {@link #auxConstant} without it. */
    final float[] posWeight;
    final float auxConstant;
    final boolean checkFinite;
    /** gradScale, divided by Σ s·d under MEAN (0 when that is 0), and its float32 split hi·2^exp. */
    final double gradFactor;
    final float gfHi;
    final int gfExp;
    final BlockPartials parts;

    FastElementwiseJob(ValidatedCall call, FastElementwiseTerm term, double gradFactor, BlockPartials parts) {
        this.term = term;
        this.x = call.slot(0);
        this.t = call.slot(1);
        this.v = call.slotCount() > 2 ? call.slot(2) : null;
        this.w = call.weights();
        this.gx = call.gradientTensor(0);
        this.gv = call.slotCount() > 2 ? call.gradientTensor(2) : null;
        this.out = call.lossesTensor();
        float[] pw = call.loss().definition().has(Param.POS_WEIGHT) ? call.loss().get(Param.POS_WEIGHT) : null;
        this.posWeight = pw != null && pw.length > 1 ? pw : null;
        this.auxConstant = pw != null && pw.length == 1 ? pw[0] : 1f;
        this.checkFinite = call.loss().checkFinite();
        this.gradFactor = gradFactor;
        int e = Math.getExponent(gradFactor);
        this.gfExp = gradFactor != 0 && e < -126 && e >= Double.MIN_EXPONENT ? -64
                : e > 127 && e <= Double.MAX_EXPONENT ? 64 : 0;
        this.gfHi = (float) Math.scalb(gradFactor, -gfExp);
        this.parts = parts;
    }

    /**
     * The FAST gradient (s·∂)·gradFactor in float32, as the CUDA ew_fast_grad; where that overflows for a finite
     * ∂ (∂ near float32's top with a weight or factor above 1, e.g. poisson-nll's e^x − t at x ≈ 88 under MEAN),
     * the float64 product (gradFactor·s)·∂ rounded once, as the cold path writes it.
     */
    float grad(float s, float d) {
        float g = s * d * gfHi;
        g = gfExp == 0 ? g : FastMath.scalb(g, gfExp);
        return Math.abs(g) == Float.POSITIVE_INFINITY && Math.abs(d) < Float.POSITIVE_INFINITY
                ? (float) (gradFactor * s * d) : g;
    }
}
