package losskit.cuda;

import static jcuda.driver.JCudaDriver.cuEventRecord;
import static jcuda.driver.JCudaDriver.cuMemcpyDtoHAsync;
import static jcuda.driver.JCudaDriver.cuMemcpyHtoD;

import java.nio.Buffer;
import java.nio.ByteBuffer;
import java.nio.FloatBuffer;
import java.nio.IntBuffer;
import java.nio.LongBuffer;
import java.util.ArrayList;
import java.util.List;
import jcuda.CudaException;
import jcuda.Pointer;
import jcuda.driver.CUdeviceptr;
import jcuda.driver.CUevent;
import jcuda.driver.CUfunction;
import jcuda.driver.CUstream;
import losskit.api.Family;
import losskit.api.Form;
import losskit.api.LossDefinition;
import losskit.api.LossInputException;
import losskit.api.LossResult;
import losskit.api.Param;
import losskit.api.Partial;
import losskit.api.PendingLoss;
import losskit.api.Reduction;
import losskit.api.Slot;
import losskit.api.Tensor;
import losskit.api.ValidatedCall;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The elementwise, rows and pairs families on the GPU. One call is one or more <em>pieces</em>: a launch of
 * the family kernel over a range of elements (or rows) with its operands in device memory. A piece queues,
 * on one stream and without waiting: the MEAN pre-pass when the denominator depends on the data (folded on
 * the device into the gradient factor the kernel reads), the family kernel (value, gradient and block
 * partials in one pass), the fold of the partials into the call's result record (cuda-kernels/finish.cu)
 * and rmse's outer scaling. So:
 * <ul>
 * <li>a call whose data and gradients are on the device ({@link Tensor#onDevice}) copies nothing to or
 *     from the host, and {@link #computeAsync} leaves the value in device memory until it is asked for;</li>
 * <li>a call with host data uploads it into the arena first and waits only to copy results back;</li>
 * <li>host data larger than the device's free memory is run in chunks ({@link #runChunked}): two streams,
 *     two page-locked staging buffers, so that one chunk's copies overlap the other's kernels; chunk
 *     partials merge exactly ({@link Partial#merge}) and gradients are rescaled once the whole
 *     denominator is known. Out of memory: smaller chunks, then an exception (never a wrong number).</li>
 * </ul>
 * Results are folded in block order in double-double, so they are bitwise reproducible run to run.
 */
final class FamilyKernels {
    private static final Logger LOG = LoggerFactory.getLogger(FamilyKernels.class);
    static final int EW_BLOCK = 256;
    static final int ROW_BLOCK = 128;
    static final int ROWS_PER_BLOCK = ROW_BLOCK / 32;
    static final int DEN_BLOCK = 256;
    static final int MAX_GRID = 1024;
    static final int FINISH_BLOCK = 32;
    static final int SCALE_BLOCK = 256;
    /** Page-locked bytes staged per lane and chunk (inputs and outputs), {@code losskit.cuda.chunkBytes}. */
    static final long CHUNK_STAGING_BYTES = Long.getLong("losskit.cuda.chunkBytes", 64L << 20);

    private final CudaDevice dev;
    private long chunkedCalls;
    private long outOfMemoryRetries;
    private long lastChunkUnits;
    private int lastChunks;

    FamilyKernels(CudaDevice dev) {
        this.dev = dev;
    }

    // ---- entry points (the device's monitor is held, the context current) ---------------------------

    /** The families this class runs (and the only ones that take device pointers). */
    static boolean handles(Family family) {
        return family == Family.ELEMENTWISE || family == Family.ROWS || family == Family.PAIRS;
    }

    LossResult compute(ValidatedCall call) {
        Layout l = new Layout(call);
        if (!l.hostOnly) {
            return runWhole(l, dev.syncRecord());
        }
        long need = l.wholeBytes();
        long budget = dev.budget();
        long chunk;
        if (need <= budget) {
            try {
                return runWhole(l, dev.syncRecord());
            } catch (CudaLossException e) {
                if (!e.isOutOfMemory()) {
                    throw e;
                }
                chunk = l.roundDown(l.units / 2);
                outOfMemoryRetries++;
                LOG.info("CUDA backend: {} of {} {} ran out of device memory ({} bytes); retrying in chunks of {}",
                        l.termKey, l.units, l.unitName(), need, chunk);
            }
        } else {
            chunk = l.chunkUnits(budget);
            LOG.info("CUDA backend: {} of {} {} needs {} bytes of device memory, {} usable: running in chunks of {}",
                    l.termKey, l.units, l.unitName(), need, budget, chunk);
        }
        while (true) {
            try {
                return runChunked(l, chunk);
            } catch (CudaLossException e) {
                if (!e.isOutOfMemory()) {
                    throw e;
                }
                dev.pool.trim();
                if (chunk <= l.granularity()) {
                    throw new CudaLossException("CUDA_ERROR_OUT_OF_MEMORY", l.symbol, "device memory exhausted: even a chunk"
                            + " of " + chunk + " " + l.unitName() + " (" + l.chunkDeviceBytes(chunk) + " bytes per lane) does"
                            + " not fit; free device memory or evaluate in smaller calls", e);
                }
                long smaller = l.roundDown(chunk / 2);
                outOfMemoryRetries++;
                LOG.info("CUDA backend: chunks of {} {} ran out of device memory; retrying with {}", chunk, l.unitName(),
                        smaller);
                chunk = smaller;
            }
        }
    }

    PendingLoss computeAsync(ValidatedCall call) {
        Layout l = new Layout(call);
        boolean hostOutputs = call.losses() != null;
        for (int i = 0; i < call.slotCount(); i++) {
            hostOutputs |= call.gradient(i) != null;
        }
        if (hostOutputs || (l.hostOnly && l.wholeBytes() > dev.budget())) {
            LossResult r = compute(call);
            long record = dev.pool.acquire(ResultRecord.BYTES);
            double[] words = new double[ResultRecord.WORDS];
            words[ResultRecord.BAD_MAIN] = Double.longBitsToDouble(-1L);
            words[ResultRecord.BAD_PREPASS] = Double.longBitsToDouble(-1L);
            System.arraycopy(r.partial().components(), 0, words, ResultRecord.LOSS_HI, 4);
            words[ResultRecord.VALUE] = r.value();
            try {
                cuMemcpyHtoD(JCudaInterop.deviceptr(record), Pointer.to(words), ResultRecord.BYTES);
            } catch (CudaException e) {
                dev.pool.release(record, ResultRecord.BYTES);
                throw CudaBackend.wrap(e, "cuMemcpyHtoD", "result record");
            }
            CUevent done = dev.newEvent();
            cuEventRecord(done, dev.enter(0));
            return new CudaPendingLoss(dev, this, call, record, done, r);
        }
        long record = dev.pool.acquire(ResultRecord.BYTES);
        try {
            CUstream s = queueWhole(l, record).stream;
            CUevent done = dev.newEvent();
            cuEventRecord(done, s);
            return new CudaPendingLoss(dev, this, call, record, done, null);
        } catch (RuntimeException e) {
            dev.pool.release(record, ResultRecord.BYTES);
            throw e;
        }
    }

    /** The result of a queued whole call once its record is on the host (no host outputs to copy). */
    LossResult resultOf(ValidatedCall call, double[] record) {
        long v = ResultRecord.firstViolation(record);
        if (v != -1L) {
            throw Domain.error(call, v, 0, deviceReader());
        }
        return new LossResult(call.loss(), ResultRecord.partial(call, record, call.rows()), call.losses(),
                call.gradientMap(), "cuda");
    }

    long chunkedCalls() {
        return chunkedCalls;
    }

    long outOfMemoryRetries() {
        return outOfMemoryRetries;
    }

    long lastChunkUnits() {
        return lastChunkUnits;
    }

    int lastChunks() {
        return lastChunks;
    }

    // ---- the whole call as one piece -------------------------------------------------------------------

    private LossResult runWhole(Layout l, long record) {
        Piece p = queueWhole(l, record);
        CudaDevice.synchronize(p.stream, l.symbol);
        double[] rec = CudaDevice.readRecord(record, l.symbol);
        long v = ResultRecord.firstViolation(rec);
        if (v != -1L) {
            throw Domain.error(l.call, v, 0, deviceReader());
        }
        ValidatedCall call = l.call;
        for (int i = 0; i < call.slotCount(); i++) {
            if (call.gradient(i) != null) {
                downloadInto(call.gradient(i), p.grad[i], l.elements(i, l.units) * Float.BYTES, l.symbol);
            }
        }
        if (call.losses() != null) {
            downloadInto(call.losses(), p.losses, l.units * Float.BYTES, l.symbol);
        }
        return new LossResult(call.loss(), ResultRecord.partial(call, rec, l.units), call.losses(), call.gradientMap(),
                "cuda");
    }

    /** Uploads the host operands and queues the whole call on its stream. */
    private Piece queueWhole(Layout l, long record) {
        CUstream s = dev.enter(l.call.stream());
        CUdeviceptr[] constants = constants(l, s);
        dev.arena.reset(l.wholeBytes());
        Piece p = l.carve(l.units, false);
        p.posWeight = constants[0];
        p.classWeight = constants[1];
        p.record = record;
        p.stream = s;
        ValidatedCall call = l.call;
        for (int i = 0; i < call.slotCount(); i++) {
            Tensor t = call.slot(i);
            if (!t.isOnDevice()) {
                CudaDevice.uploadAsync(p.in[i], hostPointer(buffer(t)), l.units * l.unitBytes[i], s,
                        call.form().slots().get(i).name());
            }
        }
        Tensor w = call.weights();
        if (w != null && !w.isOnDevice()) {
            CudaDevice.uploadAsync(p.weights, hostPointer(w.floats()), l.units * Float.BYTES, s, "weights");
        }
        enqueue(l, p, s, true, 0);
        dev.leave(s);
        return p;
    }

    /**
     * posWeight and classWeight: uploaded once per engine and value, then read in place by every call.
     * Taken before the arena is carved (a pool allocation that runs out of memory may free the arena).
     */
    private CUdeviceptr[] constants(Layout l, CUstream s) {
        return new CUdeviceptr[]{l.posWeight != null ? dev.constant(l.posWeight, s) : null,
                l.classWeight != null ? dev.constant(l.classWeight, s) : null};
    }

    // ---- chunks --------------------------------------------------------------------------------------

    /** One lane of the chunked path: a stream, its device regions and its page-locked staging. */
    private static final class Lane {
        CUstream stream;
        Piece piece;
        PinnedBuffer staging;
        long[] inAt;
        long weightsAt;
        long[] gradAt;
        long lossesAt;
        long recordAt;
        long offset = -1;
        long units;
    }

    private LossResult runChunked(Layout l, long chunkUnits) {
        ValidatedCall call = l.call;
        CUdeviceptr[] constants = constants(l, dev.lane(0));
        dev.synchronizeAll();
        dev.arena.reset(2 * l.chunkDeviceBytes(chunkUnits));
        Lane[] lanes = new Lane[2];
        for (int k = 0; k < 2; k++) {
            Lane lane = new Lane();
            lane.stream = dev.lane(k);
            lane.piece = l.carve(chunkUnits, true);
            lane.piece.posWeight = constants[0];
            lane.piece.classWeight = constants[1];
            lane.piece.record = JCudaInterop.address(dev.arena.take(ResultRecord.BYTES));
            lane.inAt = new long[call.slotCount()];
            lane.gradAt = new long[call.slotCount()];
            long at = 0;
            for (int i = 0; i < call.slotCount(); i++) {
                lane.inAt[i] = at;
                at += align8(chunkUnits * l.unitBytes[i]);
            }
            lane.weightsAt = at;
            at += call.weights() != null ? align8(chunkUnits * Float.BYTES) : 0;
            for (int i = 0; i < call.slotCount(); i++) {
                lane.gradAt[i] = at;
                at += call.gradient(i) != null ? align8(l.elements(i, chunkUnits) * Float.BYTES) : 0;
            }
            lane.lossesAt = at;
            at += call.losses() != null ? align8(chunkUnits * Float.BYTES) : 0;
            lane.recordAt = at;
            at += ResultRecord.BYTES;
            lane.staging = dev.staging(k, at);
            lanes[k] = lane;
        }

        Double known = l.knownDenominator();
        double rawFactor = call.loss().gradScale();
        if (l.divides() && known != null) {
            rawFactor = known == 0 ? 0 : rawFactor / known;
        }
        Chunks state = new Chunks(Partial.empty(call.loss()));
        int chunks = 0;
        try {
            for (long offset = 0; offset < l.units; offset += chunkUnits) {
                Lane lane = lanes[chunks % 2];
                if (lane.offset >= 0 && finish(l, lane, state)) {
                    break;
                }
                long n = Math.min(chunkUnits, l.units - offset);
                stage(l, lane, offset, n, rawFactor);
                chunks++;
            }
            for (int k = 0; k < 2; k++) {
                // in chunk order: the lane holding the earlier chunk first
                Lane first = lanes[0].offset >= 0 && (lanes[1].offset < 0 || lanes[0].offset < lanes[1].offset)
                        ? lanes[0] : lanes[1];
                if (first.offset >= 0) {
                    finish(l, first, state);
                }
            }
        } finally {
            // the lanes' streams are not the calls' tail: nothing may outlive this call on the arena
            try {
                dev.synchronizeAll();
            } catch (RuntimeException e) {
                LOG.warn("CUDA backend: synchronising after a chunked call failed: {}", e.getMessage());
            }
        }
        chunkedCalls++;
        lastChunkUnits = chunkUnits;
        lastChunks = chunks;
        if (state.prepassError != null) {
            throw state.prepassError;
        }
        if (state.mainError != null) {
            throw state.mainError;
        }
        Partial total = state.total;
        double k = 1;
        if (l.divides() && l.wantsGrad && known == null) {
            k = total.sumWeight() == 0 ? 0 : 1 / total.sumWeight();
        }
        if (l.sqrtOuter && l.wantsGrad) {
            k *= outerFactor(total);
        }
        if (k != 1) {
            for (int i = 0; i < call.slotCount(); i++) {
                FloatBuffer g = call.gradient(i);
                if (g != null) {
                    for (int j = 0; j < g.limit(); j++) {
                        g.put(j, (float) (g.get(j) * k));
                    }
                }
            }
        }
        LOG.debug("CUDA backend: {} ran in {} chunks of {} {}", l.termKey, chunks, chunkUnits, l.unitName());
        return new LossResult(call.loss(), total, call.losses(), call.gradientMap(), "cuda");
    }

    private static final class Chunks {
        Partial total;
        LossInputException prepassError;
        LossInputException mainError;

        Chunks(Partial empty) {
            this.total = empty;
        }
    }

    /** Copies a chunk's inputs into the lane's staging and queues its copies and kernels on the lane's stream. */
    private void stage(Layout l, Lane lane, long offset, long n, double rawFactor) {
        ValidatedCall call = l.call;
        Piece p = lane.piece;
        p.units = n;
        for (int i = 0; i < call.slotCount(); i++) {
            Tensor t = call.slot(i);
            long from = l.elements(i, offset);
            long count = l.elements(i, n);
            ByteBuffer view = lane.staging.view(lane.inAt[i], n * l.unitBytes[i]);
            switch (t.dtype()) {
                case FLOAT32 -> view.asFloatBuffer().put(0, t.floats(), (int) from, (int) count);
                case INT32 -> view.asIntBuffer().put(0, t.ints(), (int) from, (int) count);
                case INT64 -> view.asLongBuffer().put(0, t.longs(), (int) from, (int) count);
            }
            CudaDevice.uploadAsync(p.in[i], lane.staging.at(lane.inAt[i]), n * l.unitBytes[i], lane.stream,
                    call.form().slots().get(i).name());
        }
        if (call.weights() != null) {
            lane.staging.view(lane.weightsAt, n * Float.BYTES).asFloatBuffer().put(0, call.weights().floats(), (int) offset,
                    (int) n);
            CudaDevice.uploadAsync(p.weights, lane.staging.at(lane.weightsAt), n * Float.BYTES, lane.stream, "weights");
        }
        enqueue(l, p, lane.stream, false, rawFactor);
        try {
            for (int i = 0; i < call.slotCount(); i++) {
                if (call.gradient(i) != null) {
                    cuMemcpyDtoHAsync(lane.staging.at(lane.gradAt[i]), p.grad[i], l.elements(i, n) * Float.BYTES, lane.stream);
                }
            }
            if (call.losses() != null) {
                cuMemcpyDtoHAsync(lane.staging.at(lane.lossesAt), p.losses, n * Float.BYTES, lane.stream);
            }
            cuMemcpyDtoHAsync(lane.staging.at(lane.recordAt), JCudaInterop.deviceptr(p.record), ResultRecord.BYTES,
                    lane.stream);
        } catch (CudaException e) {
            throw CudaBackend.wrap(e, "cuMemcpyDtoHAsync", l.symbol + " chunk at " + offset);
        }
        lane.offset = offset;
        lane.units = n;
    }

    /**
     * Waits for a lane's chunk and takes its results: the partial, the outputs copied from the staging, or
     * its first data error (global index). Returns whether the remaining chunks can be skipped (an error
     * that no later chunk can precede in the CPU's check order).
     */
    private boolean finish(Layout l, Lane lane, Chunks state) {
        ValidatedCall call = l.call;
        CudaDevice.synchronize(lane.stream, l.symbol);
        long offset = lane.offset;
        long n = lane.units;
        lane.offset = -1;
        double[] rec = new double[ResultRecord.WORDS];
        lane.staging.view(lane.recordAt, ResultRecord.BYTES).asDoubleBuffer().get(rec);
        long pre = Double.doubleToRawLongBits(rec[ResultRecord.BAD_PREPASS]);
        long main = Double.doubleToRawLongBits(rec[ResultRecord.BAD_MAIN]);
        if (pre != -1L && state.prepassError == null) {
            state.prepassError = Domain.error(call, pre, offset, Domain.HOST);
        }
        if (main != -1L && state.mainError == null) {
            state.mainError = Domain.error(call, main, offset, Domain.HOST);
        }
        if (state.prepassError != null || state.mainError != null) {
            // a later chunk can only matter when the pre-pass (labels first) runs and has found nothing yet
            return state.prepassError != null || !l.chunkPrepass();
        }
        for (int i = 0; i < call.slotCount(); i++) {
            FloatBuffer g = call.gradient(i);
            if (g != null) {
                long count = l.elements(i, n);
                g.put((int) l.elements(i, offset), lane.staging.view(lane.gradAt[i], count * Float.BYTES).asFloatBuffer(),
                        0, (int) count);
            }
        }
        if (call.losses() != null) {
            call.losses().put((int) offset, lane.staging.view(lane.lossesAt, n * Float.BYTES).asFloatBuffer(), 0, (int) n);
        }
        state.total = state.total.merge(ResultRecord.partial(call, rec, n));
        return false;
    }

    // ---- one piece's kernels -------------------------------------------------------------------------

    /**
     * Queues a piece: domain words reset, the MEAN pre-pass (folded on the device) where the whole call's
     * gradient factor depends on the data, the family kernel, the result fold and rmse's outer scaling.
     * A chunk ({@code whole == false}) uses {@code rawFactor} and leaves the rescaling to the host; it runs
     * the rows pre-pass only for its label checks, which come first in the CPU's order.
     */
    private void enqueue(Layout l, Piece p, CUstream s, boolean whole, double rawFactor) {
        ValidatedCall call = l.call;
        CUdeviceptr record = JCudaInterop.deviceptr(p.record);
        CudaDevice.resetViolations(record, s);
        double gradScale = call.loss().gradScale();
        double gradFactor = whole ? gradScale : rawFactor;
        CUdeviceptr factorAt = null;
        int grid = l.grid(p.units);
        int denGrid = l.denGrid(p.units);
        if (whole && l.divides() && l.wantsGrad) {
            Double known = l.knownDenominator();
            if (known != null) {
                gradFactor = known == 0 ? 0 : gradScale / known;
            } else {
                int count = prepass(l, p, s, record);
                launch(KernelNames.FINISH_MODULE, KernelNames.FINISH_DENOMINATOR, 1, FINISH_BLOCK, s, "pre-pass fold",
                        ptr(p.partials), i32(count), f64(gradScale), ptr(record));
                factorAt = record.withByteOffset(ResultRecord.GRAD_FACTOR_OFFSET);
            }
        } else if (!whole && l.chunkPrepass()) {
            prepass(l, p, s, record);
        }
        int flags = l.flags();
        List<Pointer> args = new ArrayList<>();
        if (l.ew) {
            boolean auxSlot = call.slotCount() > 2;
            args.addAll(List.of(ptr(p.in[0]), ptr(p.in[1]), ptr(auxSlot ? p.in[2] : p.posWeight),
                    i64(auxSlot ? p.units : l.posWeight != null ? l.posWeight.length : 0), ptr(p.weights), ptr(p.grad[0]),
                    ptr(auxSlot ? p.grad[2] : null), ptr(p.losses), ptr(p.partials), ptr(record), i64(p.units),
                    f64(gradFactor), ptr(factorAt), i32(flags)));
        } else {
            CUdeviceptr[] v = new CUdeviceptr[3];
            CUdeviceptr[] g = new CUdeviceptr[3];
            for (int k = 0; k < l.valueSlots; k++) {
                v[k] = p.in[l.valueSlot[k]];
                g[k] = p.grad[l.valueSlot[k]];
            }
            CUdeviceptr labels = l.labelSlot >= 0 ? p.in[l.labelSlot] : null;
            boolean int64 = l.labelSlot >= 0 && call.slot(l.labelSlot).dtype() == Tensor.DType.INT64;
            args.addAll(List.of(ptr(v[0]), ptr(v[1]), ptr(v[2]), ptr(l.rowTargetSlot >= 0 ? p.in[l.rowTargetSlot] : null),
                    ptr(int64 ? null : labels), ptr(int64 ? labels : null), ptr(p.weights), ptr(p.classWeight), ptr(g[0]),
                    ptr(g[1]), ptr(g[2]), ptr(p.losses), ptr(p.partials), ptr(record), i64(p.units), i64(l.len),
                    i32(call.classes()), i32(l.ignoreIndex), i32(flags), f64(gradFactor), ptr(factorAt),
                    f64(l.denConst)));
        }
        for (double v : KernelNames.scalarParams(call.loss())) {
            args.add(f64(v));
        }
        CudaDevice.launch(l.symbol, l.kernel, grid, l.ew ? EW_BLOCK : ROW_BLOCK, s,
                p.units + " " + l.unitName() + " of " + l.len, args.toArray(new Pointer[0]));
        launch(KernelNames.FINISH_MODULE, KernelNames.FINISH_RESULT, 1, FINISH_BLOCK, s, "result fold",
                ptr(p.partials), i32(grid), i32(ResultRecord.mode(call)), ptr(record));
        if (whole && l.sqrtOuter) {
            for (int i = 0; i < call.slotCount(); i++) {
                if (p.grad[i] != null) {
                    long n = l.elements(i, p.units);
                    int scaleGrid = (int) Math.max(1, Math.min(MAX_GRID, (n + SCALE_BLOCK - 1) / SCALE_BLOCK));
                    launch(KernelNames.FINISH_MODULE, KernelNames.FINISH_SCALE, scaleGrid, SCALE_BLOCK, s, n + " gradients",
                            ptr(p.grad[i]), i64(n), ptr(record));
                }
            }
        }
    }

    /** The MEAN pre-pass of a piece into its partials; returns the number of partials. */
    private int prepass(Layout l, Piece p, CUstream s, CUdeviceptr record) {
        ValidatedCall call = l.call;
        if (l.ew) {
            int grid = l.grid(p.units);
            launch(KernelNames.module(Family.ELEMENTWISE), KernelNames.EW_WEIGHT_SUM, grid, EW_BLOCK, s,
                    p.units + " weights", ptr(p.weights), ptr(p.partials), i64(p.units));
            return grid;
        }
        int denGrid = l.denGrid(p.units);
        CUdeviceptr labels = l.labelSlot >= 0 ? p.in[l.labelSlot] : null;
        boolean int64 = l.labelSlot >= 0 && call.slot(l.labelSlot).dtype() == Tensor.DType.INT64;
        launch(KernelNames.module(Family.ROWS), KernelNames.ROWS_DENOMINATOR, denGrid, DEN_BLOCK, s, p.units + " rows",
                ptr(int64 ? null : labels), ptr(int64 ? labels : null), ptr(p.weights), ptr(p.classWeight), ptr(p.partials),
                ptr(record.withByteOffset(ResultRecord.BAD_PREPASS_OFFSET)), i64(p.units), i32(call.classes()),
                i32(l.ignoreIndex), i32(l.flags()), f64(l.denConst));
        return denGrid;
    }

    private void launch(String module, String symbol, int grid, int block, CUstream s, String detail, Pointer... args) {
        CudaDevice.launch(symbol, dev.function(module, symbol), grid, block, s, detail, args);
    }

    /** rmse's chain factor 1/(2√mean) from the whole partial (0 when the mean or Σ s·d is 0). */
    static double outerFactor(Partial whole) {
        double root = whole.value();
        return root > 0 ? 0.5 / root : root == 0 || whole.sumWeight() == 0 ? 0 : Double.NaN;
    }

    // ---- the call's layout -----------------------------------------------------------------------------

    /** Device operands of one piece. */
    private static final class Piece {
        CUstream stream;
        long units;
        CUdeviceptr[] in;
        CUdeviceptr weights;
        CUdeviceptr[] grad;
        CUdeviceptr losses;
        CUdeviceptr posWeight;
        CUdeviceptr classWeight;
        CUdeviceptr partials;
        long record;
    }

    /** What a call needs on the device, per unit (element or row) and in total. */
    private final class Layout {
        final ValidatedCall call;
        final boolean ew;
        final String termKey;
        final String symbol;
        final CUfunction kernel;
        final long units;
        final long len;
        /** bytes per unit of each slot's data */
        final long[] unitBytes;
        final float[] posWeight;
        final float[] classWeight;
        final boolean hostOnly;
        final boolean wantsGrad;
        final boolean sqrtOuter;
        final boolean hasIgnore;
        final int ignoreIndex;
        final int denKind;
        final double denConst;
        final int valueSlots;
        final int[] valueSlot = new int[3];
        final int labelSlot;
        final int rowTargetSlot;

        Layout(ValidatedCall call) {
            this.call = call;
            Form form = call.form();
            LossDefinition def = call.loss().definition();
            this.ew = form.family() == Family.ELEMENTWISE;
            this.termKey = form.termKey(call.loss().id());
            this.symbol = KernelNames.symbol(call.loss().id(), form);
            try {
                this.kernel = dev.function(KernelNames.module(form.family()), symbol);
            } catch (CudaLossException e) {
                if (e.result().contains("NOT_FOUND")) {
                    throw new UnsupportedOperationException("no CUDA kernels for " + termKey + " yet");
                }
                throw e;
            }
            this.units = call.rows();
            this.len = call.rowLength();
            int k = call.slotCount();
            this.unitBytes = new long[k];
            int values = 0;
            int labels = -1;
            int rowTarget = -1;
            for (int i = 0; i < k; i++) {
                Slot s = form.slots().get(i);
                Tensor t = call.slot(i);
                switch (s.kind()) {
                    case VALUES -> {
                        unitBytes[i] = (ew ? 1 : len) * Float.BYTES;
                        if (values < 3) {
                            valueSlot[values] = i;
                        }
                        values++;
                    }
                    case LABELS -> {
                        unitBytes[i] = t.dtype() == Tensor.DType.INT64 ? 8 : 4;
                        labels = i;
                    }
                    case ROW_VALUES -> {
                        unitBytes[i] = Float.BYTES;
                        rowTarget = i;
                    }
                    case MATRIX_ROWS -> throw new UnsupportedOperationException("no CUDA kernels for " + termKey + " yet");
                }
            }
            this.valueSlots = values;
            this.labelSlot = labels;
            this.rowTargetSlot = rowTarget;
            this.posWeight = def.has(Param.POS_WEIGHT) ? call.loss().get(Param.POS_WEIGHT) : null;
            this.classWeight = def.has(Param.CLASS_WEIGHT) ? call.loss().get(Param.CLASS_WEIGHT) : null;
            this.hostOnly = !call.hasDeviceData();
            this.wantsGrad = call.wantsGradient();
            this.sqrtOuter = def.outer() == LossDefinition.Outer.SQRT;
            this.hasIgnore = !ew && def.has(Param.IGNORE_INDEX) && form.hasLabels();
            this.ignoreIndex = hasIgnore ? call.loss().get(Param.IGNORE_INDEX) : 0;
            this.denKind = switch (form.denominator()) {
                case ONE -> 0;
                case LABEL_CLASS_WEIGHT -> 1;
                case ELEMENTS -> 2;
            };
            this.denConst = call.loss().reduction() == Reduction.MEAN ? len : 1;
        }

        String unitName() {
            return ew ? "elements" : "rows";
        }

        int flags() {
            if (ew) {
                return (call.loss().checkFinite() ? 1 : 0) | (call.slotCount() > 2 ? 2 : 0);
            }
            return (call.loss().checkFinite() ? 1 : 0) | (hasIgnore ? 2 : 0) | (denKind << 2) | (valueSlots << 4);
        }

        boolean divides() {
            return ResultRecord.divides(call.loss().reduction());
        }

        /** Σ s·d when the host knows it without reading the data (no weights, no labels), else null. */
        Double knownDenominator() {
            if (call.weights() != null) {
                return null;
            }
            if (ew) {
                return (double) units;
            }
            if (labelSlot >= 0) {
                return null;
            }
            return denKind == 0 ? (double) units : denKind == 2 ? units * denConst : null;
        }

        /** Whether chunks run the rows pre-pass for its label checks (the CPU checks labels before all else). */
        boolean chunkPrepass() {
            return !ew && divides() && wantsGrad && knownDenominator() == null;
        }

        int grid(long n) {
            long per = ew ? EW_BLOCK * 4L : ROWS_PER_BLOCK;
            return (int) Math.max(1, Math.min(MAX_GRID, (n + per - 1) / per));
        }

        int denGrid(long n) {
            return ew ? grid(n) : (int) Math.max(1, Math.min(MAX_GRID, (n + DEN_BLOCK - 1) / DEN_BLOCK));
        }

        /** Elements of slot i's data (and gradient) in {@code n} units. */
        long elements(int i, long n) {
            return n * unitBytes[i] / elementBytes(i);
        }

        long elementBytes(int i) {
            return call.slot(i).dtype() == Tensor.DType.INT64 ? 8 : 4;
        }

        /** The device bytes of a piece of {@code n} units; {@code staged}: every operand in the arena. */
        long pieceBytes(long n, boolean staged) {
            long b = 0;
            for (int i = 0; i < call.slotCount(); i++) {
                if (staged || !call.slot(i).isOnDevice()) {
                    b += DeviceArena.align(n * unitBytes[i]);
                }
                if (call.gradient(i) != null) {
                    b += DeviceArena.align(elements(i, n) * Float.BYTES);
                }
            }
            if (call.weights() != null && (staged || !call.weights().isOnDevice())) {
                b += DeviceArena.align(n * Float.BYTES);
            }
            if (call.losses() != null) {
                b += DeviceArena.align(n * Float.BYTES);
            }
            return b + DeviceArena.align(16L * Math.max(grid(n), denGrid(n)));
        }

        long wholeBytes() {
            return pieceBytes(units, false);
        }

        long chunkDeviceBytes(long n) {
            return pieceBytes(n, true) + DeviceArena.align(ResultRecord.BYTES);
        }

        /** The largest chunk two lanes of which fit the budget and the staging limit. */
        long chunkUnits(long budget) {
            long perUnit = 0;
            int regions = 2;
            for (int i = 0; i < call.slotCount(); i++) {
                perUnit += unitBytes[i] + (call.gradient(i) != null ? elements(i, 1) * Float.BYTES : 0);
                regions += call.gradient(i) != null ? 2 : 1;
            }
            perUnit += (call.weights() != null ? Float.BYTES : 0) + (call.losses() != null ? Float.BYTES : 0);
            regions += 2;
            long fixed = regions * DeviceArena.ALIGN + 16L * MAX_GRID + DeviceArena.align(ResultRecord.BYTES);
            long byDevice = (budget / 2 - fixed) / Math.max(1, perUnit);
            long byStaging = CHUNK_STAGING_BYTES / Math.max(1, perUnit);
            return roundDown(Math.min(Math.min(byDevice, byStaging), units));
        }

        /** Chunks start at multiples of this (bce-logits' posWeight broadcasts over the element index). */
        long granularity() {
            return ew && posWeight != null && call.slotCount() == 2 ? posWeight.length : 1;
        }

        long roundDown(long n) {
            long g = granularity();
            return Math.max(g, n / g * g);
        }

        /** Carves a piece of {@code n} units from the arena; device tensors are used in place unless staged. */
        Piece carve(long n, boolean staged) {
            Piece p = new Piece();
            p.units = n;
            int k = call.slotCount();
            p.in = new CUdeviceptr[k];
            p.grad = new CUdeviceptr[k];
            for (int i = 0; i < k; i++) {
                Tensor t = call.slot(i);
                p.in[i] = !staged && t.isOnDevice() ? JCudaInterop.deviceptr(t.devicePointer())
                        : dev.arena.take(n * unitBytes[i]);
                Tensor dg = call.deviceGradient(i);
                p.grad[i] = dg != null && !staged ? JCudaInterop.deviceptr(dg.devicePointer())
                        : call.gradient(i) != null ? dev.arena.take(elements(i, n) * Float.BYTES) : null;
            }
            Tensor w = call.weights();
            p.weights = w == null ? null : !staged && w.isOnDevice() ? JCudaInterop.deviceptr(w.devicePointer())
                    : dev.arena.take(n * Float.BYTES);
            p.losses = call.deviceLosses() != null && !staged ? JCudaInterop.deviceptr(call.deviceLosses().devicePointer())
                    : call.losses() != null ? dev.arena.take(n * Float.BYTES) : null;
            p.partials = dev.arena.take(16L * Math.max(grid(n), denGrid(n)));
            return p;
        }
    }

    // ---- host data -----------------------------------------------------------------------------------

    /** Reads an offending element for an error message: host data, or 4/8 bytes copied from the device. */
    Domain.Reader deviceReader() {
        return new Domain.Reader() {
            @Override
            public double floatAt(Tensor t, long index) {
                if (!t.isOnDevice()) {
                    return t.floats().get((int) index);
                }
                float[] v = new float[1];
                CudaDevice.download(Pointer.to(v), JCudaInterop.deviceptr(t.devicePointer() + 4 * index), 4, "error value");
                return v[0];
            }

            @Override
            public long labelAt(Tensor t, long index) {
                if (!t.isOnDevice()) {
                    return t.label((int) index);
                }
                if (t.dtype() == Tensor.DType.INT64) {
                    long[] v = new long[1];
                    CudaDevice.download(Pointer.to(v), JCudaInterop.deviceptr(t.devicePointer() + 8 * index), 8, "error label");
                    return v[0];
                }
                int[] v = new int[1];
                CudaDevice.download(Pointer.to(v), JCudaInterop.deviceptr(t.devicePointer() + 4 * index), 4, "error label");
                return v[0];
            }
        };
    }

    private static Buffer buffer(Tensor t) {
        return switch (t.dtype()) {
            case FLOAT32 -> t.floats();
            case INT32 -> t.ints();
            case INT64 -> t.longs();
        };
    }

    private static long align8(long bytes) {
        return (bytes + 7) & ~7L;
    }

    private static void downloadInto(FloatBuffer dest, CUdeviceptr d, long bytes, String what) {
        if (dest.isDirect() || dest.hasArray()) {
            CudaDevice.download(hostPointer(dest), d, bytes, what);
        } else {
            float[] tmp = new float[(int) (bytes / Float.BYTES)];
            CudaDevice.download(Pointer.to(tmp), d, bytes, what);
            dest.duplicate().clear().put(tmp);
        }
    }

    /** Host pointer at absolute index 0 of a buffer (the backends' indexing), copying read-only heap data. */
    static Pointer hostPointer(Buffer b) {
        if (b.isDirect()) {
            Buffer view = b.duplicate().clear();
            if (view instanceof FloatBuffer f) {
                return Pointer.to(f.slice());
            } else if (view instanceof IntBuffer i) {
                return Pointer.to(i.slice());
            } else if (view instanceof LongBuffer l) {
                return Pointer.to(l.slice());
            }
        }
        if (b instanceof FloatBuffer f) {
            if (f.hasArray()) {
                return Pointer.to(f.array()).withByteOffset((long) f.arrayOffset() * Float.BYTES);
            }
            float[] copy = new float[f.limit()];
            f.duplicate().clear().get(copy);
            return Pointer.to(copy);
        }
        if (b instanceof IntBuffer i) {
            if (i.hasArray()) {
                return Pointer.to(i.array()).withByteOffset((long) i.arrayOffset() * Integer.BYTES);
            }
            int[] copy = new int[i.limit()];
            i.duplicate().clear().get(copy);
            return Pointer.to(copy);
        }
        LongBuffer l = (LongBuffer) b;
        if (l.hasArray()) {
            return Pointer.to(l.array()).withByteOffset((long) l.arrayOffset() * Long.BYTES);
        }
        long[] copy = new long[l.limit()];
        l.duplicate().clear().get(copy);
        return Pointer.to(copy);
    }

    static Pointer ptr(CUdeviceptr p) {
        return Pointer.to(p == null ? new CUdeviceptr() : p);
    }

    static Pointer i64(long v) {
        return Pointer.to(new long[]{v});
    }

    static Pointer i32(int v) {
        return Pointer.to(new int[]{v});
    }

    static Pointer f64(double v) {
        return Pointer.to(new double[]{v});
    }
}
