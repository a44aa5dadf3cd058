package losskit.emu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Map;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The emulator catches the memory bugs a GPU faults on, or that corrupt memory there: the kernels of
 * cuda-kernels/emu/planted/emu_planted_memory.cu, run by {@link MemoryBugs} in a child JVM (whose stderr holds
 * the diagnostics), under the schedules surefire sets.
 * <ul>
 * <li>a float4/float2/double2/int4 load or store (plain, __ldg, __stcg) at 4, 8 or 12 bytes off a 16-byte
 * boundary, where its width needs more: CUDA_ERROR_MISALIGNED_ADDRESS naming the kernel, block, thread,
 * source line, address and allocation; at an aligned address the same kernels work;</li>
 * <li>a write one element past an allocation's end or before its start: into the poisoned slack
 * (CUDA_ERROR_ILLEGAL_ADDRESS when the launch ends, naming the allocation and the bytes) or the guard page
 * (the fault, at once); also a read-modify-write of the element one past the end of a float or double array
 * (the slack's signalling NaN comes back quieted);</li>
 * <li>a write or read one element past a region of the per-call device arena: with exact regions (the test
 * switch losskit.test.exactArenaRegions) caught like an allocation's, with the product's carved arena
 * landing in the region's padding or its neighbour unnoticed (what the switch is for).</li>
 * </ul>
 */
class MemoryBugsTest {

    @BeforeEach
    void requireEmulator() {
        EmuSupport.requireEmulator();
    }

    @Test
    void misalignedVectorAccessesAndOutOfBoundsWritesFailTheLaunch() {
        EmuSupport.Probe p = EmuSupport.probe(Map.of(), "memory-bugs",
                EmuSupport.ptxPath("emu_planted_memory").toString());
        assertEquals(0, p.exitCode(), p.stderr());
        String err = p.stderr();

        // vectors: correct when aligned to their width, CUDA_ERROR_MISALIGNED_ADDRESS otherwise
        Map<String, String> expectedValue = Map.of("emu_planted_ldg_float4", "10.0", "emu_planted_load_float4", "10.0",
                "emu_planted_load_float2", "3.0", "emu_planted_ldg_double2", "NaN", "emu_planted_load_int4", "NaN");
        for (Map.Entry<String, Integer> k : MemoryBugs.VECTOR_KERNELS.entrySet()) {
            String kernel = k.getKey();
            int width = k.getValue();
            for (int offset : MemoryBugs.OFFSETS) {
                String outcome = p.get(kernel + "+" + offset);
                if (offset % width == 0) {
                    assertTrue(outcome.startsWith("value:"), kernel + " at +" + offset + ": " + outcome);
                    String value = expectedValue.getOrDefault(kernel, "10.0");
                    if (!value.equals("NaN")) {
                        assertTrue(offset != 0 || outcome.equals("value:" + value), kernel + " at +0: " + outcome);
                    }
                } else {
                    assertEquals("error:CUDA_ERROR_MISALIGNED_ADDRESS", outcome, kernel + " at +" + offset);
                    assertTrue(err.contains("kernel " + kernel + ", block (0,0,0), thread (0,0,0)"), err);
                }
            }
        }
        // the diagnostics: the kernel's source line (for __ldg too, not cuda_emu.h's), the access, the address
        assertTrue(err.matches("(?s).*kernel emu_planted_ldg_float4, block \\(0,0,0\\), thread \\(0,0,0\\) \\[warp 0 lane 0\\] "
                + "at cuda-kernels/emu/planted/emu_planted_memory\\.cu:15: misaligned address: 16-byte load \\(__ldg\\) at 0x[0-9a-f]+, which is "
                + "not 16-byte aligned \\(offset 4 of allocation 0x[0-9a-f]+ \\(64 bytes\\)\\).*"), err);
        assertTrue(err.matches("(?s).*kernel emu_planted_store_double2, [^\\n]* at cuda-kernels/emu/planted/emu_planted_memory\\.cu:62: "
                + "misaligned address: store to type 'struct double2' at 0x[0-9a-f]+, which is not 16-byte aligned.*"), err);

        // allocations: a write past the end or before the start
        for (int n : new int[] {100, 1000, 1024}) {
            assertEquals("value:" + (n - 1) + ".0", p.get("fill@" + n), "the correct fill of " + n);
            assertEquals("error:CUDA_ERROR_ILLEGAL_ADDRESS", p.get("fill-past-end@" + n), "one past the end of " + n);
            assertEquals("error:CUDA_ERROR_ILLEGAL_ADDRESS", p.get("fill-before-start@" + n), "one before " + n);
        }
        assertTrue(err.matches("(?s).*kernel emu_planted_fill: out-of-bounds write: bytes 0 to 3 past the end of "
                + "allocation 0x[0-9a-f]+ \\(4000 bytes\\) were written \\(its tail slack.*\\(reached through parameter 0\\).*"), err);
        assertTrue(err.matches("(?s).*kernel emu_planted_fill: out-of-bounds write: bytes 1 to 4 before allocation "
                + "0x[0-9a-f]+ \\(400 bytes\\) were written \\(its head slack.*"), err);
        assertTrue(err.matches("(?s).*kernel emu_planted_fill, block \\(\\d+,0,0\\), thread \\(\\d+,0,0\\) [^\\n]*illegal "
                + "address: write of 0x[0-9a-f]+ \\(0 bytes past the end of allocation 0x[0-9a-f]+ \\(4096 bytes\\)\\).*"), err);

        // a read-modify-write one past the end (g[n] = g[n] * k): the slack holds signalling NaNs, which the
        // arithmetic quiets, so the write changes the bytes (a quiet NaN would come back unchanged, unseen)
        for (int n : new int[] {999, 1000}) {
            assertEquals("value:3.0", p.get("scale-float@" + n), "the correct scaling of " + n + " floats");
            assertEquals("error:CUDA_ERROR_ILLEGAL_ADDRESS", p.get("scale-float-past-end@" + n), "one past " + n + " floats");
        }
        assertEquals("value:3.0", p.get("scale-double@500"));
        assertEquals("error:CUDA_ERROR_ILLEGAL_ADDRESS", p.get("scale-double-past-end@500"), "one past 500 doubles");
        assertTrue(err.matches("(?s).*kernel emu_planted_scale_float: out-of-bounds write: bytes 0 to 3 past the end of "
                + "allocation 0x[0-9a-f]+ \\(3996 bytes\\) were written \\(its tail slack.*"), err);

        // arena regions: exact ones catch what the carved arena lets through
        assertEquals("error:CUDA_ERROR_ILLEGAL_ADDRESS", p.get("exact-arena.write-past-region@1000"));
        assertEquals("error:CUDA_ERROR_ILLEGAL_ADDRESS", p.get("exact-arena.write-past-region@1024"));
        assertEquals("value:NaN", p.get("exact-arena.read-past-region@1000"), "the poisoned tail slack");
        assertEquals("error:CUDA_ERROR_ILLEGAL_ADDRESS", p.get("exact-arena.read-past-region@1024"), "the guard page");
        assertEquals("value:0.0", p.get("carved-arena.write-past-region@1000"), "into the region's padding, unnoticed");
        assertEquals("value:1024.0", p.get("carved-arena.write-past-region@1024"), "into the next region, unnoticed");
        assertEquals("value:NaN", p.get("carved-arena.read-past-region@1000"), "the padding: fresh memory");
        assertEquals("value:1029.0", p.get("carved-arena.read-past-region@1024"), "the next region's first value");
    }
}
