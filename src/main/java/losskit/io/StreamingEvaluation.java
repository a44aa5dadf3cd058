package losskit.io;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.file.Path;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.function.LongConsumer;
import losskit.api.Family;
import losskit.api.Form;
import losskit.api.Inputs;
import losskit.api.Loss;
import losskit.api.LossDefinition;
import losskit.api.LossEngine;
import losskit.api.LossInputException;
import losskit.api.LossResult;
import losskit.api.Partial;
import losskit.api.PendingLoss;
import losskit.api.Reduction;
import losskit.api.Slot;
import losskit.api.Tensor;
import losskit.cuda.CudaLossException;
import losskit.cuda.CudaStaging;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Evaluates several losses over inputs far larger than memory in one pass: rows flow in chunks (views of
 * memory maps), every loss sees each chunk while it is hot, and chunk {@link Partial}s merge exactly, so
 * the result does not depend on the chunk size beyond float64 rounding. Optional outputs — per-element
 * losses, the gradient, per-class statistics, a loss histogram — are produced in the same pass.
 *
 * <p><b>Pipelined on CUDA.</b> On a CUDA engine, when only reduced values are asked for (no per-sample
 * output, no {@code NONE} reduction, no matrix loss), chunks flow through two lanes ({@link CudaStaging}):
 * each a non-blocking stream, a page-locked host buffer and a device region. Chunk k+1 is read from the
 * files into one lane's page-locked buffer while chunk k's copy and kernels run on the other lane's stream,
 * and chunk k+1's asynchronous copy is queued before chunk k's kernels have finished, so copies overlap
 * compute; every loss of a chunk is one {@link LossEngine#evaluateAsync} on device tensors in the lane's
 * region. A lane is reused only after its previous chunk's results have been read, and those are merged in
 * chunk order, so the partials — and the value — are bitwise those of the synchronous path (one engine
 * call per chunk and loss, which the CPU backend, the other cases and {@link Options#pipeline()} = false
 * take). When the two lanes do not fit in device memory, the run falls back to the synchronous path.
 *
 * <p><b>GPU faults.</b> The pipelined calls read device pointers, which the engine cannot recompute on the
 * CPU itself (see {@link LossEngine}). When a chunk's call, its upload or the staging fails with a fatal
 * CUDA error ({@link CudaLossException#deviceUnusable()}) and the engine falls back to the CPU
 * ({@code auto}: {@link LossEngine#fallBackToCpu}), the run closes the chunks in flight and the staging
 * (its page-locked buffers are freed even though the device is not touched again), drops the partials of
 * the chunks not yet merged, logs once from which row it continues on the CPU, and evaluates the rows from
 * the first unmerged chunk on through the synchronous path, on the same chunk boundaries. The value is
 * the merged GPU prefix plus the CPU suffix, equal to a CPU run's within float64 rounding; the loss's
 * {@link LossOutcome#backend()} reads {@code cuda->cpu} ({@code cpu} when no chunk had been merged) and
 * {@link Outcome#cpuFromRow()} says where the CPU took over. Under {@code cuda} forced the
 * {@link CudaLossException} is thrown (naming the CUresult and "marked unusable"); nothing is written.
 */
public final class StreamingEvaluation {
    private static final Logger LOG = LoggerFactory.getLogger(StreamingEvaluation.class);
    /** Elements of the widest input per chunk when the caller does not choose (16 MB of float32). */
    public static final long DEFAULT_CHUNK_ELEMENTS = 1 << 22;

    /**
     * @param chunkRows  rows per chunk, 0 for {@link #DEFAULT_CHUNK_ELEMENTS}
     * @param fromRow    first row of this shard
     * @param toRow      end row (exclusive) of this shard, −1 for the end
     * @param lossesOut  {@code .npy} for the first loss's per-element (per-row) losses, or null
     * @param gradOut    {@code .npy} for the first loss's gradient w.r.t. its first differentiable input, or null
     * @param perClass   per-class loss and count for classification losses
     * @param histogram  a histogram of per-sample losses (for plots)
     * @param progress   receives input bytes as chunks complete, or null
     * @param outputs    holds the finished output files back until the caller's whole run has succeeded, or
     *                   null to rename each into place as soon as it is complete
     */
    public record Options(long chunkRows, long fromRow, long toRow, Path lossesOut, Path gradOut, boolean perClass,
                          boolean histogram, LongConsumer progress, boolean pipeline, AtomicOutput.Batch outputs) {
        public Options(long chunkRows, long fromRow, long toRow, Path lossesOut, Path gradOut, boolean perClass,
                       boolean histogram, LongConsumer progress, boolean pipeline) {
            this(chunkRows, fromRow, toRow, lossesOut, gradOut, perClass, histogram, progress, pipeline, null);
        }

        /** With the CUDA pipeline allowed (it runs where it applies). */
        public Options(long chunkRows, long fromRow, long toRow, Path lossesOut, Path gradOut, boolean perClass,
                       boolean histogram, LongConsumer progress) {
            this(chunkRows, fromRow, toRow, lossesOut, gradOut, perClass, histogram, progress, true);
        }

        public static Options defaults() {
            return new Options(0, 0, -1, null, null, false, false, null);
        }

        /** These options with the CUDA pipeline allowed or not. */
        public Options pipeline(boolean allowed) {
            return new Options(chunkRows, fromRow, toRow, lossesOut, gradOut, perClass, histogram, progress, allowed, outputs);
        }

        /** These options with the outputs held back by {@code batch}. */
        public Options outputs(AtomicOutput.Batch batch) {
            return new Options(chunkRows, fromRow, toRow, lossesOut, gradOut, perClass, histogram, progress, pipeline, batch);
        }
    }

    /** Per-class mean loss: class → {Σ s·l, rows}. */
    public record ClassStat(long label, double sumLoss, long count) {
        public double mean() {
            return sumLoss / count;
        }
    }

    /** One loss's outcome. */
    public record LossOutcome(Loss loss, Partial partial, String backend, double seconds, long bytes,
                              List<ClassStat> perClass, Histogram histogram) {
    }

    /**
     * Everything one run computed; {@code pipelinedChunks}: chunks that went through the CUDA pipeline and
     * were merged (0: none); {@code cpuFromRow}: the row from which a run whose GPU failed continued on the
     * CPU (see the class comment), −1 when it did not.
     */
    public record Outcome(List<LossOutcome> losses, long fromRow, long toRow, long totalRows, long bytes, double seconds,
                          long pipelinedChunks, long cpuFromRow) {
        public Outcome(List<LossOutcome> losses, long fromRow, long toRow, long totalRows, long bytes, double seconds) {
            this(losses, fromRow, toRow, totalRows, bytes, seconds, 0, -1);
        }

        public Outcome(List<LossOutcome> losses, long fromRow, long toRow, long totalRows, long bytes, double seconds,
                       long pipelinedChunks) {
            this(losses, fromRow, toRow, totalRows, bytes, seconds, pipelinedChunks, -1);
        }
    }

    private StreamingEvaluation() {
    }

    public static Outcome run(LossEngine engine, List<Loss> losses, Map<String, ArraySource> slots, ArraySource weights,
                              Options opt) {
        if (losses.isEmpty()) {
            throw new IllegalArgumentException("no loss to evaluate");
        }
        if (slots.isEmpty()) {
            throw new IllegalArgumentException("no input files");
        }
        long n = -1;
        String first = null;
        for (Map.Entry<String, ArraySource> e : slots.entrySet()) {
            if (isWholeMatrix(losses, e.getKey())) {
                continue;
            }
            if (n < 0) {
                n = e.getValue().rows();
                first = e.getKey();
            } else if (e.getValue().rows() != n) {
                throw new IllegalArgumentException(e.getKey() + " (" + e.getValue().name() + ") has " + e.getValue().rows()
                        + " rows but " + first + " (" + slots.get(first).name() + ") has " + n);
            }
        }
        if (weights != null && weights.rows() != n) {
            throw new IllegalArgumentException("weights (" + weights.name() + ") has " + weights.rows() + " rows but "
                    + first + " has " + n);
        }
        long from = opt.fromRow();
        long to = opt.toRow() < 0 ? n : Math.min(opt.toRow(), n);
        if (from < 0 || from > to) {
            throw new IllegalArgumentException("rows [" + from + ", " + to + ") are not within [0, " + n + ")");
        }
        if ((opt.lossesOut() != null || opt.gradOut() != null) && losses.size() != 1) {
            throw new IllegalArgumentException("--out-losses and --grad-out take exactly one --loss (got " + losses.size() + ")");
        }
        List<Plan> plans = new ArrayList<>();
        long widest = 1;
        for (Loss l : losses) {
            plans.add(new Plan(l, slots, opt));
        }
        for (ArraySource s : slots.values()) {
            widest = Math.max(widest, s.rowLength());
        }
        long chunk = opt.chunkRows() > 0 ? opt.chunkRows() : Math.max(1, DEFAULT_CHUNK_ELEMENTS / widest);
        long bytesPerRow = weights == null ? 0 : weights.rowBytes();
        for (ArraySource s : slots.values()) {
            bytesPerRow += s.rowBytes();
        }

        // files are read ahead, in parallel, while the engine computes (see ReadAhead); the losses see the same
        // chunks either way. Not for whole matrices (read once, whole) nor for a loss that takes the whole range
        // as one chunk (its rows are off the chunk schedule)
        List<ReadAhead> ahead = new ArrayList<>();
        // -Dlosskit.readAhead=false: the reads of the synchronous pass, for comparison (scripts/bench-eval.sh)
        if (plans.stream().noneMatch(p -> p.unsplittable) && to > from
                && !"false".equals(System.getProperty("losskit.readAhead"))) {
            Map<String, ArraySource> wrapped = new java.util.LinkedHashMap<>();
            for (Map.Entry<String, ArraySource> e : slots.entrySet()) {
                ArraySource s = e.getValue();
                if (s instanceof ArrayFile f && !isWholeMatrix(losses, e.getKey())) {
                    ReadAhead r = new ReadAhead(f, from, to, chunk);
                    ahead.add(r);
                    s = r;
                }
                wrapped.put(e.getKey(), s);
            }
            if (weights instanceof ArrayFile f) {
                ReadAhead r = new ReadAhead(f, from, to, chunk);
                ahead.add(r);
                weights = r;
            }
            slots = wrapped;
        }
        try {
            ahead.forEach(ReadAhead::start);
            return run(engine, plans, slots, weights, opt, n, from, to, chunk, bytesPerRow);
        } finally {
            ahead.forEach(ReadAhead::close);
        }
    }

    private static Outcome run(LossEngine engine, List<Plan> plans, Map<String, ArraySource> slots, ArraySource weights,
                               Options opt, long n, long from, long to, long chunk, long bytesPerRow) {
        Plan head = plans.get(0);
        NpyWriter lossesOut = opt.lossesOut() == null ? null
                : new NpyWriter(opt.lossesOut(), new long[]{head.lossesPerRow(slots) * (to - from)}, opt.outputs());
        NpyWriter gradOut = null;
        List<double[]> gradChunks = new ArrayList<>();
        long t0 = System.nanoTime();
        long pipelined = 0;
        long resume = from;
        long cpuFrom = -1;
        try {
            if (pipelines(engine, plans, opt)) {
                Piped piped = runPipelined(engine, plans, slots, weights, from, to, chunk, bytesPerRow, opt);
                pipelined = piped.chunks();
                resume = piped.next();
                cpuFrom = piped.onCpu() ? resume : -1;
            }
            if (opt.gradOut() != null) {
                ArraySource g = slots.get(head.gradSlot());
                long[] shape = g.shape();
                if (shape.length > 0) {
                    shape[0] = to - from;
                }
                gradOut = new NpyWriter(opt.gradOut(), shape.length == 0 ? new long[]{1} : shape, opt.outputs());
            }
            FloatBuffer gradBuffer = null;
            for (long row = resume; row < to; row += chunk) {
                // losses whose rows depend on each other (info-nce: every row is every row's negative) see
                // the whole range as one chunk, the first time round
                boolean firstChunk = row == from;
                int count = (int) Math.min(chunk, to - row);
                Tensor w = weights == null ? null : weights.floats(row, count);
                for (Plan p : plans) {
                    if (p.unsplittable && !firstChunk) {
                        continue;
                    }
                    int saved = count;
                    if (p.unsplittable) {
                        count = Math.toIntExact(to - from);
                    }
                    Inputs in = p.inputs(slots, row, count);
                    if (w != null) {
                        in = in.weights(p.unsplittable ? weights.floats(row, count) : w);
                    }
                    long s0 = System.nanoTime();
                    try {
                        if (p == head && gradOut != null) {
                            int gn = (int) (count * slots.get(p.gradSlot()).rowLength());
                            if (gradBuffer == null || gradBuffer.capacity() < gn) {
                                gradBuffer = ByteBuffer.allocateDirect(gn * 4).order(ByteOrder.nativeOrder()).asFloatBuffer();
                            }
                            FloatBuffer dest = gradBuffer.duplicate();
                            dest.clear().limit(gn);
                            LossResult r = engine.compute(p.loss, in.gradientInto(p.gradSlot(), dest));
                            p.add(r.partial(), r.backend());
                            gradOut.append(dest);
                            gradChunks.add(new double[]{r.partial().valueDerivative(), gn});
                        } else {
                            LossResult r = engine.evaluate(p.loss, in);
                            p.add(r.partial(), r.backend());
                        }
                        if (p.wantsPerSample(opt) || (p == head && lossesOut != null)) {
                            LossResult none = engine.evaluate(p.loss.reduction(Reduction.NONE), in);
                            // per-sample losses come in the input's dtype: widened (exactly) for the statistics and files
                            FloatBuffer perSample = FloatBuffer.wrap(none.lossesArray());
                            p.perSample(perSample, in, opt);
                            if (p == head && lossesOut != null) {
                                lossesOut.append(perSample);
                            }
                        }
                    } catch (LossInputException e) {
                        throw p.globalise(e, slots, weights, row);
                    }
                    p.nanos += System.nanoTime() - s0;
                    count = saved;
                }
                if (opt.progress() != null) {
                    opt.progress().accept(count * bytesPerRow);
                }
            }
            if (gradOut != null) {
                double whole = head.total.valueDerivative();
                long at = 0;
                for (double[] c : gradChunks) {
                    double factor = c[0] == 0 ? 0 : whole / c[0];
                    gradOut.scale(at, (long) c[1], factor);
                    at += (long) c[1];
                }
                gradOut.commit();
            }
            if (lossesOut != null) {
                lossesOut.commit();
            }
        } finally {
            if (gradOut != null) {
                gradOut.close();
            }
            if (lossesOut != null) {
                lossesOut.close();
            }
        }
        double seconds = (System.nanoTime() - t0) / 1e9;
        List<LossOutcome> out = new ArrayList<>();
        for (Plan p : plans) {
            long bytes = (weights == null ? 0 : weights.rowBytes()) * (to - from);
            for (int i = 0; i < p.names.size(); i++) {
                ArraySource s = slots.get(p.names.get(i));
                bytes += s.rowBytes() * (p.whole.get(i) ? s.rows() : to - from);
            }
            out.add(new LossOutcome(p.loss, p.total, p.backend, p.nanos / 1e9, bytes, p.classStats(), p.histogram));
        }
        return new Outcome(out, from, to, n, (to - from) * bytesPerRow, seconds, pipelined, cpuFrom);
    }

    // ---- the CUDA pipeline ------------------------------------------------------------------------------

    /** Whether this run can take the pipeline: a CUDA engine, reduced values only, families that take device data. */
    private static boolean pipelines(LossEngine engine, List<Plan> plans, Options opt) {
        if (!opt.pipeline() || opt.lossesOut() != null || opt.gradOut() != null || !CudaStaging.supports(engine)) {
            return false;
        }
        for (Plan p : plans) {
            if (p.unsplittable || p.whole.contains(true) || p.wantsPerSample(opt) || p.loss.reduction() == Reduction.NONE
                    || !(p.family == Family.ELEMENTWISE || p.family == Family.ROWS || p.family == Family.PAIRS)) {
                return false;
            }
        }
        return true;
    }

    /** One array a chunk carries to the device: a slot as values or as labels, or the weights (slot null). */
    private record Region(String slot, boolean labels, long rowBytes, long offset) {
    }

    /** A chunk in flight: its rows, lane and one pending call per loss. */
    private record Flight(long row, int count, PendingLoss[] calls) {
    }

    /**
     * What the pipeline did: {@code chunks} merged, {@code next} the first row not merged (the synchronous
     * path takes over from there: {@code to} when the pipeline finished), {@code onCpu} whether the engine
     * fell back to the CPU because the GPU failed.
     */
    private record Piped(long chunks, long next, boolean onCpu) {
    }

    /**
     * Runs every chunk through two lanes (see the class comment). Returns after the last chunk; with no chunk
     * when the lanes do not fit in device memory (the caller then runs the synchronous path from the start);
     * or, when the GPU failed and the engine fell back to the CPU, with the chunks merged so far.
     */
    private static Piped runPipelined(LossEngine engine, List<Plan> plans, Map<String, ArraySource> slots,
                                     ArraySource weights, long from, long to, long chunk, long bytesPerRow, Options opt) {
        List<Region> regions = new ArrayList<>();
        long laneBytes = 0;
        long rows = Math.min(chunk, Math.max(1, to - from));
        for (Plan p : plans) {
            for (int i = 0; i < p.names.size(); i++) {
                String name = p.names.get(i);
                boolean labels = p.asLabels.get(i);
                if (regions.stream().noneMatch(r -> name.equals(r.slot()) && r.labels() == labels)) {
                    ArraySource s = slots.get(name);
                    long rowBytes = labels ? Long.BYTES : s.rowLength() * Float.BYTES; // labels: int32 or int64, whatever the source holds
                    regions.add(new Region(name, labels, rowBytes, laneBytes));
                    laneBytes += align(rows * rowBytes);
                }
            }
        }
        if (weights != null) {
            regions.add(new Region(null, false, weights.rowLength() * Float.BYTES, laneBytes));
            laneBytes += align(rows * weights.rowLength() * Float.BYTES);
        }
        CudaStaging staging;
        try {
            staging = CudaStaging.open(engine, 2, Math.max(laneBytes, 1));
        } catch (CudaLossException e) {
            if (continuesOnCpu(engine, e, from)) {
                return new Piped(0, from, true);
            }
            if (!e.isOutOfMemory()) {
                throw e;
            }
            LOG.info("streaming evaluation: two lanes of {} bytes do not fit in device memory ({}); evaluating chunk by "
                    + "chunk without the pipeline", laneBytes, e.getMessage());
            return new Piped(0, from, false);
        }
        ArrayDeque<Flight> inFlight = new ArrayDeque<>();
        long chunks = 0;
        long merged = 0;
        long next = from;
        try {
            try (staging) {
                for (long row = from; row < to; row += chunk) {
                    int count = (int) Math.min(chunk, to - row);
                    // the lane's previous chunk (two back) is read out first: its buffers become free, and results
                    // are taken in chunk order, as the synchronous path takes them
                    if (inFlight.size() == 2) {
                        Flight done = inFlight.poll();
                        collect(done, plans, slots, weights, bytesPerRow, opt);
                        merged++;
                        next = done.row() + done.count();
                    }
                    CudaStaging.Lane lane = staging.lane((int) (chunks % 2));
                    lane.awaitUpload();
                    ByteBuffer host = lane.host();
                    Map<Region, Tensor> onDevice = new java.util.HashMap<>();
                    long bytes = 0;
                    for (Region r : regions) {
                        ArraySource s = r.slot() == null ? weights : slots.get(r.slot());
                        Tensor t = r.labels() ? s.labels(row, count) : s.floats(row, count);
                        ByteBuffer at = host.duplicate().position((int) r.offset()).slice().order(ByteOrder.nativeOrder());
                        int n = (int) t.size();
                        long address = lane.device() + r.offset();
                        switch (t.dtype()) {
                            case FLOAT32 -> at.asFloatBuffer().put(0, t.floats(), 0, n);
                            case BFLOAT16, FLOAT16 -> at.asShortBuffer().put(0, t.shorts(), 0, n);
                            case INT32 -> at.asIntBuffer().put(0, t.ints(), 0, n);
                            case INT64 -> at.asLongBuffer().put(0, t.longs(), 0, n);
                        }
                        onDevice.put(r, r.labels() ? Tensor.labelsOnDevice(address, t.dtype(), count)
                                : Tensor.onDevice(address, t.dtype(), t.shape()));
                        bytes = r.offset() + (long) n * t.dtype().bytes();
                    }
                    lane.upload(bytes);
                    PendingLoss[] calls = new PendingLoss[plans.size()];
                    Flight f = new Flight(row, count, calls);
                    inFlight.add(f);
                    Tensor w = weights == null ? null : onDevice.get(regions.get(regions.size() - 1));
                    for (int k = 0; k < plans.size(); k++) {
                        Plan p = plans.get(k);
                        Inputs in = Inputs.empty();
                        for (int i = 0; i < p.names.size(); i++) {
                            String name = p.names.get(i);
                            boolean labels = p.asLabels.get(i);
                            Region r = regions.stream().filter(x -> name.equals(x.slot()) && x.labels() == labels).findFirst()
                                    .orElseThrow();
                            in = in.with(name, onDevice.get(r));
                        }
                        if (w != null) {
                            in = in.weights(w);
                        }
                        long s0 = System.nanoTime();
                        calls[k] = engine.evaluateAsync(p.loss, in.onStream(lane.stream()));
                        p.nanos += System.nanoTime() - s0;
                    }
                    chunks++;
                }
                while (!inFlight.isEmpty()) {
                    Flight done = inFlight.poll();
                    collect(done, plans, slots, weights, bytesPerRow, opt);
                    merged++;
                    next = done.row() + done.count();
                }
            } finally {
                // closed before a fallback closes the CUDA backend
                for (Flight f : inFlight) {
                    for (PendingLoss c : f.calls()) {
                        if (c != null) {
                            c.close();
                        }
                    }
                }
            }
        } catch (CudaLossException e) {
            // the staging and the chunks in flight are closed by now (the page-locked memory freed whatever
            // the device answers); the partials of the chunks in flight are dropped: the CPU recomputes them
            if (!continuesOnCpu(engine, e, next)) {
                throw e;
            }
            return new Piped(merged, next, true);
        }
        return new Piped(merged, to, false);
    }

    /**
     * Whether a pipelined run whose GPU failed with {@code e} goes on on the CPU from {@code row}: the engine
     * ({@code auto}) fell back because the device was marked unusable; logged once here (the engine logs its
     * own switch once).
     */
    private static boolean continuesOnCpu(LossEngine engine, CudaLossException e, long row) {
        if (!engine.fallBackToCpu(e)) {
            return false;
        }
        LOG.warn("streaming evaluation: the GPU failed ({}); continuing on the CPU from row {} (the chunks before it "
                + "were merged from the GPU, the chunks in flight are recomputed)", e.getMessage(), row);
        return true;
    }

    /**
     * Waits for a chunk's calls and merges their partials, loss by loss, as the synchronous path does — all of
     * them or none: a chunk whose calls fail is not half merged, and its calls are closed either way.
     */
    private static void collect(Flight f, List<Plan> plans, Map<String, ArraySource> slots, ArraySource weights,
                                long bytesPerRow, Options opt) {
        LossResult[] results = new LossResult[plans.size()];
        try {
            for (int k = 0; k < plans.size(); k++) {
                Plan p = plans.get(k);
                long s0 = System.nanoTime();
                try {
                    results[k] = f.calls()[k].result();
                } catch (LossInputException e) {
                    throw p.globalise(e, slots, weights, f.row());
                }
                p.nanos += System.nanoTime() - s0;
            }
        } finally {
            for (int k = 0; k < plans.size(); k++) {
                PendingLoss call = f.calls()[k];
                f.calls()[k] = null;
                if (call != null) {
                    call.close();
                }
            }
        }
        for (int k = 0; k < plans.size(); k++) {
            plans.get(k).add(results[k].partial(), results[k].backend());
        }
        if (opt.progress() != null) {
            opt.progress().accept(f.count() * bytesPerRow);
        }
    }

    private static long align(long bytes) {
        return (bytes + 255) / 256 * 256;
    }

    /** Whether some loss takes this slot as a whole matrix (a classifier's weights), not row by row. */
    private static boolean isWholeMatrix(List<Loss> losses, String slot) {
        for (Loss l : losses) {
            for (Form f : l.definition().forms()) {
                Slot s = f.slot(slot);
                if (s != null && s.kind() == Slot.Kind.MATRIX_ROWS) {
                    return true;
                }
            }
        }
        return false;
    }

    /** How one loss reads the sources: which slots, as labels, values or whole matrices. */
    private static final class Plan {
        final Loss loss;
        final List<String> names = new ArrayList<>();
        final List<Boolean> asLabels = new ArrayList<>();
        final List<Boolean> whole = new ArrayList<>();
        final boolean unsplittable;
        final Family family;
        Partial total;
        String backend = "";
        long nanos;
        final Map<Long, double[]> classes = new TreeMap<>();
        final Histogram histogram;
        private final String labelSlot;

        Plan(Loss loss, Map<String, ArraySource> slots, Options opt) {
            this.loss = loss;
            this.total = Partial.empty(loss);
            LossDefinition d = loss.definition();
            Form chosen = null;
            for (Form f : d.forms()) {
                boolean all = true;
                for (Slot s : f.slots()) {
                    all &= slots.containsKey(s.name());
                }
                if (all) {
                    // a form with labels needs an integer file there; else the next form (soft targets)
                    boolean typesFit = true;
                    for (Slot s : f.slots()) {
                        ArraySource src = slots.get(s.name());
                        if (s.kind() == Slot.Kind.LABELS && !(src.dtype().isInteger() && src.rowLength() == 1)) {
                            typesFit = false;
                        }
                    }
                    if (typesFit || chosen == null) {
                        chosen = f;
                    }
                    if (typesFit) {
                        break;
                    }
                }
            }
            if (chosen == null) {
                StringBuilder need = new StringBuilder();
                for (Form f : d.forms()) {
                    need.append(need.length() == 0 ? "" : " or ").append(f.slots().stream().map(Slot::name).toList());
                }
                throw new IllegalArgumentException(loss.id() + ": needs inputs " + need + ", given " + slots.keySet());
            }
            checkLabels(loss, d, chosen, slots);
            String label = null;
            this.unsplittable = chosen.family() == losskit.api.Family.MATRIX && !chosen.hasLabels();
            this.family = chosen.family();
            for (Slot s : chosen.slots()) {
                names.add(s.name());
                whole.add(s.kind() == Slot.Kind.MATRIX_ROWS);
                boolean labels = s.kind() == Slot.Kind.LABELS;
                asLabels.add(labels);
                if (labels) {
                    label = s.name();
                }
            }
            if (label == null && chosen.family() == losskit.api.Family.ELEMENTWISE && names.contains("target")) {
                label = "target"; // binary targets: classes are the target values 0/1 or ±1
            }
            this.labelSlot = label;
            this.histogram = opt.histogram() ? new Histogram() : null;
        }

        /**
         * When the loss has a class-label form but the files chose another (soft targets: values of the input's
         * shape), a label file that is plainly not soft targets gets a message about labels: float labels one
         * per row "must be integers", integer labels of another shape "must be one per row" — not a shape
         * mismatch that reports int64 labels as the float32 they were converted to.
         */
        private static void checkLabels(Loss loss, LossDefinition d, Form chosen, Map<String, ArraySource> slots) {
            if (chosen.hasLabels()) {
                return;
            }
            ArraySource in = slots.get(chosen.slots().get(0).name());
            for (Form f : d.forms()) {
                if (!f.hasLabels() || f.slots().size() != chosen.slots().size()) {
                    continue;
                }
                for (Slot s : f.slots()) {
                    ArraySource src = slots.get(s.name());
                    if (s.kind() != Slot.Kind.LABELS || src == null || java.util.Arrays.equals(src.shape(), in.shape())) {
                        continue;
                    }
                    String what = s.name() + " (" + src.name() + ") is " + src.dtype().id()
                            + java.util.Arrays.toString(src.shape());
                    String soft = "; soft targets are probabilities of the input's shape " + java.util.Arrays.toString(in.shape());
                    if (!src.dtype().isInteger() && src.rowLength() == 1) {
                        throw new IllegalArgumentException(loss.id() + ": " + what + ": class labels must be integers "
                                + "(an int32 or int64 .npy, or whole numbers in text)" + soft);
                    }
                    if (src.dtype().isInteger()) {
                        throw new IllegalArgumentException(loss.id() + ": " + what + ": class labels must be one per row, "
                                + "shape [" + in.rows() + "] for the input " + in.dtype().id()
                                + java.util.Arrays.toString(in.shape()) + soft);
                    }
                }
            }
        }

        String gradSlot() {
            return names.get(0);
        }

        long lossesPerRow(Map<String, ArraySource> slots) {
            Form f = loss.definition().forms().stream().filter(x -> x.slots().stream().map(Slot::name).toList().equals(names))
                    .findFirst().orElse(loss.definition().forms().get(0));
            return f.family() == losskit.api.Family.ELEMENTWISE ? slots.get(names.get(0)).rowLength() : 1;
        }

        Inputs inputs(Map<String, ArraySource> slots, long row, int count) {
            Inputs in = Inputs.empty();
            for (int i = 0; i < names.size(); i++) {
                ArraySource s = slots.get(names.get(i));
                Tensor t = whole.get(i) ? s.floats(0, Math.toIntExact(s.rows()))
                        : asLabels.get(i) ? s.labels(row, count) : s.floats(row, count);
                in = in.with(names.get(i), t);
            }
            return in;
        }

        /** Merges a chunk's partial; the backend reads as the backends that gave partials, in order ({@code cuda->cpu}). */
        void add(Partial p, String backendName) {
            total = total.merge(p);
            if (backend.isEmpty()) {
                backend = backendName;
            } else if (!backend.equals(backendName) && !backend.endsWith("->" + backendName)) {
                backend = backend + "->" + backendName;
            }
        }

        boolean wantsPerSample(Options opt) {
            return (opt.perClass() && labelSlot != null) || histogram != null;
        }

        void perSample(FloatBuffer losses, Inputs in, Options opt) {
            if (histogram != null) {
                for (int i = 0; i < losses.limit(); i++) {
                    histogram.add(losses.get(i));
                }
            }
            if (!opt.perClass() || labelSlot == null) {
                return;
            }
            Tensor t = in.tensor(labelSlot);
            for (int i = 0; i < losses.limit(); i++) {
                long c;
                if (t.isFloat()) {
                    float v = t.floatAt(i);
                    if (v != Math.rint(v)) {
                        continue;
                    }
                    c = (long) v;
                } else {
                    c = t.label(i);
                }
                double[] acc = classes.computeIfAbsent(c, k -> new double[2]);
                acc[0] += losses.get(i);
                acc[1] += 1;
            }
        }

        List<ClassStat> classStats() {
            if (labelSlot == null || classes.isEmpty()) {
                return List.of();
            }
            List<ClassStat> out = new ArrayList<>();
            classes.forEach((k, v) -> out.add(new ClassStat(k, v[0], (long) v[1])));
            return out;
        }

        /** Makes a chunk-local error index global. */
        LossInputException globalise(LossInputException e, Map<String, ArraySource> slots, ArraySource weights, long row) {
            ArraySource s = e.argument().equals("weights") ? weights : slots.get(e.argument());
            if (s == null || e.index() < 0) {
                return e;
            }
            boolean perRow = asLabels.get(Math.max(0, names.indexOf(e.argument()))) || s.rowLength() == 1;
            return e.shifted(perRow ? row : row * s.rowLength());
        }
    }
}
