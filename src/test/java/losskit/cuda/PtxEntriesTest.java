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
 * family's module with the parameter count the Java side passes, the MEAN pre-pass kernels exist, and
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
                if (form.family() == Family.MATRIX) {
                    continue; // matrix losses: cuBLAS + a row kernel, not built yet
                }
                String symbol = KernelNames.symbol(d.id(), form);
                Object[] e = modules.get(form.family()).get(symbol);
                assertNotNull(e, d.id() + " [" + form.name() + "]: no kernel " + symbol + " in "
                        + KernelNames.module(form.family()) + ".ptx (has " + modules.get(form.family()).keySet() + ")");
                assertEquals(KernelNames.parameterCount(form.family()), e[0], symbol + ": parameter count");
                if (form.family() == Family.ELEMENTWISE) {
                    assertTrue(((String) e[1]).contains("ld.global.nc.v4.f32"), symbol + " has no 16-byte read-only vector load");
                }
                checked++;
            }
        }
        assertTrue(checked > 0);
        assertEquals(KernelNames.EW_WEIGHT_SUM_PARAMS, modules.get(Family.ELEMENTWISE).get(KernelNames.EW_WEIGHT_SUM)[0]);
        assertEquals(KernelNames.ROWS_DENOMINATOR_PARAMS, modules.get(Family.ROWS).get(KernelNames.ROWS_DENOMINATOR)[0]);
    }
}
