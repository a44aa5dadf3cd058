package losskit.contract;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.stream.Stream;
import losskit.api.BackendChoice;
import losskit.api.Family;
import losskit.api.Inputs;
import losskit.api.LossEngine;
import losskit.api.LossResult;
import losskit.api.Precision;
import losskit.cases.LossCases;
import losskit.cases.LossCases.Variant;
import losskit.cuda.KernelNames;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.TestFactory;
import org.junit.jupiter.api.TestInstance;

/**
 * EXACT precision on sizes past one sweep of every loop a kernel strides through (the other suites' sizes end
 * at ~1 000 elements and 17 rows): 2²⁰ + 7 elements (65 blocks of 8 lane rows each; rmse's gradient scaling,
 * losskit_finish_scale, strides 4 times over its 1 024 × 256 threads) and 5 000 rows of 33 columns for the rows
 * and pairs families (> 4 096 rows: 11 blocks of 496 rows, each warp over its rows twice), against the CPU
 * oracle with {@link CudaMatchesCpuTest}'s tolerance. FAST at these sizes is compared bit for bit by
 * {@link FastBitsAcrossBackendsTest#pastOneBlockSplit}. The first form of each loss, at its default parameters. Few cases (the emulator runs each launch under three
 * schedules): one engine per case, with exact arena regions, so that an overrun at these sizes fails too and no
 * grown arena is carried into the next case.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class CudaGridSweepTest {
    static final int ELEMENTS = (1 << 20) + 7;
    static final int ROWS = 5000;
    /** One loss per kernel shape: plain, weighted with a third operand, the scaled gradient; rows; pairs. */
    private static final Set<String> LOSSES = Set.of("mse", "gaussian-nll", "rmse", "cross-entropy", "kl-divergence",
            "triplet", "cosine-proximity");

    private LossEngine cpu;

    @BeforeAll
    void open() {
        cpu = LossEngine.builder().backend(BackendChoice.CPU).precision(Precision.EXACT).build();
    }

    @AfterAll
    void close() {
        if (cpu != null) {
            cpu.close();
        }
    }

    @TestFactory
    Stream<DynamicTest> pastOneGridSweep() {
        List<DynamicTest> tests = new ArrayList<>();
        long seed = 31_000;
        Set<String> seen = new java.util.HashSet<>();
        for (Variant v : LossCases.variants()) {
            Family family = v.form().family();
            if (!KernelNames.hasKernels(family) || family == Family.MATRIX || !LOSSES.contains(v.loss().id())
                    || !v.loss().toString().equals(v.loss().id()) || !seen.add(v.loss().id())) {
                continue;
            }
            long s = seed++;
            boolean ew = family == Family.ELEMENTWISE;
            tests.add(DynamicTest.dynamicTest(v + (ew ? " n=" + ELEMENTS : " " + ROWS + "x33"), () -> {
                Inputs in = LossCases.inputs(v, ew ? ELEMENTS : ROWS, ew ? 1 : LossCases.columns(v, 33), s, true);
                LossResult expected = cpu.compute(v.loss(), in);
                try (LossEngine cuda = CudaEmulatedLossContractTest.openCudaExactRegions(Precision.EXACT)) {
                    LossResult actual = cuda.compute(v.loss(), in);
                    assertEquals("cuda", actual.backend());
                    CudaMatchesCpuTest.assertSame(v + " (large)", expected, actual, CudaMatchesCpuTest.floorOf(v));
                }
            }));
        }
        assertEquals(LOSSES, seen, "every chosen loss has a variant with kernels");
        return tests.stream();
    }
}
