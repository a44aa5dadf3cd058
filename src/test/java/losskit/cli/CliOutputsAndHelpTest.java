package losskit.cli;

import static losskit.cli.LossKitCliTest.cli;
import static losskit.cli.LossKitCliTest.fixture;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import losskit.cli.LossKitCliTest.NpyTestFiles;
import losskit.cli.LossKitCliTest.Run;
import losskit.io.AtomicOutput;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Issue 14 §3 (outputs checked first, all or nothing, no temporary files after Ctrl-C/SIGTERM) and §4 (help
 * on every subcommand, one backend line, no escape codes, a note without the vector path).
 */
class CliOutputsAndHelpTest {
    @TempDir
    Path tmp;

    private static boolean temporaries(Path dir) throws IOException {
        return temporaryCount(dir) > 0;
    }

    private static long temporaryCount(Path dir) throws IOException {
        try (var files = Files.list(dir)) {
            return files.filter(f -> f.getFileName().toString().contains(".tmp-")).count();
        }
    }

    /** A missing output directory failed after the whole pass, naming a temporary file: now before it, naming the directory. */
    @Test
    void everyOutputPathIsCheckedBeforeThePass() throws IOException {
        Path missing = tmp.resolve("no-such-dir");
        for (String option : List.of("--out", "--out-losses", "--grad-out", "--plot")) {
            Path file = missing.resolve(option.equals("--plot") ? "p.png" : "f.npy");
            long t0 = System.nanoTime();
            Run r = cli("eval", "--pred", fixture("pred_f32.npy"), "--target", fixture("target_f32.npy"), "--loss", "mse",
                    option, file.toString());
            assertEquals(2, r.code(), option + ": " + r.out());
            assertTrue(r.err().contains(option + " " + file + ": directory " + missing + " does not exist"), r.err());
            assertFalse(r.err().contains(".tmp-"), r.err());
            assertTrue(System.nanoTime() - t0 < 5_000_000_000L, "the check comes first");
        }
        Run r = cli("eval", "--pred", fixture("pred_f32.npy"), "--target", fixture("target_f32.npy"), "--loss", "mse",
                "--plot", tmp.resolve("p.gif").toString());
        assertEquals(2, r.code());
        assertTrue(r.err().contains("unknown image type"), r.err());
        r = cli("eval", "--pred", fixture("pred_f32.npy"), "--target", fixture("target_f32.npy"), "--loss", "mse",
                "--out", tmp.toString());
        assertEquals(2, r.code());
        assertTrue(r.err().contains("is a directory"), r.err());
        Path same = tmp.resolve("same.npy");
        r = cli("eval", "--pred", fixture("pred_f32.npy"), "--target", fixture("target_f32.npy"), "--loss", "mse",
                "--out-losses", same.toString(), "--grad-out", same.toString());
        assertEquals(2, r.code());
        assertTrue(r.err().contains("the same file as"), r.err());
        r = cli("merge", "--out", missing.resolve("m.json").toString(), fixture("pred_f32.npy"));
        assertEquals(2, r.code());
        assertTrue(r.err().contains("directory " + missing + " does not exist"), r.err());
    }

    /** A batch's files appear only at commit; a batch closed without commit (a failed run) leaves nothing. */
    @Test
    void outputsAreAllOrNothing() throws IOException {
        Path a = tmp.resolve("a.txt");
        Path b = tmp.resolve("b.bin");
        try (AtomicOutput.Batch batch = new AtomicOutput.Batch()) {
            AtomicOutput.writeString(a, "report", batch);
            AtomicOutput.writeBytes(b, new byte[]{1, 2}, batch);
            assertFalse(Files.exists(a) || Files.exists(b), "nothing is in place before the whole run succeeded");
            // the run fails here (its report, say): the batch is closed without commit
        }
        assertFalse(Files.exists(a) || Files.exists(b));
        assertFalse(temporaries(tmp), "temporary files left");
        try (AtomicOutput.Batch batch = new AtomicOutput.Batch()) {
            AtomicOutput.writeString(a, "report", batch);
            AtomicOutput.writeBytes(b, new byte[]{1, 2}, batch);
            batch.commit();
        }
        assertEquals("report", Files.readString(a));
        assertFalse(temporaries(tmp));
    }

    /** A run failing in its last chunk, with every output asked for, leaves none of them (the plot included). */
    @Test
    void aFailedRunLeavesNoneOfItsOutputs() throws IOException {
        float[] probs = new float[24];
        java.util.Arrays.fill(probs, 0.5f);
        probs[23] = 2f;
        Path bad = tmp.resolve("bad.npy");
        NpyTestFiles.write(bad, probs, 6, 4);
        Path out = tmp.resolve("out");
        Files.createDirectory(out);
        Run r = cli("eval", "--pred", bad.toString(), "--target", fixture("target_f32.npy"), "--loss", "bce",
                "--chunk-rows", "1", "--out", out.resolve("r.json").toString(), "--out-losses", out.resolve("l.npy").toString(),
                "--grad-out", out.resolve("g.npy").toString(), "--plot", out.resolve("p.png").toString());
        assertEquals(2, r.code());
        try (var files = Files.list(out)) {
            assertEquals(List.of(), files.toList());
        }
        // and a run that succeeds puts all four in place
        r = cli("eval", "--pred", fixture("pred_f32.npy"), "--target", fixture("target_f32.npy"), "--loss", "mse",
                "--out", out.resolve("r.json").toString(), "--out-losses", out.resolve("l.npy").toString(),
                "--grad-out", out.resolve("g.npy").toString(), "--plot", out.resolve("p.png").toString());
        assertEquals(0, r.code(), r.err());
        try (var files = Files.list(out)) {
            assertEquals(4, files.count());
        }
    }

    private static List<String> javaCommand(String... args) {
        List<String> cmd = new ArrayList<>();
        cmd.add(ProcessHandle.current().info().command().orElse("java"));
        cmd.add("-cp");
        // the command's own classpath has one SLF4J binding, slf4j-simple (target/lib-cli); the test classpath
        // also has Spark's log4j binding, which would take over and hide INFO lines
        cmd.add(java.util.Arrays.stream(System.getProperty("java.class.path").split(java.io.File.pathSeparator))
                .filter(e -> !Path.of(e).getFileName().toString().startsWith("log4j-slf4j"))
                .collect(java.util.stream.Collectors.joining(java.io.File.pathSeparator)));
        cmd.add("losskit.cli.LossKitCli");
        cmd.addAll(List.of(args));
        return cmd;
    }

    /** SIGTERM (what Ctrl-C's SIGINT also does: the JVM runs its shutdown hooks) in the middle of a pass leaves no temporary file. */
    @Test
    void sigtermRemovesTemporaryFiles() throws Exception {
        int n = 400_000;
        float[] pred = new float[n * 4];
        float[] target = new float[n * 4];
        java.util.SplittableRandom rnd = new java.util.SplittableRandom(3);
        for (int i = 0; i < pred.length; i++) {
            pred[i] = (float) rnd.nextGaussian();
            target[i] = (float) rnd.nextGaussian();
        }
        Path p = tmp.resolve("p.npy");
        Path t = tmp.resolve("t.npy");
        NpyTestFiles.write(p, pred, n, 4);
        NpyTestFiles.write(t, target, n, 4);
        Path out = tmp.resolve("out");
        Files.createDirectory(out);
        Process proc = new ProcessBuilder(javaCommand("eval", "--backend", "cpu", "--pred", p.toString(), "--target",
                t.toString(), "--loss", "mse", "--chunk-rows", "16", "--out-losses", out.resolve("l.npy").toString(),
                "--grad-out", out.resolve("g.npy").toString()))
                .redirectErrorStream(true).redirectOutput(tmp.resolve("log.txt").toFile()).start();
        long deadline = System.nanoTime() + 60_000_000_000L;
        // both outputs' temporaries (per-sample losses and gradient) exist once the pass is under way
        while (temporaryCount(out) < 2 && proc.isAlive() && System.nanoTime() < deadline) {
            Thread.sleep(20);
        }
        assertTrue(proc.isAlive(), "the run finished before it could be interrupted: " + Files.readString(tmp.resolve("log.txt")));
        assertEquals(2, temporaryCount(out), "the temporary files did not appear");
        proc.destroy(); // SIGTERM
        assertTrue(proc.waitFor(30, TimeUnit.SECONDS));
        try (var files = Files.list(out)) {
            assertEquals(List.of(), files.toList(), "left behind after SIGTERM");
        }
    }

    /** One backend line (the report's), no escape codes when not on a terminal, and a note without the vector path. */
    @Test
    void oneBackendLineNoEscapesAndTheScalarPathNote() throws Exception {
        Path err = tmp.resolve("err.txt");
        Path outFile = tmp.resolve("out.txt");
        ProcessBuilder pb = new ProcessBuilder(javaCommand("eval", "--backend", "cpu", "--pred", fixture("pred_f32.npy"), "--target",
                fixture("target_f32.npy"), "--loss", "mse", "--progress"))
                .redirectError(err.toFile()).redirectOutput(outFile.toFile());
        // no relaunch with the vector module (VectorRelaunchTest covers it): the scalar path's note is the subject
        pb.environment().put(VectorRelaunch.OFF, "1");
        Process proc = pb.start();
        assertTrue(proc.waitFor(60, TimeUnit.SECONDS));
        String stdout = Files.readString(outFile, StandardCharsets.UTF_8);
        String stderr = Files.readString(err, StandardCharsets.UTF_8);
        assertEquals(0, proc.exitValue(), stderr);
        String both = stdout + stderr;
        // the report's "backend: …" line; the engine's "LossKit backend: …" INFO line on stderr said it again
        assertEquals(1, count(stdout, "backend: "), stdout);
        assertFalse(stderr.contains("backend: "), stderr);
        assertFalse(both.contains("\u001b"), "escape codes in redirected output: " + both);
        // the child JVM runs without --add-modules jdk.incubator.vector, so the CPU takes the scalar path
        assertTrue(stderr.contains("CPU backend without the vector path"), stderr);

        Process help = new ProcessBuilder(javaCommand("eval", "--help")).redirectErrorStream(true)
                .redirectOutput(outFile.toFile()).start();
        assertTrue(help.waitFor(60, TimeUnit.SECONDS));
        assertEquals(0, help.exitValue());
        assertFalse(Files.readString(outFile).contains("\u001b"), "escape codes in redirected help");
    }

    private static int count(String s, String what) {
        return s.split(java.util.regex.Pattern.quote(what), -1).length - 1;
    }

    /** Every subcommand's help (--help, -h, help CMD) was "Unknown option: '--help'" (exit 2). */
    @Test
    void everySubcommandHasHelpWithExamplesAndExitCodes() {
        List<String[]> asks = List.of(new String[]{"eval", "--help"}, new String[]{"eval", "-h"}, new String[]{"help", "eval"},
                new String[]{"list", "--help"}, new String[]{"info", "--help"}, new String[]{"merge", "--help"},
                new String[]{"bench", "--help"}, new String[]{"help", "merge"}, new String[]{"--help"});
        for (String[] ask : asks) {
            Run r = cli(ask);
            String what = String.join(" ", ask);
            assertEquals(0, r.code(), what + ": " + r.err());
            assertTrue(r.out().contains("Examples:"), what + ": " + r.out());
            assertTrue(r.out().contains("Exit codes:") && r.out().contains("2   bad input"), what + ": " + r.out());
        }
        Run eval = cli("eval", "--help");
        assertTrue(eval.out().contains("classWeight=1;2;0.5"), eval.out());
        assertTrue(eval.out().contains("classWeight=1,2 is an error"), eval.out());
        assertTrue(cli("list", "--help").out().contains("classWeight=1;2;3"));
    }
}
