package losskit.cuda;

import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.regex.Pattern;
import losskit.api.Family;
import org.junit.jupiter.api.Test;

/**
 * CPU-only checks of the built FAST kernels (every {@code _fast} entry of the elementwise, rows and pairs PTX),
 * the two properties FAST's promises rest on:
 * <ul>
 * <li><b>the same bits as the Java twin</b>: no float32 add, subtract or multiply that ptxas may contract into an
 *     fma ({@code add.f32} instead of {@code add.rn.f32}), and no approximate instruction (special-function unit
 *     {@code ex2/lg2/sin/cos/rcp/rsqrt/sqrt .approx.f32}, {@code div.approx/full}) — the operations that would let
 *     a compiler or a GPU model change a result (a float64 {@code rcp.approx} inside the correctly rounded
 *     expansion of {@code div.rn.f64} is not one);</li>
 * <li><b>float32 arithmetic per element</b>: inside every innermost loop (the element loop, a row's column loops)
 *     the only float64 instructions are the accumulation of the float64 sums — {@code add.f64}/{@code fma.rn.f64}
 *     into an accumulator and {@code cvt.f64.f32} widening into it; float64 multiply, divide, square root or
 *     conversion from integers there would make the kernel pay the GPU's slowest unit per element.</li>
 * </ul>
 */
class PtxFastArithmeticTest {
    private static final Pattern CONTRACTIBLE_OR_APPROX = Pattern.compile(
            "^(add|sub|mul|mad|fma)\\.(f32|ftz\\.f32|sat\\.f32)$|\\.approx\\.(ftz\\.)?f32|^div\\.full\\.");
    private static final Set<String> ACCUMULATION = Set.of("add.f64", "add.rn.f64", "fma.rn.f64", "cvt.f64.f32");

    @Test
    void fastKernelsUseOnlyCorrectlyRoundedFloat32AndAccumulateInFloat64() {
        int kernels = 0;
        int loops = 0;
        StringBuilder problems = new StringBuilder();
        for (Family f : new Family[]{Family.ELEMENTWISE, Family.ROWS, Family.PAIRS}) {
            Map<String, PtxText.Kernel> module = PtxText.kernels(KernelNames.module(f));
            for (PtxText.Kernel k : module.values()) {
                if (!k.name().endsWith("_fast")) {
                    continue;
                }
                kernels++;
                Set<String> bad = new TreeSet<>();
                for (String line : k.lines()) {
                    String op = PtxText.opcode(line);
                    if (op != null && CONTRACTIBLE_OR_APPROX.matcher(op).find()) {
                        bad.add(op);
                    }
                }
                if (!bad.isEmpty()) {
                    problems.append("\n  ").append(k.name()).append(": ").append(bad);
                }
                List<List<String>> inner = PtxText.innermostLoops(k);
                assertTrue(!inner.isEmpty(), k.name() + ": no loop found");
                for (List<String> loop : inner) {
                    loops++;
                    Set<String> wide = new TreeSet<>();
                    for (String line : loop) {
                        String op = PtxText.opcode(line);
                        if (op != null && op.contains("f64") && !op.startsWith("mov.") && !op.startsWith("ld.")
                                && !op.startsWith("st.") && !op.startsWith("selp.") && !ACCUMULATION.contains(op)) {
                            wide.add(op);
                        }
                    }
                    if (!wide.isEmpty()) {
                        problems.append("\n  ").append(k.name()).append(": float64 arithmetic in an element loop ").append(wide);
                    }
                }
            }
        }
        if (problems.length() > 0) {
            fail("FAST kernels" + problems);
        }
        assertTrue(kernels >= 35, "only " + kernels + " FAST kernels found");
        assertTrue(loops >= kernels, loops + " innermost loops in " + kernels + " kernels");
    }
}
