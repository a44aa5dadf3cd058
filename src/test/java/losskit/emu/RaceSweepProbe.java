package losskit.emu;

import java.nio.file.Files;
import java.util.EnumMap;
import java.util.HashSet;
import java.util.Map;
import java.util.Set;
import losskit.api.BackendChoice;
import losskit.api.Family;
import losskit.api.Inputs;
import losskit.api.LossEngine;
import losskit.api.LossResult;
import losskit.api.Precision;
import losskit.api.Reduction;
import losskit.cases.LossCases;
import losskit.cases.LossCases.Variant;
import losskit.cuda.KernelNames;

/**
 * Child-process side of {@link RaceCheckTest#everyLossFamilyIsRaceFree}: every loss and form of every family
 * with CUDA kernels (matrix losses when the emulated cuBLAS is built), EXACT and FAST, at its default reduction
 * (and NONE once per family, every matrix loss), on inputs large enough for several CUDA blocks, and once more
 * with invalid weights in several blocks (the domain check's atomicMin from many threads and blocks). Run with
 * LOSSKIT_EMU_RACECHECK=1: a race fails the launch, hence the call. Prints {@code <variant>=ok} or
 * {@code <variant>=FAIL <why>}, and {@code family.<FAMILY>=<variants run>}.
 */
public final class RaceSweepProbe {

    private RaceSweepProbe() {
    }

    public static void main(String[] args) {
        boolean cublas = !Files.exists(EmuSupport.DIR.resolve("CUBLAS_UNAVAILABLE"));
        Map<Family, Integer> counts = new EnumMap<>(Family.class);
        try (LossEngine exact = open(Precision.EXACT); LossEngine fast = open(Precision.FAST);
             LossEngine cpu = LossEngine.builder().backend(BackendChoice.CPU).precision(Precision.EXACT).build()) {
            long seed = 4242;
            Set<String> seen = new HashSet<>();
            for (Variant base : LossCases.variants()) {
                Family family = base.form().family();
                // one parameter variant per loss and form: the kernels are the same for the others
                if (!KernelNames.hasKernels(family) || (family == Family.MATRIX && !cublas)
                        || !seen.add(base.loss().id() + "/" + base.form().name())) {
                    continue;
                }
                // NONE (per-item losses written by the kernels) once per family
                boolean none = seen.add("NONE/" + family) || family == Family.MATRIX;
                for (Reduction r : new Reduction[] {base.loss().reduction(), Reduction.NONE}) {
                    if (!base.loss().definition().reductions().contains(r)
                            || (r == Reduction.NONE && (r == base.loss().reduction() || !none))) {
                        continue;
                    }
                    Variant v = new Variant(base.loss().reduction(r), base.form());
                    // elementwise: 3 blocks of 2^14 elements; rows and pairs: 2 blocks; matrix: a block per row
                    int rows = family == Family.ELEMENTWISE ? 40000 : family == Family.MATRIX ? 9 : 600;
                    int cols = family == Family.ELEMENTWISE ? 1 : 33;
                    Inputs in = LossCases.inputs(v, rows, cols, seed++, true);
                    emit(v.toString(), check(v, in, exact, fast, cpu));
                    counts.merge(family, 1, Integer::sum);
                }
                if (family != Family.MATRIX && !base.loss().id().equals("info-nce")) {
                    int rows = family == Family.ELEMENTWISE ? 40000 : 600;
                    Inputs in = LossCases.inputs(base, rows, family == Family.ELEMENTWISE ? 1 : 33, seed++, true);
                    float[] w = new float[(int) in.weights().size()];
                    for (int i = 0; i < w.length; i++) {
                        w[i] = in.weights().floatAt(i);
                    }
                    for (int i : new int[] {rows - 3, rows / 2 + 1, 7, 5}) {
                        w[i] = -1;
                    }
                    emit(base + " [bad weights]", check(base, in.weights(w), exact, fast, cpu));
                }
            }
        } catch (RuntimeException e) {
            System.out.println("engine=FAIL " + e);
        }
        counts.forEach((f, n) -> System.out.println("family." + f + "=" + n));
        System.out.flush();
    }

    /** "key=value", the key without '=' (variant names contain "reduction=none"). */
    private static void emit(String key, String value) {
        System.out.println(key.replace('=', ':') + "=" + value);
    }

    private static LossEngine open(Precision p) {
        return LossEngine.builder().backend(BackendChoice.CUDA).precision(p).build();
    }

    /** "ok" when both CUDA precisions do what the CPU does: the same value (loosely) or the same exception. */
    private static String check(Variant v, Inputs in, LossEngine exact, LossEngine fast, LossEngine cpu) {
        String expected;
        double value = Double.NaN;
        try {
            value = cpu.compute(v.loss(), in).value();
            expected = "value";
        } catch (RuntimeException e) {
            expected = e.getClass().getSimpleName() + ": " + e.getMessage();
        }
        for (LossEngine cuda : new LossEngine[] {exact, fast}) {
            String got;
            try {
                LossResult r = cuda.compute(v.loss(), in);
                double a = r.value();
                boolean close = Double.compare(a, value) == 0 || Math.abs(a - value) <= 1e-3 * Math.max(1, Math.abs(value));
                got = close ? "value" : "value " + a + " (CPU " + value + ")";
            } catch (RuntimeException e) {
                got = e.getClass().getSimpleName() + ": " + e.getMessage();
            }
            if (!got.equals(expected)) {
                return "FAIL " + cuda.precision() + ": " + got + " where the CPU gives " + expected;
            }
        }
        return "ok";
    }
}
