package losskit.cuda;

import java.lang.ref.Cleaner;
import jcuda.driver.CUevent;
import losskit.api.LossResult;
import losskit.api.PendingLoss;
import losskit.api.ValidatedCall;

/**
 * A queued call: its result record (a pool block the kernels fold into) and the event that follows its
 * work on the stream. Reading the value waits for that event only. Closing gives the record back once
 * the stream has passed the event (so a late kernel never writes into a block already reused); a handle
 * that is only garbage-collected is given back by the same action, queued by the cleaner's thread and run by
 * the next call (or an allocation that runs out of memory) with the monitor held. After the engine has
 * closed, the record is gone.
 */
final class CudaPendingLoss implements PendingLoss {
    static final Cleaner CLEANER = Cleaner.create();

    private final CudaDevice dev;
    private final FamilyKernels kernels;
    private final ValidatedCall call;
    private final long record;
    private final CUevent done;
    private final Cleaner.Cleanable cleanable;
    private LossResult result;
    private RuntimeException error;
    private boolean closed;

    /** Gives the record and the event back (the cleaner's action: it must not reach the handle). */
    private record Release(CudaDevice dev, long record, CUevent done) implements Runnable {
        /** Queued first, so that an allocation running out of memory can take it while this thread waits. */
        @Override
        public void run() {
            dev.queueRelease(this::releaseNow);
        }

        /** With the device's monitor held. */
        private void releaseNow() {
            if (dev.isClosed()) {
                return;
            }
            try (CudaDevice.Scope s = dev.scope()) {
                dev.releaseAfter(done, () -> dev.pool.release(record, ResultRecord.BYTES));
            } catch (RuntimeException e) {
                // a fatal error marks the device unusable, which empties the pool: nothing is left to give back
                RuntimeException r = dev.fail(e, "PendingLoss.close");
                if (!dev.isUnusable()) {
                    throw r;
                }
            }
        }
    }

    CudaPendingLoss(CudaDevice dev, FamilyKernels kernels, ValidatedCall call, long record, CUevent done, LossResult known) {
        this.dev = dev;
        this.kernels = kernels;
        this.call = call;
        this.record = record;
        this.done = done;
        this.result = known;
        this.cleanable = CLEANER.register(this, new Release(dev, record, done));
    }

    @Override
    public long valueOnDevice() {
        synchronized (dev) {
            if (closed || dev.isClosed()) {
                throw new IllegalStateException("the pending loss (or its engine) is closed: its device value is gone");
            }
            return record + ResultRecord.VALUE_OFFSET;
        }
    }

    @Override
    public boolean isDone() {
        synchronized (dev) {
            if (result != null || error != null) {
                return true;
            }
            if (closed || dev.isUnusable()) {
                return true; // an unusable device: result() throws at once
            }
            try (CudaDevice.Scope s = dev.enterCall()) {
                return CudaDevice.isDone(done);
            } catch (RuntimeException e) {
                throw dev.fail(e, "PendingLoss.isDone");
            }
        }
    }

    @Override
    public double value() {
        return result().value();
    }

    @Override
    public LossResult result() {
        synchronized (dev) {
            if (result == null && error == null) {
                if (closed) {
                    throw new IllegalStateException("the pending loss was closed before its value was read");
                }
                double[] rec;
                try (CudaDevice.Scope s = dev.enterCall()) {
                    CudaDevice.await(done);
                    rec = CudaDevice.readRecord(record, "result record");
                } catch (RuntimeException e) {
                    throw dev.fail(e, "PendingLoss.value(" + call.form().termKey(call.loss().id()) + ")");
                }
                // the context current here too: a domain error reads the offending label from the device
                try (CudaDevice.Scope s = dev.scope()) {
                    result = kernels.resultOf(call, rec);
                } catch (RuntimeException e) {
                    error = e;
                }
            }
            if (error != null) {
                throw error;
            }
            return result;
        }
    }

    @Override
    public void close() {
        synchronized (dev) {
            closed = true;
        }
        cleanable.clean(); // queues the release (once) ...
        synchronized (dev) {
            dev.drainReleases(); // ... and runs it now
        }
    }
}
