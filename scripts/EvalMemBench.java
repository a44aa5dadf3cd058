import java.lang.reflect.Method;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import losskit.api.BackendChoice;
import losskit.api.Loss;
import losskit.api.LossEngine;
import losskit.io.ArrayFile;
import losskit.io.ArraySource;
import losskit.io.MemorySource;
import losskit.io.StreamingEvaluation;

/**
 * The engine's in-memory rate for scripts/bench-eval.sh: the .npy files are read into memory first (not
 * timed), then the streaming evaluation runs over them in memory (same chunks, same engine calls as
 * 'losskit eval', no file reads); prints the best of 3 passes' seconds.
 * usage: java -cp ... scripts/EvalMemBench.java LOSS[,LOSS...] input=FILE.npy target=FILE.npy [labels:target=FILE.npy]
 */
public class EvalMemBench {
    public static void main(String[] args) throws Exception {
        Method parse = Class.forName("losskit.cli.LossKitCli").getDeclaredMethod("parseLoss", String.class);
        parse.setAccessible(true);
        List<Loss> losses = new ArrayList<>();
        for (String id : args[0].split(",")) {
            losses.add((Loss) parse.invoke(null, id));
        }
        Map<String, ArraySource> slots = new LinkedHashMap<>();
        long bytes = 0;
        for (int i = 1; i < args.length; i++) {
            boolean labels = args[i].startsWith("labels:");
            String a = labels ? args[i].substring(7) : args[i];
            String slot = a.substring(0, a.indexOf('='));
            ArrayFile f = ArrayFile.npy(Path.of(a.substring(a.indexOf('=') + 1)));
            int rows = Math.toIntExact(f.rows());
            slots.put(slot, new MemorySource(slot, labels ? f.labels(0, rows) : f.floats(0, rows)));
            bytes += f.rows() * f.rowBytes();
        }
        try (LossEngine engine = LossEngine.builder().backend(BackendChoice.parse("cpu")).build()) {
            double best = Double.MAX_VALUE;
            for (int r = 0; r < 3; r++) {
                StreamingEvaluation.Outcome o = StreamingEvaluation.run(engine, losses, slots, null,
                        StreamingEvaluation.Options.defaults());
                best = Math.min(best, o.seconds());
            }
            System.out.printf(java.util.Locale.ROOT, "%.4f %d%n", best, bytes);
        }
    }
}
