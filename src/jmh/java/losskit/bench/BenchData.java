package losskit.bench;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteOrder;
import java.nio.MappedByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.SplittableRandom;

/**
 * The benchmark inputs, written once as little-endian binary files so that LossKit, DJL and PyTorch (which
 * reads them with numpy) measure the very same bytes. Every case reads a prefix:
 * <ul>
 *   <li>{@code x.f32}: predictions / logits, N(0, 1)</li>
 *   <li>{@code t.f32}: regression targets, N(0, 1)</li>
 *   <li>{@code y01.f32}: binary labels, 0 or 1 with probability ½</li>
 *   <li>{@code labels-C.i32}: class labels in [0, C) for the row cases, {@link #rows(int)} of them</li>
 * </ul>
 * Seeded ({@link SplittableRandom}), so the files are the same on every machine.
 * Directory: system property {@code losskit.bench.data}, default {@code target/bench/data}.
 */
public final class BenchData {
    /** Elements in every row case: N = ROW_ELEMENTS / C rows of C classes. */
    public static final int ROW_ELEMENTS = 10_000_000;
    public static final int[] CLASSES = {10, 1000, 32000};

    private BenchData() {
    }

    public static Path dir() {
        return Path.of(System.getProperty("losskit.bench.data", "target/bench/data"));
    }

    public static int rows(int classes) {
        return ROW_ELEMENTS / classes;
    }

    /** The first n values of a float file. */
    public static float[] floats(String name, int n) {
        float[] a = new float[n];
        try (FileChannel ch = FileChannel.open(dir().resolve(name + ".f32"), StandardOpenOption.READ)) {
            if (ch.size() < 4L * n) {
                throw new IllegalStateException(name + ".f32 holds " + ch.size() / 4 + " values, " + n
                        + " needed: run losskit.bench.BenchData " + n);
            }
            for (int done = 0; done < n; ) {
                int m = Math.min(n - done, 1 << 26);
                MappedByteBuffer b = ch.map(FileChannel.MapMode.READ_ONLY, 4L * done, 4L * m);
                b.order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer().get(a, done, m);
                done += m;
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return a;
    }

    /** The class labels of the row case with C classes. */
    public static int[] labels(int classes) {
        int n = rows(classes);
        int[] a = new int[n];
        try (FileChannel ch = FileChannel.open(dir().resolve("labels-" + classes + ".i32"), StandardOpenOption.READ)) {
            ch.map(FileChannel.MapMode.READ_ONLY, 0, 4L * n).order(ByteOrder.LITTLE_ENDIAN).asIntBuffer().get(a);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return a;
    }

    /** Writes the files for cases of up to {@code args[0]} elements (default 10⁸); existing large-enough files are kept. */
    public static void main(String[] args) throws IOException {
        int max = args.length > 0 ? Integer.parseInt(args[0]) : 100_000_000;
        Files.createDirectories(dir());
        write("x", max, 1, (r, i) -> (float) r.nextGaussian());
        write("t", max, 2, (r, i) -> (float) r.nextGaussian());
        write("y01", max, 3, (r, i) -> r.nextBoolean() ? 1f : 0f);
        for (int c : CLASSES) {
            Path p = dir().resolve("labels-" + c + ".i32");
            int n = rows(c);
            if (Files.exists(p) && Files.size(p) == 4L * n) {
                continue;
            }
            SplittableRandom r = new SplittableRandom(100 + c);
            java.nio.ByteBuffer b = java.nio.ByteBuffer.allocate(4 * n).order(ByteOrder.LITTLE_ENDIAN);
            for (int i = 0; i < n; i++) {
                b.putInt(r.nextInt(c));
            }
            Files.write(p, b.array());
        }
        System.out.println("benchmark data in " + dir().toAbsolutePath() + " (" + max + " elements)");
    }

    private interface Gen {
        float next(SplittableRandom r, int i);
    }

    private static void write(String name, int n, long seed, Gen g) throws IOException {
        Path p = dir().resolve(name + ".f32");
        if (Files.exists(p) && Files.size(p) >= 4L * n) {
            return;
        }
        SplittableRandom r = new SplittableRandom(seed);
        try (FileChannel ch = FileChannel.open(p, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
                StandardOpenOption.TRUNCATE_EXISTING)) {
            java.nio.ByteBuffer b = java.nio.ByteBuffer.allocateDirect(1 << 24).order(ByteOrder.LITTLE_ENDIAN);
            for (int i = 0; i < n; i++) {
                b.putFloat(g.next(r, i));
                if (!b.hasRemaining()) {
                    b.flip();
                    ch.write(b);
                    b.clear();
                }
            }
            b.flip();
            ch.write(b);
        }
    }

    /** Appends {@code impl  case  value} to {@code values.tsv} beside the data: the report checks the implementations agree. */
    public static void recordValue(String impl, String caseKey, double value) {
        try {
            Files.writeString(dir().resolveSibling("values.tsv"), impl + "\t" + caseKey + "\t" + value + "\n",
                    StandardOpenOption.CREATE, StandardOpenOption.APPEND);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** The key that names a case in every implementation's results: {@code loss|size|mode}. */
    public static String caseKey(String loss, String size, String mode) {
        return loss + "|" + size + "|" + mode;
    }
}
