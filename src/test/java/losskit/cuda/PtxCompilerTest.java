package losskit.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.io.IOException;
import java.net.URISyntaxException;
import java.net.URL;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

/**
 * The PTX compatibility path without a GPU or a driver: every bundled PTX module compiles in this JVM
 * (nvPTXCompiler inside JCuda's native library) for every target we ship for, and the compiler's own
 * report shows every kernel compiled with no stack frame and no spills — the same bar scripts/build-ptx.sh
 * sets with the toolkit's ptxas, checked here with the compiler the backend falls back to at run time.
 *
 * <p>About a second per module and target. Like build-ptx.sh, the check is incremental: a passed
 * (PTX, compiler version, target) is recorded under {@code target/ptx-jvm-check/} by the SHA-256 of the
 * PTX, and is compiled again only when one of them changes (a clean build checks everything).
 */
class PtxCompilerTest {
    /**
     * The oldest and newest targets we ship for; {@code -Dlosskit.ptxTargets=all} adds sm_80, sm_86 and sm_89.
     * scripts/build-ptx.sh already holds every target to the same bar with the toolkit's ptxas on every build,
     * so here the runtime compiler is proven on the two ends (each module and target costs ~5 s on CI).
     */
    private static final String[] TARGETS = "all".equals(System.getProperty("losskit.ptxTargets"))
            ? new String[]{"sm_75", "sm_80", "sm_86", "sm_89", "sm_90"} : new String[]{"sm_75", "sm_90"};
    private static final Pattern ENTRY = Pattern.compile("(?m)^\\.visible \\.entry (\\w+)\\(");
    private static final Pattern COMPILING = Pattern.compile("Compiling entry function '(\\w+)' for '(sm_\\d+)'");
    private static final Pattern FRAME = Pattern.compile("(\\d+) bytes stack frame, (\\d+) bytes spill stores, (\\d+) bytes spill loads");

    /** Every .ptx this build bundles (the backend's modules and any other in the directory). */
    static List<String> bundledModules() {
        Set<String> modules = new LinkedHashSet<>(CudaBackend.modules());
        URL dir = PtxCompilerTest.class.getResource(ModuleLoader.PTX_DIR);
        Assumptions.assumeTrue(dir != null || System.getenv("CI") != null, "this build has no PTX (no nvcc)");
        if (dir != null && dir.getProtocol().equals("file")) {
            try (Stream<Path> files = Files.list(Path.of(dir.toURI()))) {
                files.map(p -> p.getFileName().toString()).filter(n -> n.endsWith(".ptx")).sorted()
                        .forEach(n -> modules.add(n.substring(0, n.length() - 4)));
            } catch (IOException | URISyntaxException e) {
                throw new IllegalStateException(e);
            }
        }
        return new ArrayList<>(modules);
    }

    private static final Path PASSED = Path.of("target", "ptx-jvm-check");

    /** One compilation at a time: nvPTXCompiler runs no faster on two threads (measured: slower). */
    @Test
    void everyBundledPtxCompilesInTheJvmForEveryTargetWithoutSpills() throws IOException {
        List<String> modules = bundledModules();
        String version = PtxCompiler.version();
        assertTrue(version.compareTo("12.0") >= 0, "nvPTXCompiler " + version);
        Files.createDirectories(PASSED);
        List<String> failures = new ArrayList<>();
        for (String module : modules) {
            byte[] ptx = ModuleLoader.ptx(module);
            Set<String> entries = new LinkedHashSet<>();
            Matcher m = ENTRY.matcher(new String(ptx, StandardCharsets.US_ASCII));
            while (m.find()) {
                entries.add(m.group(1));
            }
            assertTrue(!entries.isEmpty(), module + ".ptx has no kernels");
            for (String target : TARGETS) {
                Path passed = PASSED.resolve(module + "." + target + ".passed");
                String key = sha256(ptx) + " nvPTXCompiler " + version;
                if (Files.exists(passed) && Files.readString(passed).equals(key)) {
                    continue;
                }
                String problem = check(module, ptx, target, entries);
                if (problem != null) {
                    failures.add(problem);
                    Files.deleteIfExists(passed);
                } else {
                    Files.writeString(passed, key);
                }
            }
        }
        if (!failures.isEmpty()) {
            fail(String.join("\n", failures));
        }
    }

    private static String sha256(byte[] data) {
        try {
            return java.util.HexFormat.of().formatHex(java.security.MessageDigest.getInstance("SHA-256").digest(data));
        } catch (java.security.NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    /** null when the module compiled cleanly for the target, else what is wrong. */
    private static String check(String module, byte[] ptx, String target, Set<String> entries) {
        PtxCompiler.Result r;
        try {
            r = PtxCompiler.compile(ptx, target);
        } catch (IllegalStateException e) {
            return module + ".ptx for " + target + ": " + e.getMessage();
        }
        byte[] elf = r.cubin();
        if (elf.length < 64 || elf[0] != 0x7f || elf[1] != 'E' || elf[2] != 'L' || elf[3] != 'F') {
            return module + ".ptx for " + target + ": the compiled program is not an ELF cubin";
        }
        // the per-entry report: "Compiling entry function 'X' for 'sm_NN'", then its frame and spill line
        Set<String> compiled = new LinkedHashSet<>();
        String log = r.infoLog();
        Matcher c = COMPILING.matcher(log);
        while (c.find()) {
            assertEquals(target, c.group(2), module + ": compiled for the wrong target");
            compiled.add(c.group(1));
            Matcher f = FRAME.matcher(log);
            if (!f.find(c.end())) {
                return module + ".ptx for " + target + ": no frame report for " + c.group(1);
            }
            if (!f.group(1).equals("0") || !f.group(2).equals("0") || !f.group(3).equals("0")) {
                return module + ".ptx for " + target + ": " + c.group(1) + " has " + f.group() + " (expected none)";
            }
        }
        if (!compiled.equals(entries)) {
            return module + ".ptx for " + target + ": compiled " + compiled + " but the PTX has " + entries;
        }
        return null;
    }
}
