package losskit.cpu;

import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.DoubleBinaryOperator;
import java.util.function.DoubleUnaryOperator;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledIfSystemProperty;

/**
 * Every float input of every {@link FastMath} function against {@link StrictMath} in float64 (minutes per
 * function): not in the default suite. Run it with
 * {@code mvn -q test -Dtest=FastMathExhaustive -Dlosskit.exhaustive=true} (it asserts the documented bounds
 * and prints the maxima), or as a program: {@code java -cp target/classes:target/test-classes
 * losskit.cpu.FastMathExhaustive [function...]}. pow is two-dimensional: all x ≥ 0 for a set of exponents y. The
 * pair functions ({@code logPair}, {@code log1pPair}, {@code expPair} with xl = 0) are measured by the error of
 * hi + lo and checked for hi equal to the rounded function.
 */
class FastMathExhaustive {

    /**
     * Per function: max ulp error and where, the max over results whose reference is a normal float (≥ 2⁻¹²⁶ in
     * magnitude), and how many results are not the correctly rounded float.
     */
    record Result(String name, double maxUlp, float worstX, double maxUlpNormal, long notCorrectlyRounded, long count) {
        @Override
        public String toString() {
            return String.format("%-14s max %.4f ulp at %s (%a), %.4f where the result is normal; %d of %d results not"
                    + " correctly rounded", name, maxUlp, worstX, worstX, maxUlpNormal, notCorrectlyRounded, count);
        }
    }

    /** The y values pow is checked with over all x ≥ 0. */
    static final float[] POW_Y = {0.5f, 2.5f, -1.75f, 0x1.3p-3f, 33.3f, -100.7f};

    static Result unary(String name, DoubleUnaryOperator fast, DoubleUnaryOperator ref) {
        return scan(name, 0, 1 << 16, bits -> fast.applyAsDouble(Float.intBitsToFloat(bits)), bits -> ref.applyAsDouble(Float.intBitsToFloat(bits)));
    }

    static Result pow(float y) {
        // x ≥ 0: bit patterns 0 .. 0x7fffffff (the upper half of the scan space is the negative x)
        return scan("pow(x, " + y + ")", 0, 1 << 15, bits -> FastMath.pow(Float.intBitsToFloat(bits), y),
                bits -> StrictMath.pow(Float.intBitsToFloat(bits), y));
    }

    interface BitsFunction {
        double at(int bits);
    }

    /** Scans the bit patterns hi << 16 | lo for hi in [hiFrom, hiTo), all lo, in parallel. */
    private static Result scan(String name, int hiFrom, int hiTo, BitsFunction fast, BitsFunction ref) {
        AtomicLong wrong = new AtomicLong();
        double[] worst = {0, 0, 0};
        Object lock = new Object();
        IntStream.range(hiFrom, hiTo).parallel().forEach(hi -> {
            double max = 0;
            double maxNormal = 0;
            int maxBits = 0;
            long bad = 0;
            for (int lo = 0; lo < 1 << 16; lo++) {
                int bits = hi << 16 | lo;
                float got = (float) fast.at(bits);
                double r = ref.at(bits);
                double e = Ulps.error(got, r);
                if (e > max) {
                    max = e;
                    maxBits = bits;
                }
                if (e > maxNormal && Math.abs(r) >= Float.MIN_NORMAL) {
                    maxNormal = e;
                }
                if (Float.floatToIntBits(got) != Float.floatToIntBits((float) r)) {
                    bad++;
                }
            }
            wrong.addAndGet(bad);
            synchronized (lock) {
                if (max > worst[0]) {
                    worst[0] = max;
                    worst[1] = maxBits;
                }
                worst[2] = Math.max(worst[2], maxNormal);
            }
        });
        return new Result(name, worst[0], Float.intBitsToFloat((int) worst[1]), worst[2], wrong.get(), (long) (hiTo - hiFrom) << 16);
    }

    /**
     * Per pair function: the max relative error of hi + lo and where, the max in float64 ulps of hi + lo, where
     * expPair's result is below 2⁻¹⁰² (lo on the subnormal grid) the max of (|error| − 2⁻¹⁵⁰)/value, and how many
     * hi differ from the rounded function (log, log1p, exp) in their bits.
     */
    record PairResult(String name, double maxRel, float worstX, double maxUlps, double maxTiny, long hiMismatches, long count) {
        @Override
        public String toString() {
            String tiny = name.startsWith("exp") ? "; below 2^-102: 2^-150 + " + FastMathPairTest.log2(maxTiny) + " relative" : "";
            return String.format("%-14s max relative error %s at %s (%a), %.1f float64 ulps%s; %d of %d hi differ from the"
                    + " rounded function", name, FastMathPairTest.log2(maxRel), worstX, worstX, maxUlps, tiny, hiMismatches, count);
        }
    }

    interface PairFunction {
        long at(float x);
    }

    /**
     * Every float x: the pair against ref in float64 (relative error where |hi| ≥ relFrom, half the subnormal
     * spacing plus a relative error below), its hi against the rounded function.
     */
    static PairResult pair(String name, PairFunction fast, DoubleUnaryOperator rounded, DoubleUnaryOperator ref, double relFrom) {
        AtomicLong mismatches = new AtomicLong();
        double[] worst = {0, 0, 0, 0};
        Object lock = new Object();
        IntStream.range(0, 1 << 16).parallel().forEach(hi -> {
            double maxRel = 0;
            double maxUlps = 0;
            double maxTiny = 0;
            int maxBits = 0;
            long bad = 0;
            for (int lo = 0; lo < 1 << 16; lo++) {
                int bits = hi << 16 | lo;
                float x = Float.intBitsToFloat(bits);
                long p = fast.at(x);
                float h = FastMath.hiOf(p);
                float r = (float) rounded.applyAsDouble(x);
                if (Float.isNaN(r) ? !Float.isNaN(h) : Float.floatToRawIntBits(r) != Float.floatToRawIntBits(h)) {
                    bad++;
                }
                double y = ref.applyAsDouble(x);
                if (Double.isNaN(y) || Double.isInfinite(y) || y == 0 || Math.abs(y) > Float.MAX_VALUE) {
                    continue;
                }
                if (Math.abs(h) >= relFrom) {
                    double e = FastMathPairTest.relError(p, y);
                    if (e > maxRel) {
                        maxRel = e;
                        maxBits = bits;
                    }
                    maxUlps = Math.max(maxUlps, FastMathPairTest.ulpError(p, y));
                } else {
                    maxTiny = Math.max(maxTiny, (Math.abs(FastMathPairTest.value(p) - y) - 0x1p-150) / Math.abs(y));
                }
            }
            mismatches.addAndGet(bad);
            synchronized (lock) {
                if (maxRel > worst[0]) {
                    worst[0] = maxRel;
                    worst[1] = maxBits;
                }
                worst[2] = Math.max(worst[2], maxUlps);
                worst[3] = Math.max(worst[3], maxTiny);
            }
        });
        return new PairResult(name, worst[0], Float.intBitsToFloat((int) worst[1]), worst[2], worst[3], mismatches.get(), 1L << 32);
    }

    static List<PairResult> runPairs(List<String> names) {
        List<PairResult> out = new ArrayList<>();
        for (String n : names) {
            long t0 = System.nanoTime();
            switch (n) {
                case "logPair" -> out.add(pair(n, FastMath::logPair, x -> FastMath.log((float) x), StrictMath::log, 0));
                case "log1pPair" -> out.add(pair(n, FastMath::log1pPair, x -> FastMath.log1p((float) x), StrictMath::log1p, 0));
                case "expPair" -> out.add(pair(n, x -> FastMath.expPair(x, 0f), x -> FastMath.exp((float) x), StrictMath::exp,
                        FastMathPairTest.EXP_NORMAL_PAIR));
                default -> throw new IllegalArgumentException("unknown pair function " + n);
            }
            System.out.println(out.get(out.size() - 1) + String.format("  [%.0f s]", (System.nanoTime() - t0) / 1e9));
        }
        return out;
    }

    static List<Result> run(List<String> names) {
        List<Result> out = new ArrayList<>();
        for (String n : names) {
            long t0 = System.nanoTime();
            switch (n) {
                case "exp" -> out.add(unary(n, x -> FastMath.exp((float) x), StrictMath::exp));
                case "expm1" -> out.add(unary(n, x -> FastMath.expm1((float) x), StrictMath::expm1));
                case "log" -> out.add(unary(n, x -> FastMath.log((float) x), StrictMath::log));
                case "log1p" -> out.add(unary(n, x -> FastMath.log1p((float) x), StrictMath::log1p));
                case "tanh" -> out.add(unary(n, x -> FastMath.tanh((float) x), StrictMath::tanh));
                case "pow" -> {
                    for (float y : POW_Y) {
                        out.add(pow(y));
                        System.out.println(out.get(out.size() - 1));
                    }
                    continue;
                }
                default -> throw new IllegalArgumentException("unknown function " + n);
            }
            System.out.println(out.get(out.size() - 1) + String.format("  [%.0f s]", (System.nanoTime() - t0) / 1e9));
        }
        return out;
    }

    public static void main(String[] args) {
        List<String> names = args.length > 0 ? List.of(args)
                : List.of("exp", "expm1", "log", "log1p", "tanh", "pow", "logPair", "log1pPair", "expPair");
        run(names.stream().filter(n -> !n.endsWith("Pair")).toList());
        runPairs(names.stream().filter(n -> n.endsWith("Pair")).toList());
    }

    @Test
    @EnabledIfSystemProperty(named = "losskit.exhaustive", matches = "true")
    void everyFloat() {
        for (Result r : run(List.of("exp", "expm1", "log", "log1p", "tanh", "pow"))) {
            assertTrue(r.maxUlp() <= FastMathTest.bound(r.name()), r.toString());
        }
        for (PairResult r : runPairs(List.of("logPair", "log1pPair", "expPair"))) {
            assertTrue(r.maxRel() <= FastMathPairTest.REL_BOUND && r.maxTiny() <= FastMathPairTest.REL_BOUND && r.hiMismatches() == 0,
                    r.toString());
        }
    }
}
