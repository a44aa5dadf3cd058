import java.lang.reflect.Method;
import java.nio.ByteOrder;
import java.nio.MappedByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import losskit.api.BackendChoice;
import losskit.api.Loss;
import losskit.api.LossEngine;
import losskit.api.Tensor;
import losskit.io.ArrayFile;
import losskit.io.ArraySource;
import losskit.io.MemorySource;
import losskit.io.Sources;
import losskit.io.StreamingEvaluation;

/**
 * Passes of the streaming evaluation in ONE JVM, for scripts/bench-eval.sh: prints the first pass's
 * seconds (the JIT still compiling, as in a one-shot 'losskit eval') and the best of the next REPS.
 * <ul>
 * <li>{@code mem}: the .npy files read into memory first (not timed): the engine's in-memory rate, same
 *     chunks and engine calls as 'losskit eval', no file reads;</li>
 * <li>{@code files}: the files as 'losskit eval' opens them (read ahead; -Dlosskit.readAhead=false: the
 *     synchronous reads);</li>
 * <li>{@code mmap}: float32 files mapped whole and handed to the engine as views, no copy (the design not
 *     taken: see losskit.io.ReadAhead); each pass maps afresh.</li>
 * </ul>
 * usage: java -cp ... scripts/EvalMemBench.java mem|files|mmap REPS LOSS[,LOSS...] SLOT=FILE.npy [labels:SLOT=FILE.npy]...
 */
public class EvalMemBench {
    public static void main(String[] args) throws Exception {
        String mode = args[0];
        int reps = Integer.parseInt(args[1]);
        Method parse = Class.forName("losskit.cli.LossKitCli").getDeclaredMethod("parseLoss", String.class);
        parse.setAccessible(true);
        List<Loss> losses = new ArrayList<>();
        for (String id : args[2].split(",")) {
            losses.add((Loss) parse.invoke(null, id));
        }
        Map<String, ArraySource> mem = mode.equals("mem") ? slots(mode, args) : null;
        try (LossEngine engine = LossEngine.builder().backend(BackendChoice.parse("cpu")).build()) {
            double first = 0;
            double best = Double.MAX_VALUE;
            for (int r = 0; r <= reps; r++) {
                Map<String, ArraySource> slots = mem != null ? mem : slots(mode, args);
                long t0 = System.nanoTime();
                StreamingEvaluation.run(engine, losses, slots, null, StreamingEvaluation.Options.defaults());
                double s = (System.nanoTime() - t0) / 1e9;
                if (mem == null) {
                    slots.values().forEach(ArraySource::close);
                }
                if (r == 0) {
                    first = s;
                } else {
                    best = Math.min(best, s);
                }
            }
            System.out.printf(java.util.Locale.ROOT, "%.4f %.4f%n", first, best);
        }
    }

    private static Map<String, ArraySource> slots(String mode, String[] args) throws Exception {
        Map<String, ArraySource> slots = new LinkedHashMap<>();
        for (int i = 3; i < args.length; i++) {
            boolean labels = args[i].startsWith("labels:");
            String a = labels ? args[i].substring(7) : args[i];
            String slot = a.substring(0, a.indexOf('='));
            Path p = Path.of(a.substring(a.indexOf('=') + 1));
            switch (mode) {
                case "files" -> slots.put(slot, Sources.open(p.toString(), null, null));
                case "mem" -> {
                    ArrayFile f = ArrayFile.npy(p);
                    int rows = Math.toIntExact(f.rows());
                    slots.put(slot, new MemorySource(slot, labels ? f.labels(0, rows) : f.floats(0, rows)));
                }
                case "mmap" -> {
                    long rows;
                    try (ArrayFile f = ArrayFile.npy(p)) {
                        rows = f.rows();
                    }
                    try (FileChannel ch = FileChannel.open(p, StandardOpenOption.READ)) {
                        long data = rows * 4;
                        MappedByteBuffer m = ch.map(FileChannel.MapMode.READ_ONLY, ch.size() - data, data);
                        slots.put(slot, new MemorySource(slot, Tensor.ofBytes(m.order(ByteOrder.LITTLE_ENDIAN), rows)));
                    }
                }
                default -> throw new IllegalArgumentException(mode);
            }
        }
        return slots;
    }
}
