package losskit.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

/**
 * CPU-only checks of the cubins scripts/build-ptx.sh ships beside the PTX: one per module and shipped
 * architecture, an ELF for the architecture its directory names (e_flags), defining exactly the kernels the
 * module's PTX defines (the ELF symbol table's CUDA entry functions); and the binary-compatibility rule
 * {@link ModuleLoader#compatibleArch} picks a cubin by.
 */
class ShippedCubinsTest {
    private static final Pattern PTX_ENTRY = Pattern.compile("(?m)^\\.visible \\.entry (\\w+)\\(");

    /** An ELF cubin's target architecture and CUDA entry functions, read from its headers and symbol table. */
    record Cubin(int sm, Set<String> entries) {
        static Cubin read(byte[] image) {
            ByteBuffer b = ByteBuffer.wrap(image).order(ByteOrder.LITTLE_ENDIAN);
            assertTrue(image.length > 64 && b.getInt(0) == 0x464c457f, "not an ELF image");
            assertEquals(2, image[4], "ELFCLASS64");
            assertEquals(190, b.getShort(18), "e_machine EM_CUDA");
            int flags = b.getInt(48);
            // CUDA ELF ABI: the SM number in e_flags bits 8-15 (bits 0-7 in ABI versions before 8; checked
            // with readelf -h against ptxas 13 cubins: sm_80 0x6005004, sm_86 0x6005604, sm_90 0x6005a04)
            int sm = (flags & 0xff) >= 20 ? flags & 0xff : (flags >> 8) & 0xff;
            long shoff = b.getLong(40);
            int shentsize = b.getShort(58) & 0xffff;
            int shnum = b.getShort(60) & 0xffff;
            Set<String> entries = new TreeSet<>();
            for (int s = 0; s < shnum; s++) {
                int h = (int) (shoff + (long) s * shentsize);
                if (b.getInt(h + 4) != 2) { // SHT_SYMTAB
                    continue;
                }
                long offset = b.getLong(h + 24);
                long size = b.getLong(h + 32);
                int strtab = (int) (shoff + (long) b.getInt(h + 40) * shentsize);
                long strOffset = b.getLong(strtab + 24);
                for (long sym = offset; sym + 24 <= offset + size; sym += 24) {
                    int info = image[(int) sym + 4];
                    int other = image[(int) sym + 5];
                    if ((info & 0xf) == 2 && (other & 0x10) != 0) { // STT_FUNC, STO_CUDA_ENTRY
                        int name = (int) (strOffset + b.getInt((int) sym));
                        int end = name;
                        while (image[end] != 0) {
                            end++;
                        }
                        entries.add(new String(image, name, end - name, StandardCharsets.US_ASCII));
                    }
                }
            }
            return new Cubin(sm, entries);
        }
    }

    private static Set<String> ptxEntries(String module) {
        byte[] ptx = ModuleLoader.ptx(module);
        Matcher m = PTX_ENTRY.matcher(new String(ptx, 0, ptx.length - 1, StandardCharsets.UTF_8));
        Set<String> out = new TreeSet<>();
        while (m.find()) {
            out.add(m.group(1));
        }
        return out;
    }

    @Test
    void everyModuleHasACubinForEveryShippedArchitectureWithEveryKernelOfItsPtx() {
        Assumptions.assumeTrue(ModuleLoader.bundled(KernelNames.FINISH_MODULE) || System.getenv("CI") != null,
                "this build has no PTX (no nvcc)");
        int checked = 0;
        for (String module : CudaBackend.modules()) {
            Set<String> kernels = ptxEntries(module);
            assertTrue(!kernels.isEmpty(), module + ".ptx has no entries");
            assertEquals(ModuleLoader.CUBIN_ARCHS, ModuleLoader.shippedArchs(module), module + ": shipped cubins");
            for (String arch : ModuleLoader.CUBIN_ARCHS) {
                Cubin c = Cubin.read(ModuleLoader.shippedCubin(module, arch));
                assertEquals(arch, "sm_" + c.sm(), module + ".cubin in " + arch + "/ is for another architecture");
                assertEquals(kernels, c.entries(), module + ".cubin for " + arch + ": its kernels against the PTX's");
                checked++;
            }
        }
        assertEquals(CudaBackend.modules().size() * ModuleLoader.CUBIN_ARCHS.size(), checked);
    }

    @Test
    void aCubinRunsOnItsMajorWithAnEqualOrHigherMinor() {
        List<String> all = ModuleLoader.CUBIN_ARCHS;
        assertEquals("sm_80", ModuleLoader.compatibleArch(8, 0, all));
        assertEquals("sm_86", ModuleLoader.compatibleArch(8, 6, all), "the exact match");
        assertEquals("sm_86", ModuleLoader.compatibleArch(8, 7, all), "Orin (8.7) runs sm_86 SASS");
        assertEquals("sm_89", ModuleLoader.compatibleArch(8, 9, all));
        assertEquals("sm_90", ModuleLoader.compatibleArch(9, 0, all));
        assertNull(ModuleLoader.compatibleArch(7, 5, all), "no Turing SASS: the PTX");
        assertNull(ModuleLoader.compatibleArch(10, 0, all), "SASS never runs on another major");
        assertNull(ModuleLoader.compatibleArch(12, 0, all));
        assertEquals("sm_80", ModuleLoader.compatibleArch(8, 6, List.of("sm_80", "sm_89", "sm_90")),
                "without sm_86: the highest lower minor");
        assertNull(ModuleLoader.compatibleArch(8, 0, List.of("sm_86", "sm_89")), "a higher minor never runs");
    }
}
