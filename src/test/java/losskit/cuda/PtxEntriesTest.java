package losskit.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import losskit.api.Catalogue;
import losskit.api.Family;
import losskit.api.Form;
import losskit.api.LossDefinition;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

/**
 * CPU-only check of the built PTX (scripts/build-ptx.sh): every catalogue form has its kernel in its
 * family's module with the parameter count the Java side passes (the matrix family's helper kernels too),
 * the MEAN pre-pass kernels exist, and
 * every elementwise kernel reads through 16-byte read-only vector loads.
 */
class PtxEntriesTest {
    private static final Pattern ENTRY = Pattern.compile("\\.entry\\s+(\\w+)\\s*\\(([^)]*)\\)");

    /** name → {parameter count, body} of a module's .entry functions. */
    private static Map<String, Object[]> entries(String module) {
        String text;
        try (InputStream in = PtxEntriesTest.class.getResourceAsStream("/losskit/ptx/" + module + ".ptx")) {
            Assumptions.assumeTrue(in != null || System.getenv("CI") != null, "this build has no PTX (no nvcc)");
            assertNotNull(in, module + ".ptx is missing");
            text = new String(in.readAllBytes(), StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
        Map<String, Object[]> out = new LinkedHashMap<>();
        Matcher m = ENTRY.matcher(text);
        int prevEnd = -1;
        String prev = null;
        while (m.find()) {
            if (prev != null) {
                out.get(prev)[1] = text.substring(prevEnd, m.start());
            }
            int params = m.group(2).isBlank() ? 0 : m.group(2).split(",").length;
            out.put(m.group(1), new Object[]{params, null});
            prev = m.group(1);
            prevEnd = m.end();
        }
        if (prev != null) {
            out.get(prev)[1] = text.substring(prevEnd);
        }
        return out;
    }

    @Test
    void everyCatalogueFormHasItsKernelWithTheJavaParameterCount() {
        Map<Family, Map<String, Object[]>> modules = new LinkedHashMap<>();
        for (Family f : Family.values()) {
            if (!KernelNames.hasKernels(f)) {
                continue;
            }
            modules.put(f, entries(KernelNames.module(f)));
        }
        int checked = 0;
        for (LossDefinition d : Catalogue.all()) {
            for (Form form : d.forms()) {
                String symbol = KernelNames.symbol(d.id(), form);
                Object[] e = modules.get(form.family()).get(symbol);
                assertNotNull(e, d.id() + " [" + form.name() + "]: no kernel " + symbol + " in "
                        + KernelNames.module(form.family()) + ".ptx (has " + modules.get(form.family()).keySet() + ")");
                // matrix losses: cuBLAS GEMMs + a row kernel per loss, each with its own parameters
                int params = form.family() == Family.MATRIX ? CudaMatrixLosses.KERNEL_PARAMS.getOrDefault(symbol, -1)
                        : KernelNames.parameterCount(form.family());
                assertEquals(params, e[0], symbol + ": parameter count");
                if (form.family() == Family.ELEMENTWISE) {
                    assertTrue(((String) e[1]).contains("ld.global.nc.v4.f32"), symbol + " has no 16-byte read-only vector load");
                }
                checked++;
            }
        }
        assertTrue(checked > 0);
        CudaMatrixLosses.KERNEL_PARAMS.forEach((symbol, params) -> {
            Object[] e = modules.get(Family.MATRIX).get(symbol);
            assertNotNull(e, "no kernel " + symbol + " in matrix.ptx");
            assertEquals(params, e[0], symbol + ": parameter count");
        });
        Map<String, Object[]> fast = entries(KernelNames.MATRIX_FAST_MODULE);
        CudaMatrixFast.KERNEL_PARAMS.forEach((symbol, params) -> {
            Object[] e = fast.get(symbol);
            assertNotNull(e, "no kernel " + symbol + " in " + KernelNames.MATRIX_FAST_MODULE + ".ptx");
            assertEquals(params, e[0], symbol + ": parameter count");
        });
        assertEquals(KernelNames.EW_WEIGHT_SUM_PARAMS, modules.get(Family.ELEMENTWISE).get(KernelNames.EW_WEIGHT_SUM)[0]);
        assertEquals(KernelNames.ROWS_DENOMINATOR_PARAMS, modules.get(Family.ROWS).get(KernelNames.ROWS_DENOMINATOR)[0]);
        Map<String, Object[]> finish = entries(KernelNames.FINISH_MODULE);
        assertEquals(KernelNames.FINISH_DENOMINATOR_PARAMS, finish.get(KernelNames.FINISH_DENOMINATOR)[0]);
        assertEquals(KernelNames.FINISH_RESULT_PARAMS, finish.get(KernelNames.FINISH_RESULT)[0]);
        assertEquals(KernelNames.FINISH_SCALE_PARAMS, finish.get(KernelNames.FINISH_SCALE)[0]);
        // the device folds mirror Partial.DoubleDouble: no contracted multiply-add may slip into them
        for (String fold : new String[]{KernelNames.FINISH_DENOMINATOR, KernelNames.FINISH_RESULT}) {
            String body = (String) finish.get(fold)[1];
            assertTrue(!body.contains("fma.rn.f64"), fold + " contains an FMA: its result would differ from the host fold");
        }
    }
}
