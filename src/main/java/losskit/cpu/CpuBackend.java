package losskit.cpu;

import java.util.concurrent.ForkJoinPool;
import losskit.api.Family;
import losskit.api.LossBackend;
import losskit.api.LossDefinition;
import losskit.api.LossResult;
import losskit.api.Partial;
import losskit.api.Precision;
import losskit.api.ValidatedCall;

/**
 * The CPU backend: the fallback and the oracle every other backend is tested against. float64
 * accumulation per block, double-double across blocks, a fixed block split (bitwise identical results for
 * any thread count), and no allocation inside the element loops.
 *
 * <p>Two paths, chosen when the backend is built and named by {@link #describe()}: the scalar term
 * functions, and — when the JVM runs with {@code --add-modules jdk.incubator.vector} and
 * {@code losskit.simd} is not {@code false} — their vector twins ({@link VectorTerms}) for the losses that
 * have one. Each path is deterministic on its own; the two may differ in the last bits of a sum.
 */
public final class CpuBackend implements LossBackend {
    private final ForkJoinPool pool;
    private final int threads;
    private final Simd simd;

    public CpuBackend(int threads) {
        this.threads = threads;
        this.pool = new ForkJoinPool(threads);
        this.simd = Simd.detect();
    }

    @Override
    public String name() {
        return "cpu";
    }

    @Override
    public String describe() {
        return "cpu, " + threads + " thread" + (threads == 1 ? "" : "s") + ", " + simd.reason;
    }

    @Override
    public LossResult compute(ValidatedCall call) {
        if (call.loss().definition().outer() != LossDefinition.Outer.IDENTITY && call.hasHalf()) {
            // rmse scales its gradient once the mean is known: into float32, then rounded once to 16 bits
            ValidatedCall wide = call.widened();
            LossResult r = compute(wide);
            call.narrowOutputsFrom(wide);
            return LossResult.of(call, r.partial(), name());
        }
        String key = call.form().termKey(call.loss().id());
        Family family = call.form().family();
        if (family == Family.MATRIX) {
            // float64 throughout: 16-bit operands widen exactly, outputs are rounded once from float64
            return LossResult.of(call, MatrixLosses.run(call, pool), name());
        }
        if (call.precision() == Precision.FAST && family == Family.ELEMENTWISE) {
            FastElementwiseTerm term = FastElementwiseTerms.forKey(key, call.loss());
            if (term == null) {
                throw new IllegalStateException("no FAST CPU term for " + key);
            }
            FastTwin twin = simd.enabled() ? FastVectorTerms.elementwise(key, call.loss()) : null;
            return LossResult.of(call, FastElementwiseDriver.run(call, term, twin, pool), name());
        }
        if (call.precision() == Precision.FAST && (family == Family.ROWS || family == Family.PAIRS)) {
            FastRowTerm term = family == Family.ROWS ? FastRowTerms.forKey(key, call.loss()) : FastPairTerms.forKey(key, call.loss());
            if (term == null) {
                throw new IllegalStateException("no FAST CPU term for " + key);
            }
            return LossResult.of(call, FastRowDriver.run(call, term, simd.enabled(), pool), name());
        }
        // the float64 paths read and write float32: 16-bit data through a widened copy, outputs rounded once after
        ValidatedCall wide = call.widened();
        LossResult r = computeFloat32(wide, key);
        call.narrowOutputsFrom(wide);
        return LossResult.of(call, r.partial(), name());
    }

    private LossResult computeFloat32(ValidatedCall call, String key) {
        Partial partial;
        if (call.form().family() == Family.MATRIX) {
            partial = MatrixLosses.run(call, pool);
        } else if (call.form().family() == Family.ELEMENTWISE) {
            ElementwiseTerm term = ElementwiseTerms.forKey(key, call.loss());
            if (term == null) {
                throw new IllegalStateException("no CPU term for " + key);
            }
            LanePass[] twin = simd.enabled() ? VectorTerms.elementwise(key, call.loss()) : null;
            partial = ElementwiseDriver.run(call, term, twin, pool);
        } else {
            RowTerm term = termFor(key, call);
            if (simd.enabled()) {
                RowTerm twin = VectorTerms.row(key, call.loss(), term);
                term = twin != null ? twin : term;
            }
            partial = RowDriver.run(call, term, pool);
        }
        return LossResult.of(call, partial, name());
    }

    private static RowTerm termFor(String key, ValidatedCall call) {
        RowTerm t = call.form().family() == Family.ROWS ? RowTerms.forKey(key, call.loss())
                : PairTerms.forKey(key, call.loss());
        if (t == null) {
            throw new IllegalStateException("no CPU term for " + key);
        }
        return t;
    }

    /** Whether this backend runs the vector twins (false: the scalar terms everywhere). */
    public boolean vectorized() {
        return simd.enabled();
    }

    /** Whether a term exists for a catalogue form (the catalogue-coverage test asks). */
    public static boolean hasTerm(losskit.api.Loss loss, losskit.api.Form form) {
        String key = form.termKey(loss.id());
        return switch (form.family()) {
            case ELEMENTWISE -> ElementwiseTerms.forKey(key, loss) != null;
            case ROWS -> RowTerms.forKey(key, loss) != null;
            case PAIRS -> PairTerms.forKey(key, loss) != null;
            case MATRIX -> loss.id().equals("info-nce") || loss.id().equals("linear-cross-entropy");
        };
    }

    @Override
    public void close() {
        pool.shutdown();
    }
}
