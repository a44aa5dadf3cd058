package losskit.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;

/**
 * `java -jar losskit-cli.jar` starts a JVM without the Vector API module; the CLI then runs itself again with
 * it (issue 21), so the CPU backend takes its vector path without flags. Checked on child JVMs started the way a
 * user's `java -jar` starts them: no --add-modules.
 */
class VectorRelaunchTest {
    private record Run(int code, String out) {
    }

    private static Run cli(Map<String, String> env, String... args) throws IOException, InterruptedException {
        List<String> cmd = new ArrayList<>();
        cmd.add(ProcessHandle.current().info().command().orElse("java"));
        cmd.add("-cp");
        // the CLI's own binding only (the test classpath also has Spark's log4j binding)
        cmd.add(Arrays.stream(System.getProperty("java.class.path").split(java.io.File.pathSeparator))
                .filter(e -> !Path.of(e).getFileName().toString().startsWith("log4j-slf4j"))
                .collect(Collectors.joining(java.io.File.pathSeparator)));
        cmd.add(LossKitCli.class.getName());
        cmd.addAll(List.of(args));
        ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true);
        pb.environment().remove(VectorRelaunch.OFF);
        pb.environment().putAll(env);
        Process p = pb.start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        return new Run(p.waitFor(), out);
    }

    @Test
    void aJvmWithoutTheVectorModuleRunsTheCliAgainWithIt() throws Exception {
        Run r = cli(Map.of(), "info");
        assertEquals(0, r.code(), r.out());
        assertTrue(r.out().contains("cpu:  available — cpu,") && r.out().contains("vector "), r.out());
        assertTrue(!r.out().contains("scalar (jdk.incubator.vector not present"), r.out());
    }

    @Test
    void theSwitchKeepsTheScalarPathInThisJvm() throws Exception {
        Run r = cli(Map.of(VectorRelaunch.OFF, "1"), "info");
        assertEquals(0, r.code(), r.out());
        assertTrue(r.out().contains("scalar (jdk.incubator.vector not present"), r.out());
    }

    @Test
    void theRelaunchedCommandsExitCodeIsTheExitCode() throws Exception {
        Run r = cli(Map.of(), "eval", "--loss", "no-such-loss");
        assertEquals(2, r.code(), r.out());
        assertTrue(r.out().contains("no-such-loss"), r.out());
    }
}
