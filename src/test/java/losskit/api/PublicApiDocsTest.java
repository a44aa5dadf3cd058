package losskit.api;

import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.fail;

import java.io.IOException;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.stream.Stream;
import javax.tools.Diagnostic;
import javax.tools.DiagnosticCollector;
import javax.tools.DocumentationTool;
import javax.tools.JavaFileObject;
import javax.tools.StandardJavaFileManager;
import javax.tools.ToolProvider;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The documentation gate of the public API (issue 21): the JDK's javadoc, run in-process with every doclint
 * check on, must report nothing for the types a library user programs against.
 *
 * <p>What is public API: the whole of {@code losskit.api}, plus the types README.md tells users to call from
 * other packages — {@code losskit.cuda.JCudaInterop} (device pointers and streams as numbers) and
 * {@code CudaLossException} (what a GPU failure throws), and {@code losskit.spark}'s entry points
 * {@code LossKitSpark}, {@code Signature} and {@code LossKitExtensions}. The other public classes of those
 * packages are public for the JVM's or Spark's sake (the backend, the staging lanes, the aggregator Spark
 * instantiates) and are documented where they are, not gated. Only these files are given to javadoc; everything
 * they refer to is read from the compiled classes, which keeps the run to a few seconds.
 */
class PublicApiDocsTest {
    private static final Path SOURCES = Path.of("src/main/java");

    /** The public files outside {@code losskit.api}, with their package overviews. */
    private static final List<String> OTHER_PUBLIC = List.of(
            "losskit/cuda/JCudaInterop.java",
            "losskit/cuda/CudaLossException.java",
            "losskit/cuda/package-info.java",
            "losskit/spark/LossKitSpark.java",
            "losskit/spark/Signature.java",
            "losskit/spark/LossKitExtensions.java",
            "losskit/spark/package-info.java");

    /** Internal packages are outside the doclint gate, but each says what it holds and where its arrows point. */
    @Test
    void everyPackageHasAnOverview() throws IOException {
        List<String> missing = new ArrayList<>();
        try (Stream<Path> dirs = Files.walk(SOURCES.resolve("losskit"))) {
            dirs.filter(Files::isDirectory)
                    .filter(d -> hasJava(d))
                    .filter(d -> !Files.isRegularFile(d.resolve("package-info.java")))
                    .forEach(d -> missing.add(SOURCES.relativize(d).toString().replace('/', '.')));
        }
        if (!missing.isEmpty()) {
            fail("packages without a package-info.java overview: " + missing);
        }
    }

    private static boolean hasJava(Path dir) {
        try (Stream<Path> files = Files.list(dir)) {
            return files.anyMatch(f -> f.toString().endsWith(".java"));
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }

    @Test
    void everyPublicTypeAndMemberIsDocumented(@TempDir Path out) throws IOException {
        List<Path> files = new ArrayList<>();
        List<String> problems = new ArrayList<>();
        try (Stream<Path> api = Files.list(SOURCES.resolve("losskit/api"))) {
            api.filter(p -> p.toString().endsWith(".java")).sorted().forEach(files::add);
        }
        for (String f : OTHER_PUBLIC) {
            if (Files.isRegularFile(SOURCES.resolve(f))) {
                files.add(SOURCES.resolve(f));
            } else {
                problems.add(f + ": missing");
            }
        }
        if (!files.contains(SOURCES.resolve("losskit/api/package-info.java"))) {
            problems.add("losskit/api/package-info.java: missing (the package overview)");
        }

        DocumentationTool javadoc = ToolProvider.getSystemDocumentationTool();
        assertNotNull(javadoc, "no javadoc in this JDK (a JRE?)");
        DiagnosticCollector<JavaFileObject> diagnostics = new DiagnosticCollector<>();
        StringWriter log = new StringWriter();
        try (StandardJavaFileManager fm = javadoc.getStandardFileManager(diagnostics, null, null)) {
            Iterable<? extends JavaFileObject> units = fm.getJavaFileObjectsFromPaths(files);
            List<String> options = List.of(
                    "-d", out.toString(),
                    "-quiet",
                    "-Xdoclint:all",
                    "-Xmaxwarns", "10000", "-Xmaxerrs", "10000",
                    "--add-modules", "jdk.incubator.vector",
                    // the compiled main classes (and Spark, JCuda) resolve every reference outside these files
                    "-classpath", System.getProperty("java.class.path"),
                    // an empty source path: without one javadoc would look for sources on the class path
                    "-sourcepath", out.toString(),
                    "-encoding", "UTF-8",
                    "-notimestamp");
            boolean ok = javadoc.getTask(log, fm, diagnostics, null, options, units).call();
            diagnostics.getDiagnostics().stream()
                    .filter(d -> d.getKind() != Diagnostic.Kind.NOTE)
                    // the one warning that is not about the comments: --add-modules of an incubator module
                    .filter(d -> !d.getMessage(null).contains("incubating module"))
                    .sorted(Comparator.comparing((Diagnostic<? extends JavaFileObject> d) ->
                            d.getSource() == null ? "" : d.getSource().getName()).thenComparingLong(Diagnostic::getLineNumber))
                    .forEach(d -> problems.add((d.getSource() == null ? "" : SOURCES.toAbsolutePath()
                            .relativize(Path.of(d.getSource().toUri()).toAbsolutePath()) + ":" + d.getLineNumber() + ": ")
                            + d.getKind() + ": " + d.getMessage(null)));
            if (!ok || !problems.isEmpty()) {
                fail(problems.size() + " javadoc problem(s) in the public API:\n" + String.join("\n", problems)
                        + (log.toString().isBlank() ? "" : "\njavadoc's log:\n" + log));
            }
        }
    }
}
