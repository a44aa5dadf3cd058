package losskit.cuda;

import static jcuda.driver.JCudaDriver.cuEventRecord;
import static jcuda.driver.JCudaDriver.cuMemcpyDtoHAsync;
import static jcuda.driver.JCudaDriver.cuMemcpyHtoD;

import java.nio.Buffer;
import java.nio.ByteBuffer;
import java.nio.FloatBuffer;
import java.nio.IntBuffer;
import java.nio.LongBuffer;
import java.nio.ShortBuffer;
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
import losskit.api.SummationOrder;
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
 *     two page-locked staging buffers, so that one chunk's copies overlap the other's kernels; the chunks'
 *     block partials are gathered and folded by the device's tree ({@link Partial.DoubleDouble#fold}), so the
 *     result has the whole call's bits, and the gradient factor comes from the whole denominator, known
 *     before the first chunk runs. Out of memory: smaller chunks, then an exception (never a wrong number).</li>
 * </ul>
 * Block partials are folded by a fixed pairwise tree in double-double (a function of the partial count only,
 * {@link Partial.DoubleDouble#fold}), so results are bitwise reproducible run to run.
 */
final class FamilyKernels {
    private static final Logger LOG = LoggerFactory.getLogger(FamilyKernels.class);
    static final int EW_BLOCK = 256;
    static final int ROW_BLOCK = 256;
    static final int DEN_BLOCK = 256;
    static final int MAX_GRID = 1024;
    static final int FINISH_BLOCK = 256;
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
        if (call.loss().definition().outer() != LossDefinition.Outer.IDENTITY && call.hasHalf()) {
            // rmse scales its gradient once the mean is known (losskit_finish_scale, float32): a 16-bit host
            // destination gets the scaled float32 gradient rounded once (ValidatedCall refuses 16-bit device ones)
            ValidatedCall wide = call.widened();
            LossResult r = compute(wide);
            call.narrowOutputsFrom(wide);
            return LossResult.of(call, r.partial(), "cuda");
        }
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
        boolean hostOutputs = call.lossesTensor() != null;
        for (int i = 0; i < call.slotCount(); i++) {
            hostOutputs |= call.gradientTensor(i) != null;
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
        return LossResult.of(call, ResultRecord.partial(call, record, call.rows()), "cuda");
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
            Tensor g = call.gradientTensor(i);
            if (g != null) {
                downloadInto(g, p.grad[i], l.elements(i, l.units) * l.gradBytes(i), l.symbol);
            }
        }
        if (call.lossesTensor() != null) {
            downloadInto(call.lossesTensor(), p.losses, l.units * l.lossBytes(), l.symbol);
        }
        return LossResult.of(call, ResultRecord.partial(call, rec, l.units), "cuda");
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
        long partialsAt;
        int grid;
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
                at += call.gradientTensor(i) != null ? align8(l.elements(i, chunkUnits) * l.gradBytes(i)) : 0;
            }
            lane.lossesAt = at;
            at += call.lossesTensor() != null ? align8(chunkUnits * l.lossBytes()) : 0;
            lane.recordAt = at;
            at += ResultRecord.BYTES;
            lane.partialsAt = at;
            at += 16L * l.grid(chunkUnits);
            lane.staging = dev.staging(k, at);
            lanes[k] = lane;
        }

        Double known = l.knownDenominator();
        if (l.divides() && l.wantsGrad && known == null) {
            // the gradient's factor before any gradient is written, so every chunk rounds it once, as a whole call does
            known = chunkedDenominator(l, lanes[0], chunkUnits);
        }
        double rawFactor = call.loss().gradScale();
        if (l.divides() && l.wantsGrad) {
            rawFactor = known == 0 ? 0 : rawFactor / known;
        }
        Chunks state = new Chunks(l.grid(l.units));
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
        double[] sl = Partial.DoubleDouble.fold(state.loss, 0, state.loss.length);
        double[] sw = Partial.DoubleDouble.fold(state.weight, 0, state.weight.length);
        Partial total = new Partial(call.loss().id(), call.loss().reduction(), call.loss().definition().outer(),
                sl[0], sl[1], sw[0], sw[1], l.units);
        if (l.sqrtOuter && l.wantsGrad) {
            // rmse's chain factor once the mean is known, as losskit_finish_scale applies it to a whole call
            double k = outerFactor(total);
            for (int i = 0; i < call.slotCount(); i++) {
                FloatBuffer g = call.gradient(i);
                if (g != null) {
                    for (int j = 0; j < g.limit(); j++) {
                        g.put(j, (float) ((double) g.get(j) * k));
                    }
                }
            }
        }
        LOG.debug("CUDA backend: {} ran in {} chunks of {} {}", l.termKey, chunks, chunkUnits, l.unitName());
        return LossResult.of(call, total, "cuda");
    }

    /**
     * The chunks' block partials, gathered at their blocks' places in the whole call (chunks are whole blocks of
     * the summation order, so together they are exactly the whole call's partials) and then folded by the tree
     * finish.cu folds a whole call's with ({@link Partial.DoubleDouble#fold}): a chunked call has the whole call's
     * bits.
     */
    private static final class Chunks {
        final double[] loss;
        final double[] weight;
        LossInputException prepassError;
        LossInputException mainError;

        Chunks(int wholeGrid) {
            loss = new double[wholeGrid];
            weight = new double[wholeGrid];
        }

        /** A chunk's [2·grid] partials (Σ s·l per block, then Σ s·d), its first block being {@code firstBlock}. */
        void add(double[] partials, int grid, int firstBlock) {
            System.arraycopy(partials, 0, loss, firstBlock, grid);
            System.arraycopy(partials, grid, weight, firstBlock, grid);
        }
    }

    /**
     * Σ s·d of a chunked call by the MEAN pre-pass over every chunk (weights and labels staged through one
     * lane), gathered and folded by the tree finish.cu folds a whole call's with: the denominator a whole call's
     * gradient factor is built from, bit for bit. Throws the first label error in the CPU's order.
     */
    private double chunkedDenominator(Layout l, Lane lane, long chunkUnits) {
        ValidatedCall call = l.call;
        double[] leaves = new double[l.denGrid(l.units)];
        for (long offset = 0; offset < l.units; offset += chunkUnits) {
            long n = Math.min(chunkUnits, l.units - offset);
            Piece p = lane.piece;
            p.units = n;
            if (l.labelSlot >= 0) {
                stageSlot(l, lane, l.labelSlot, offset, n);
            }
            if (call.weights() != null) {
                stageWeights(lane, call, offset, n);
            }
            CUdeviceptr record = JCudaInterop.deviceptr(p.record);
            CudaDevice.resetViolations(record, lane.stream);
            int count = prepass(l, p, lane.stream, record);
            try {
                cuMemcpyDtoHAsync(lane.staging.at(lane.partialsAt), p.partials, 8L * count, lane.stream);
                cuMemcpyDtoHAsync(lane.staging.at(lane.recordAt), record, ResultRecord.BYTES, lane.stream);
            } catch (CudaException e) {
                throw CudaBackend.wrap(e, "cuMemcpyDtoHAsync", l.symbol + " pre-pass chunk at " + offset);
            }
            CudaDevice.synchronize(lane.stream, l.symbol);
            double[] rec = new double[ResultRecord.WORDS];
            lane.staging.view(lane.recordAt, ResultRecord.BYTES).asDoubleBuffer().get(rec);
            long bad = Double.doubleToRawLongBits(rec[ResultRecord.BAD_PREPASS]);
            if (bad != -1L) {
                throw Domain.error(call, bad, offset, Domain.HOST);
            }
            lane.staging.view(lane.partialsAt, 8L * count).asDoubleBuffer().get(leaves, (int) (offset / l.per), count);
        }
        double[] sum = Partial.DoubleDouble.fold(leaves, 0, leaves.length);
        return sum[0] + sum[1];
    }

    /** Copies slot i's rows [offset, offset + n) into the lane's staging and queues their upload. */
    private void stageSlot(Layout l, Lane lane, int i, long offset, long n) {
        ValidatedCall call = l.call;
        Tensor t = call.slot(i);
        long from = l.elements(i, offset);
        int count = (int) l.elements(i, n);
        ByteBuffer view = lane.staging.view(lane.inAt[i], n * l.unitBytes[i]);
        switch (t.dtype()) {
            case FLOAT32 -> view.asFloatBuffer().put(0, t.floats(), (int) from, count);
            case BFLOAT16, FLOAT16 -> view.asShortBuffer().put(0, t.shorts(), (int) from, count);
            case INT32 -> view.asIntBuffer().put(0, t.ints(), (int) from, count);
            case INT64 -> view.asLongBuffer().put(0, t.longs(), (int) from, count);
        }
        CudaDevice.uploadAsync(lane.piece.in[i], lane.staging.at(lane.inAt[i]), n * l.unitBytes[i], lane.stream,
                call.form().slots().get(i).name());
    }

    private void stageWeights(Lane lane, ValidatedCall call, long offset, long n) {
        lane.staging.view(lane.weightsAt, n * Float.BYTES).asFloatBuffer().put(0, call.weights().floats(), (int) offset,
                (int) n);
        CudaDevice.uploadAsync(lane.piece.weights, lane.staging.at(lane.weightsAt), n * Float.BYTES, lane.stream, "weights");
    }

    /** Copies a chunk's inputs into the lane's staging and queues its copies and kernels on the lane's stream. */
    private void stage(Layout l, Lane lane, long offset, long n, double rawFactor) {
        ValidatedCall call = l.call;
        Piece p = lane.piece;
        p.units = n;
        for (int i = 0; i < call.slotCount(); i++) {
            stageSlot(l, lane, i, offset, n);
        }
        if (call.weights() != null) {
            stageWeights(lane, call, offset, n);
        }
        lane.grid = enqueue(l, p, lane.stream, false, rawFactor);
        try {
            for (int i = 0; i < call.slotCount(); i++) {
                if (call.gradientTensor(i) != null) {
                    cuMemcpyDtoHAsync(lane.staging.at(lane.gradAt[i]), p.grad[i], l.elements(i, n) * l.gradBytes(i),
                            lane.stream);
                }
            }
            if (call.lossesTensor() != null) {
                cuMemcpyDtoHAsync(lane.staging.at(lane.lossesAt), p.losses, n * l.lossBytes(), lane.stream);
            }
            cuMemcpyDtoHAsync(lane.staging.at(lane.recordAt), JCudaInterop.deviceptr(p.record), ResultRecord.BYTES,
                    lane.stream);
            cuMemcpyDtoHAsync(lane.staging.at(lane.partialsAt), p.partials, 16L * lane.grid, lane.stream);
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
            // labels were checked for every chunk before the first (chunkedDenominator): no later chunk can precede it
            return true;
        }
        for (int i = 0; i < call.slotCount(); i++) {
            Tensor g = call.gradientTensor(i);
            if (g != null) {
                long count = l.elements(i, n);
                copyOut(g, (int) l.elements(i, offset), lane.staging.view(lane.gradAt[i], count * l.gradBytes(i)), (int) count);
            }
        }
        if (call.lossesTensor() != null) {
            copyOut(call.lossesTensor(), (int) offset, lane.staging.view(lane.lossesAt, n * l.lossBytes()), (int) n);
        }
        double[] parts = new double[2 * lane.grid];
        lane.staging.view(lane.partialsAt, 16L * lane.grid).asDoubleBuffer().get(parts);
        state.add(parts, lane.grid, (int) (offset / l.per));
        return false;
    }

    // ---- one piece's kernels -------------------------------------------------------------------------

    /**
     * Queues a piece: domain words reset, the MEAN pre-pass (folded on the device) where the whole call's
     * gradient factor depends on the data, the family kernel, the result fold and rmse's outer scaling.
     * A chunk ({@code whole == false}) uses {@code rawFactor}, the whole call's factor computed beforehand
     * ({@link #chunkedDenominator}), and leaves the fold of its block partials to the host. Returns the
     * kernel's grid (its number of block partials).
     */
    private int enqueue(Layout l, Piece p, CUstream s, boolean whole, double rawFactor) {
        ValidatedCall call = l.call;
        CUdeviceptr record = JCudaInterop.deviceptr(p.record);
        CudaDevice.resetViolations(record, s);
        double gradScale = call.loss().gradScale();
        double gradFactor = whole ? gradScale : rawFactor;
        CUdeviceptr factorAt = null;
        int grid = l.grid(p.units);
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
        }
        int flags = l.flags();
        List<Pointer> args = new ArrayList<>();
        if (l.ew) {
            boolean auxSlot = call.slotCount() > 2;
            args.addAll(List.of(ptr(p.in[0]), ptr(p.in[1]), ptr(auxSlot ? p.in[2] : p.posWeight),
                    i64(auxSlot ? p.units : l.posWeight != null ? l.posWeight.length : 0), ptr(p.weights), ptr(p.grad[0]),
                    ptr(auxSlot ? p.grad[2] : null), ptr(p.losses), ptr(p.partials), ptr(record), i64(p.units), i64(l.per),
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
                    i64(l.per), i32(call.classes()), i32(l.ignoreIndex), i32(flags), f64(gradFactor), ptr(factorAt),
                    f64(l.denConst)));
        }
        for (double v : KernelNames.scalarParams(call.loss())) {
            args.add(f64(v));
        }
        CudaDevice.launch(l.symbol, l.kernel, grid, l.ew ? EW_BLOCK : ROW_BLOCK, s,
                p.units + " " + l.unitName() + " of " + l.len, args.toArray(new Pointer[0]));
        if (whole) {
            launch(KernelNames.FINISH_MODULE, KernelNames.FINISH_RESULT, 1, FINISH_BLOCK, s, "result fold",
                    ptr(p.partials), i32(grid), i32(ResultRecord.mode(call)), ptr(record));
        }
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
        return grid;
    }

    /** The MEAN pre-pass of a piece into its partials; returns the number of partials. */
    private int prepass(Layout l, Piece p, CUstream s, CUdeviceptr record) {
        ValidatedCall call = l.call;
        if (l.ew) {
            int grid = l.grid(p.units);
            launch(KernelNames.module(Family.ELEMENTWISE), KernelNames.EW_WEIGHT_SUM, grid, EW_BLOCK, s,
                    p.units + " weights", ptr(p.weights), ptr(p.partials), i64(p.units), i64(l.per));
            return grid;
        }
        int denGrid = l.denGrid(p.units);
        CUdeviceptr labels = l.labelSlot >= 0 ? p.in[l.labelSlot] : null;
        boolean int64 = l.labelSlot >= 0 && call.slot(l.labelSlot).dtype() == Tensor.DType.INT64;
        launch(KernelNames.module(Family.ROWS), KernelNames.ROWS_DENOMINATOR, denGrid, DEN_BLOCK, s, p.units + " rows",
                ptr(int64 ? null : labels), ptr(int64 ? labels : null), ptr(p.weights), ptr(p.classWeight), ptr(p.partials),
                ptr(record.withByteOffset(ResultRecord.BAD_PREPASS_OFFSET)), i64(p.units), i64(l.per), i32(call.classes()),
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
        /** Units per block of the call's summation order (losskit.api.SummationOrder); chunks are multiples of it. */
        final long per;

        Layout(ValidatedCall call) {
            this.call = call;
            Form form = call.form();
            LossDefinition def = call.loss().definition();
            this.ew = form.family() == Family.ELEMENTWISE;
            this.termKey = form.termKey(call.loss().id());
            this.symbol = KernelNames.symbol(call.loss().id(), form, call.precision());
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
                        unitBytes[i] = (ew ? 1 : len) * t.dtype().bytes();
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
                        unitBytes[i] = t.dtype().bytes();
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
            this.per = SummationOrder.itemsPerBlock(units, ew ? 1 : len);
        }

        /** Bytes per element of slot i's gradient (its destination's dtype). */
        long gradBytes(int i) {
            Tensor d = call.deviceGradient(i) != null ? call.deviceGradient(i) : call.gradientTensor(i);
            return d == null ? Float.BYTES : d.dtype().bytes();
        }

        /** Bytes per per-element loss (its destination's dtype). */
        long lossBytes() {
            Tensor d = call.deviceLosses() != null ? call.deviceLosses() : call.lossesTensor();
            return d == null ? Float.BYTES : d.dtype().bytes();
        }

        /** The 2-bit dtype code the kernels read from their flags: 0 float32, 1 bfloat16, 2 float16. */
        private int code(Tensor t) {
            return t == null ? 0 : switch (t.dtype()) {
                case BFLOAT16 -> 1;
                case FLOAT16 -> 2;
                default -> 0;
            };
        }

        private Tensor gradientDestination(int i) {
            return call.deviceGradient(i) != null ? call.deviceGradient(i) : call.gradientTensor(i);
        }

        String unitName() {
            return ew ? "elements" : "rows";
        }

        int flags() {
            if (ew) {
                boolean auxSlot = call.slotCount() > 2;
                Tensor losses = call.deviceLosses() != null ? call.deviceLosses() : call.lossesTensor();
                return (call.loss().checkFinite() ? 1 : 0) | (auxSlot ? 2 : 0) | code(call.slot(0)) << 4
                        | code(call.slot(1)) << 6 | (auxSlot ? code(call.slot(2)) : 0) << 8
                        | code(gradientDestination(0)) << 10 | (auxSlot ? code(gradientDestination(2)) : 0) << 12
                        | code(losses) << 14;
            }
            Tensor[] v = new Tensor[3];
            Tensor[] g = new Tensor[3];
            for (int k = 0; k < Math.min(3, valueSlots); k++) {
                v[k] = call.slot(valueSlot[k]);
                g[k] = gradientDestination(valueSlot[k]);
            }
            Tensor losses = call.deviceLosses() != null ? call.deviceLosses() : call.lossesTensor();
            return (call.loss().checkFinite() ? 1 : 0) | (hasIgnore ? 2 : 0) | (denKind << 2) | (valueSlots << 4)
                    | code(v[0]) << 6 | code(v[1]) << 8 | code(v[2]) << 10
                    | (rowTargetSlot >= 0 ? code(call.slot(rowTargetSlot)) : 0) << 12
                    | code(g[0]) << 14 | code(g[1]) << 16 | code(g[2]) << 18 | code(losses) << 20;
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

        /** The kernel's grid for a piece of n units: one CUDA block per block of the summation order. */
        int grid(long n) {
            return (int) Math.max(1, (n + per - 1) / per);
        }

        /** The MEAN pre-pass kernels run the same blocks. */
        int denGrid(long n) {
            return grid(n);
        }

        /** Elements of slot i's data (and gradient) in {@code n} units. */
        long elements(int i, long n) {
            return n * unitBytes[i] / elementBytes(i);
        }

        long elementBytes(int i) {
            return call.slot(i).dtype().bytes();
        }

        /** The device bytes of a piece of {@code n} units; {@code staged}: every operand in the arena. */
        long pieceBytes(long n, boolean staged) {
            long b = 0;
            for (int i = 0; i < call.slotCount(); i++) {
                if (staged || !call.slot(i).isOnDevice()) {
                    b += DeviceArena.align(n * unitBytes[i]);
                }
                if (call.gradientTensor(i) != null) {
                    b += DeviceArena.align(elements(i, n) * gradBytes(i));
                }
            }
            if (call.weights() != null && (staged || !call.weights().isOnDevice())) {
                b += DeviceArena.align(n * Float.BYTES);
            }
            if (call.lossesTensor() != null) {
                b += DeviceArena.align(n * lossBytes());
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
                perUnit += unitBytes[i] + (call.gradientTensor(i) != null ? elements(i, 1) * gradBytes(i) : 0);
                regions += call.gradientTensor(i) != null ? 2 : 1;
            }
            perUnit += (call.weights() != null ? Float.BYTES : 0) + (call.lossesTensor() != null ? lossBytes() : 0);
            regions += 2;
            long fixed = regions * DeviceArena.ALIGN + 16L * SummationOrder.MAX_BLOCKS + DeviceArena.align(ResultRecord.BYTES);
            long byDevice = (budget / 2 - fixed) / Math.max(1, perUnit);
            long byStaging = CHUNK_STAGING_BYTES / Math.max(1, perUnit);
            return roundDown(Math.min(Math.min(byDevice, byStaging), units));
        }

        /**
         * Chunks are whole blocks of the summation order (so their block partials are the whole call's) and, for
         * bce-logits' posWeight that broadcasts over the element index, start at multiples of its length.
         */
        long granularity() {
            long g = per;
            if (ew && posWeight != null && call.slotCount() == 2) {
                long pw = posWeight.length;
                g = g / gcd(g, pw) * pw;
            }
            return g;
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
                        : call.gradientTensor(i) != null ? dev.arena.take(elements(i, n) * gradBytes(i)) : null;
            }
            Tensor w = call.weights();
            p.weights = w == null ? null : !staged && w.isOnDevice() ? JCudaInterop.deviceptr(w.devicePointer())
                    : dev.arena.take(n * Float.BYTES);
            p.losses = call.deviceLosses() != null && !staged ? JCudaInterop.deviceptr(call.deviceLosses().devicePointer())
                    : call.lossesTensor() != null ? dev.arena.take(n * lossBytes()) : null;
            p.partials = dev.arena.take(16L * Math.max(grid(n), denGrid(n)));
            return p;
        }
    }

    private static long gcd(long a, long b) {
        return b == 0 ? a : gcd(b, a % b);
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
            case BFLOAT16, FLOAT16 -> t.shorts();
            case INT32 -> t.ints();
            case INT64 -> t.longs();
        };
    }

    /** Copies count staged values (the destination's dtype) into a host output at element {@code at}. */
    private static void copyOut(Tensor dest, int at, ByteBuffer staged, int count) {
        if (dest.dtype() == Tensor.DType.FLOAT32) {
            dest.floats().put(at, staged.asFloatBuffer(), 0, count);
        } else {
            dest.shorts().put(at, staged.asShortBuffer(), 0, count);
        }
    }

    private static long align8(long bytes) {
        return (bytes + 7) & ~7L;
    }

    private static void downloadInto(Tensor t, CUdeviceptr d, long bytes, String what) {
        Buffer dest = buffer(t);
        if (dest.isDirect() || dest.hasArray()) {
            CudaDevice.download(hostPointer(dest), d, bytes, what);
        } else if (dest instanceof FloatBuffer f) {
            float[] tmp = new float[(int) (bytes / Float.BYTES)];
            CudaDevice.download(Pointer.to(tmp), d, bytes, what);
            f.duplicate().clear().put(tmp);
        } else {
            short[] tmp = new short[(int) (bytes / Short.BYTES)];
            CudaDevice.download(Pointer.to(tmp), d, bytes, what);
            ((ShortBuffer) dest).duplicate().clear().put(tmp);
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
            } else if (view instanceof ShortBuffer sh) {
                return Pointer.to(sh.slice());
            }
        }
        if (b instanceof ShortBuffer sh) {
            if (sh.hasArray()) {
                return Pointer.to(sh.array()).withByteOffset((long) sh.arrayOffset() * Short.BYTES);
            }
            short[] copy = new short[sh.limit()];
            sh.duplicate().clear().get(copy);
            return Pointer.to(copy);
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
