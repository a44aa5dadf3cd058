package losskit.cpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import losskit.api.BackendChoice;
import losskit.api.Inputs;
import losskit.api.Loss;
import losskit.api.LossEngine;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A JVM started the way a library user starts it — without {@code --add-modules jdk.incubator.vector} —
 * runs the scalar path, says so, and never loads a class that names a vector type.
 */
class WithoutVectorModuleTest {

    @Test
    void aJvmWithoutTheModuleRunsTheScalarPath(@TempDir Path tmp) throws IOException, InterruptedException {
        String java = ProcessHandle.current().info().command().orElse("java");
        Path log = tmp.resolve("child.log");
        Process p = new ProcessBuilder(List.of(java, "-cp", System.getProperty("java.class.path"),
                "-Xlog:class+load=info", "-Dslf4j.internal.verbosity=ERROR", Main.class.getName()))
                .redirectErrorStream(true).redirectOutput(log.toFile()).start();
        if (!p.waitFor(120, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            throw new AssertionError("child JVM did not finish: " + Files.readString(log));
        }
        String out = Files.readString(log, StandardCharsets.UTF_8);
        assertEquals(0, p.exitValue(), out);
        assertTrue(out.contains("scalar (jdk.incubator.vector not present"), out);
        assertTrue(out.contains("value 0.25"), out);
        assertTrue(out.contains("class,load] losskit.cpu.FastElementwiseLoop "), "class-load log missing: " + out);
        for (String vectorClass : List.of("losskit.cpu.VectorTerms ", "losskit.cpu.VectorMath ",
                "losskit.cpu.VectorElementwiseLoop ", "losskit.cpu.FastVectorMath ", "losskit.cpu.FastVectorTerms ",
                "losskit.cpu.FastVectorLoop ", "jdk.incubator.vector.")) {
            assertTrue(!out.contains("class,load] " + vectorClass), vectorClass + "was loaded");
        }
    }

    /** The child: two calls on the CPU (a twin exists for both losses on the vector path). */
    public static final class Main {
        public static void main(String[] args) throws Exception {
            try (LossEngine e = LossEngine.create(BackendChoice.CPU)) {
                double v = e.compute(Loss.of("bce-logits"), Inputs.of(new float[]{0, 0, 0, 0}, new float[]{1, 0, 1, 0}))
                        .value();
                double mse = e.compute(Loss.of("mse"), Inputs.of(new float[]{1, 1}, new float[]{0.5f, 0.5f})).value();
                System.out.println(e.backend().describe());
                System.out.println("value " + mse + " bce " + v);
            }
        }
    }
}
