package losskit.cli;

import java.lang.management.ManagementFactory;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.TimeUnit;

/**
 * Starts the CLI again with {@code --add-modules jdk.incubator.vector} when the JVM was started without it —
 * {@code java -jar losskit-cli.jar ...}: a jar's manifest can open packages but cannot add a module, and
 * without the Vector API the CPU backend runs its scalar loops, 10–25 times slower for some losses. The child
 * gets the same java executable, JVM options, class path and arguments, inherits stdin/stdout/stderr, and
 * its exit code becomes ours. Ctrl-C reaches both (one process group; the child cleans up its temporary
 * files itself); a SIGTERM sent to this process only is passed on, and we wait for the child to finish.
 *
 * <p>{@value #OFF}{@code =1} turns it off (the child runs with it set, so it never relaunches itself);
 * so does an explicit {@code -Dlosskit.simd=false}. When the relaunch is impossible (no java executable
 * known) the CLI goes on in this JVM, and the library says at INFO that it runs the scalar path.
 */
final class VectorRelaunch {
    static final String OFF = "LOSSKIT_NO_RELAUNCH";
    static final String MODULE = "jdk.incubator.vector";

    private VectorRelaunch() {
    }

    /** The child's exit code, or empty when this JVM should run the command itself. */
    static Optional<Integer> ifNeeded(String[] args) {
        if (ModuleLayer.boot().findModule(MODULE).isPresent() || System.getenv(OFF) != null
                || "false".equalsIgnoreCase(System.getProperty("losskit.simd", "").trim())) {
            return Optional.empty();
        }
        Optional<String> java = ProcessHandle.current().info().command();
        String classPath = System.getProperty("java.class.path", "");
        if (java.isEmpty() || classPath.isEmpty()) {
            return Optional.empty();
        }
        List<String> command = new ArrayList<>();
        command.add(java.get());
        command.add("--add-modules");
        command.add(MODULE);
        for (String option : ManagementFactory.getRuntimeMXBean().getInputArguments()) {
            // the options this JVM was started with, except agent/debug ports a second JVM must not reopen
            if (!option.startsWith("-agentlib:jdwp") && !option.startsWith("-javaagent")) {
                command.add(option);
            }
        }
        command.add("-cp");
        command.add(classPath);
        command.add(LossKitCli.class.getName());
        command.addAll(List.of(args));
        ProcessBuilder pb = new ProcessBuilder(command).inheritIO();
        pb.environment().put(OFF, "1");
        Process child;
        try {
            child = pb.start();
        } catch (java.io.IOException e) {
            return Optional.empty();
        }
        Thread forward = new Thread(() -> {
            if (child.isAlive()) {
                child.destroy();   // SIGTERM: the child's own shutdown hook removes its temporary files
                try {
                    child.waitFor(10, TimeUnit.SECONDS);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            }
        }, "losskit-relaunch-forward");
        Runtime.getRuntime().addShutdownHook(forward);
        try {
            int code = child.waitFor();
            Runtime.getRuntime().removeShutdownHook(forward);
            return Optional.of(code);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return Optional.of(130);
        }
    }
}
