package losskit.cuda;

import static jcuda.driver.JCudaDriver.cuCtxSetCurrent;
import static jcuda.driver.JCudaDriver.cuCtxSynchronize;
import static jcuda.driver.JCudaDriver.cuDeviceGet;
import static jcuda.driver.JCudaDriver.cuDeviceGetCount;
import static jcuda.driver.JCudaDriver.cuDeviceGetName;
import static jcuda.driver.JCudaDriver.cuDevicePrimaryCtxRelease;
import static jcuda.driver.JCudaDriver.cuDevicePrimaryCtxRetain;
import static jcuda.driver.JCudaDriver.cuInit;
import static jcuda.driver.JCudaDriver.cuLaunchKernel;
import static jcuda.driver.JCudaDriver.cuMemcpyDtoH;
import static jcuda.driver.JCudaDriver.cuMemcpyHtoD;
import static jcuda.driver.JCudaDriver.cuModuleGetFunction;
import static jcuda.driver.JCudaDriver.cuModuleLoadData;
import static jcuda.driver.JCudaDriver.cuModuleUnload;

import java.io.IOException;
import java.io.InputStream;
import java.nio.Buffer;
import java.nio.FloatBuffer;
import java.nio.IntBuffer;
import java.nio.LongBuffer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import jcuda.CudaException;
import jcuda.Pointer;
import jcuda.driver.CUcontext;
import jcuda.driver.CUdevice;
import jcuda.driver.CUdeviceptr;
import jcuda.driver.CUfunction;
import jcuda.driver.CUmodule;
import jcuda.driver.JCudaDriver;
import losskit.api.Family;
import losskit.api.Form;
import losskit.api.LossBackend;
import losskit.api.LossDefinition;
import losskit.api.LossResult;
import losskit.api.Param;
import losskit.api.Partial;
import losskit.api.Reduction;
import losskit.api.Slot;
import losskit.api.Tensor;
import losskit.api.ValidatedCall;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The CUDA backend (JCuda driver API): the catalogue's kernels from the PTX built by
 * {@code scripts/build-ptx.sh}, JIT-compiled by the driver. Each call copies its inputs into one cached
 * device arena, runs the MEAN pre-pass when the gradient needs Σ s·d, the family kernel (value, gradient
 * and per-block float64 partials in one pass), folds the partials on the host in block order
 * (double-double, so results are bitwise reproducible), and copies gradients and losses back. Domain
 * violations found by the kernels raise the CPU backend's {@link losskit.api.LossInputException}.
 * Calls are serialised; every calling thread makes the device's primary context current.
 */
public final class CudaBackend implements LossBackend {
    private static final Logger LOG = LoggerFactory.getLogger(CudaBackend.class);
    private static final String PTX_DIR = "/losskit/ptx/";
    private static final int EW_BLOCK = 256;
    private static final int ROW_BLOCK = 128;
    private static final int ROWS_PER_BLOCK = ROW_BLOCK / 32;
    private static final int DEN_BLOCK = 256;
    private static final int MAX_GRID = 1024;

    private final CUdevice device;
    private final CUcontext context;
    private final String deviceName;
    private final Map<String, CUmodule> modules = new HashMap<>();
    private final Map<String, CUfunction> functions = new HashMap<>();
    private final DeviceArena arena = new DeviceArena();
    private boolean closed;

    private CudaBackend(CUdevice device, CUcontext context, String deviceName) {
        this.device = device;
        this.context = context;
        this.deviceName = deviceName;
    }

    /**
     * Opens the CUDA backend on device 0 or throws with the reason it cannot run here (no PTX in this
     * build, no driver: {@link LinkageError}, no device: {@link CudaLossException}).
     */
    public static LossBackend open(int hostThreads) {
        for (Family f : Family.values()) {
            if (KernelNames.hasKernels(f) && CudaBackend.class.getResource(PTX_DIR + KernelNames.module(f) + ".ptx") == null) {
                throw new UnsupportedOperationException("this build has no PTX (" + PTX_DIR + KernelNames.module(f)
                        + ".ptx is not on the classpath: build with nvcc, see scripts/build-ptx.sh)");
            }
        }
        JCudaDriver.setExceptionsEnabled(true);
        try {
            cuInit(0);
            int[] count = new int[1];
            cuDeviceGetCount(count);
            if (count[0] == 0) {
                throw new CudaLossException("CUDA_ERROR_NO_DEVICE", "cuDeviceGetCount", "no CUDA device", null);
            }
            CUdevice dev = new CUdevice();
            cuDeviceGet(dev, 0);
            byte[] name = new byte[256];
            cuDeviceGetName(name, name.length, dev);
            int end = 0;
            while (end < name.length && name[end] != 0) {
                end++;
            }
            CUcontext ctx = new CUcontext();
            cuDevicePrimaryCtxRetain(ctx, dev);
            return new CudaBackend(dev, ctx, new String(name, 0, end, StandardCharsets.UTF_8));
        } catch (CudaException e) {
            throw wrap(e, "cuInit/cuDevicePrimaryCtxRetain", "device 0");
        }
    }

    static CudaLossException wrap(RuntimeException e, String what, String detail) {
        if (e instanceof CudaLossException c) {
            return c;
        }
        String msg = e.getMessage() == null ? e.toString() : e.getMessage();
        return new CudaLossException(msg, what, detail, e);
    }

    @Override
    public String name() {
        return "cuda";
    }

    @Override
    public String describe() {
        return "cuda, device 0: " + deviceName + ", PTX JIT-compiled by the driver";
    }

    @Override
    public synchronized LossResult compute(ValidatedCall call) {
        if (closed) {
            throw new IllegalStateException("CUDA backend is closed");
        }
        cuCtxSetCurrent(context);
        Form form = call.form();
        if (!KernelNames.hasKernels(form.family())) {
            throw new UnsupportedOperationException("no CUDA kernels for " + form.termKey(call.loss().id()) + " yet");
        }
        String symbol = KernelNames.symbol(call.loss().id(), form);
        CUfunction kernel = function(form.family(), symbol, form.termKey(call.loss().id()));
        Partial partial = form.family() == Family.ELEMENTWISE ? runElementwise(call, kernel, symbol)
                : runRows(call, kernel, symbol);
        applyOuter(call, partial);
        return new LossResult(call.loss(), partial, call.losses(), call.gradientMap(), name());
    }

    // ---- elementwise --------------------------------------------------------------------------------

    private Partial runElementwise(ValidatedCall call, CUfunction kernel, String symbol) {
        long n = call.rows();
        boolean auxSlot = call.slotCount() > 2;
        float[] posWeight = call.loss().definition().has(Param.POS_WEIGHT) ? call.loss().get(Param.POS_WEIGHT) : null;
        int grid = (int) Math.max(1, Math.min(MAX_GRID, (n + EW_BLOCK * 4L - 1) / (EW_BLOCK * 4L)));
        Tensor w = call.weights();
        long fb = n * Float.BYTES;
        long auxBytes = auxSlot ? fb : posWeight != null ? (long) posWeight.length * Float.BYTES : 0;
        FloatBuffer gx = call.gradient(0);
        FloatBuffer gaux = auxSlot ? call.gradient(2) : null;
        FloatBuffer losses = call.losses();
        long scratchBytes = 8 + 16L * grid;
        arena.reset(DeviceArena.align(fb) * 2 + DeviceArena.align(auxBytes) + (w != null ? DeviceArena.align(fb) : 0)
                + (gx != null ? DeviceArena.align(fb) : 0) + (gaux != null ? DeviceArena.align(fb) : 0)
                + (losses != null ? DeviceArena.align(fb) : 0) + DeviceArena.align(scratchBytes));
        CUdeviceptr dx = upload(call.slot(0).floats(), fb, "input");
        CUdeviceptr dt = upload(call.slot(1).floats(), fb, "target");
        CUdeviceptr daux = auxSlot ? upload(call.slot(2).floats(), fb, "aux")
                : posWeight != null ? upload(FloatBuffer.wrap(posWeight), auxBytes, "posWeight") : null;
        CUdeviceptr dw = w != null ? upload(w.floats(), fb, "weights") : null;
        CUdeviceptr dgx = gx != null ? arena.take(fb) : null;
        CUdeviceptr dgaux = gaux != null ? arena.take(fb) : null;
        CUdeviceptr dlosses = losses != null ? arena.take(fb) : null;
        CUdeviceptr scratch = arena.take(scratchBytes);
        CUdeviceptr partials = scratch.withByteOffset(8);

        double gradFactor = call.loss().gradScale();
        if (divides(call) && call.wantsGradient()) {
            double total = n;
            if (dw != null) {
                launch(KernelNames.EW_WEIGHT_SUM, function(Family.ELEMENTWISE, KernelNames.EW_WEIGHT_SUM, null), grid,
                        EW_BLOCK, fb, List.of(ptr(dw), ptr(partials), i64(n)));
                double[] part = new double[grid];
                download(Pointer.to(part), partials, 8L * grid, KernelNames.EW_WEIGHT_SUM);
                total = foldSum(part, 0, grid);
            }
            // MEAN over zero total weight is NaN with an all-zero gradient (LOSSES.md)
            gradFactor = total == 0 ? 0 : gradFactor / total;
        }
        resetBad(scratch);
        double[] p = KernelNames.scalarParams(call.loss());
        int flags = (call.loss().checkFinite() ? 1 : 0) | (auxSlot ? 2 : 0);
        List<Pointer> args = new ArrayList<>(List.of(ptr(dx), ptr(dt), ptr(daux),
                i64(auxSlot ? n : posWeight != null ? posWeight.length : 0), ptr(dw), ptr(dgx), ptr(dgaux),
                ptr(dlosses), ptr(partials), ptr(scratch), i64(n), f64(gradFactor), i32(flags)));
        for (double v : p) {
            args.add(f64(v));
        }
        launch(symbol, kernel, grid, EW_BLOCK, fb, args);
        double[] result = readScratch(scratch, grid, symbol);
        checkDomain(call, result);
        if (gx != null) {
            downloadInto(gx, dgx, fb, symbol);
        }
        if (gaux != null) {
            downloadInto(gaux, dgaux, fb, symbol);
        }
        if (losses != null) {
            downloadInto(losses, dlosses, fb, symbol);
        }
        return fold(call, result, grid, n);
    }

    // ---- rows and pairs -----------------------------------------------------------------------------

    private Partial runRows(ValidatedCall call, CUfunction kernel, String symbol) {
        Form form = call.form();
        long rows = call.rows();
        long len = call.rowLength();
        long elements = call.elements();
        LossDefinition def = call.loss().definition();
        float[] cw = def.has(Param.CLASS_WEIGHT) ? call.loss().get(Param.CLASS_WEIGHT) : null;
        boolean hasIgnore = def.has(Param.IGNORE_INDEX) && form.hasLabels();
        int ignoreIndex = hasIgnore ? call.loss().get(Param.IGNORE_INDEX) : 0;
        int denKind = switch (form.denominator()) {
            case ONE -> 0;
            case LABEL_CLASS_WEIGHT -> 1;
            case ELEMENTS -> 2;
        };
        double denConst = call.loss().reduction() == Reduction.MEAN ? len : 1;

        // slots: the float [N, len] slots come first (a, b, c), then labels or a per-row target
        Tensor[] values = new Tensor[3];
        FloatBuffer[] grads = new FloatBuffer[3];
        int valueSlots = 0;
        Tensor labels = null;
        Tensor rowTarget = null;
        for (int i = 0; i < call.slotCount(); i++) {
            Slot s = form.slots().get(i);
            switch (s.kind()) {
                case VALUES -> {
                    values[valueSlots] = call.slot(i);
                    grads[valueSlots++] = call.gradient(i);
                }
                case LABELS -> labels = call.slot(i);
                case ROW_VALUES -> rowTarget = call.slot(i);
            }
        }
        int flags = (call.loss().checkFinite() ? 1 : 0) | (hasIgnore ? 2 : 0) | (denKind << 2) | (valueSlots << 4);
        int grid = (int) Math.max(1, Math.min(MAX_GRID, (rows + ROWS_PER_BLOCK - 1) / ROWS_PER_BLOCK));
        int denGrid = (int) Math.max(1, Math.min(MAX_GRID, (rows + DEN_BLOCK - 1) / DEN_BLOCK));
        long fb = elements * Float.BYTES;
        long rb = rows * Float.BYTES;
        long labelBytes = labels == null ? 0 : rows * (labels.dtype() == Tensor.DType.INT64 ? 8 : 4);
        long scratchBytes = 8 + 16L * Math.max(grid, denGrid);
        long total = DeviceArena.align(fb) * valueSlots + DeviceArena.align(labelBytes) + DeviceArena.align(rb) * 3
                + (cw != null ? DeviceArena.align(4L * cw.length) : 0) + DeviceArena.align(scratchBytes);
        for (FloatBuffer g : grads) {
            total += g != null ? DeviceArena.align(fb) : 0;
        }
        arena.reset(total);
        CUdeviceptr[] dv = new CUdeviceptr[3];
        for (int k = 0; k < valueSlots; k++) {
            dv[k] = upload(values[k].floats(), fb, form.slots().get(k).name());
        }
        CUdeviceptr dy32 = null;
        CUdeviceptr dy64 = null;
        if (labels != null) {
            if (labels.dtype() == Tensor.DType.INT64) {
                dy64 = arena.take(labelBytes);
                upload(dy64, labels.longs(), labelBytes, "labels");
            } else {
                dy32 = arena.take(labelBytes);
                upload(dy32, labels.ints(), labelBytes, "labels");
            }
        }
        CUdeviceptr dRowTarget = rowTarget != null ? upload(rowTarget.floats(), rb, "target") : null;
        CUdeviceptr dw = call.weights() != null ? upload(call.weights().floats(), rb, "weights") : null;
        CUdeviceptr dcw = cw != null ? upload(FloatBuffer.wrap(cw), 4L * cw.length, "classWeight") : null;
        CUdeviceptr[] dg = new CUdeviceptr[3];
        for (int k = 0; k < 3; k++) {
            dg[k] = grads[k] != null ? arena.take(fb) : null;
        }
        CUdeviceptr dlosses = call.losses() != null ? arena.take(rb) : null;
        CUdeviceptr scratch = arena.take(scratchBytes);
        CUdeviceptr partials = scratch.withByteOffset(8);

        double gradFactor = call.loss().gradScale();
        if (divides(call) && call.wantsGradient()) {
            resetBad(scratch);
            launch(KernelNames.ROWS_DENOMINATOR, function(Family.ROWS, KernelNames.ROWS_DENOMINATOR, null), denGrid,
                    DEN_BLOCK, rb, List.of(ptr(dy32), ptr(dy64), ptr(dw), ptr(dcw), ptr(partials), ptr(scratch),
                            i64(rows), i32(call.classes()), i32(ignoreIndex), i32(flags), f64(denConst)));
            double[] pre = readScratch(scratch, denGrid, KernelNames.ROWS_DENOMINATOR);
            checkDomain(call, pre);
            double sum = foldSum(pre, 1, denGrid);
            // MEAN over zero total weight (every row ignored) is NaN with an all-zero gradient (LOSSES.md)
            gradFactor = sum == 0 ? 0 : gradFactor / sum;
        }
        resetBad(scratch);
        List<Pointer> args = new ArrayList<>(List.of(ptr(dv[0]), ptr(dv[1]), ptr(dv[2]), ptr(dRowTarget), ptr(dy32),
                ptr(dy64), ptr(dw), ptr(dcw), ptr(dg[0]), ptr(dg[1]), ptr(dg[2]), ptr(dlosses), ptr(partials),
                ptr(scratch), i64(rows), i64(len), i32(call.classes()), i32(ignoreIndex), i32(flags), f64(gradFactor),
                f64(denConst)));
        for (double v : KernelNames.scalarParams(call.loss())) {
            args.add(f64(v));
        }
        launch(symbol, kernel, grid, ROW_BLOCK, fb, args);
        double[] result = readScratch(scratch, grid, symbol);
        checkDomain(call, result);
        for (int k = 0; k < 3; k++) {
            if (grads[k] != null) {
                downloadInto(grads[k], dg[k], fb, symbol);
            }
        }
        if (call.losses() != null) {
            downloadInto(call.losses(), dlosses, rb, symbol);
        }
        return fold(call, result, grid, rows);
    }

    // ---- reductions ---------------------------------------------------------------------------------

    private static boolean divides(ValidatedCall call) {
        Reduction r = call.loss().reduction();
        return r == Reduction.MEAN || r == Reduction.BATCHMEAN;
    }

    /** Σ of block partials [from, from + count) of scratch (after the bad word) in block order. */
    private static double foldSum(double[] part, int from, int count) {
        double hi = 0;
        double lo = 0;
        for (int b = 0; b < count; b++) {
            double[] s = Partial.DoubleDouble.add(hi, lo, part[from + b], 0);
            hi = s[0];
            lo = s[1];
        }
        return hi + lo;
    }

    /** scratch = {bad word, Σs·l per block, Σs·d per block}: folded in block order as the CPU folds its blocks. */
    private static Partial fold(ValidatedCall call, double[] scratch, int grid, long count) {
        double lh = 0;
        double ll = 0;
        double wh = 0;
        double wl = 0;
        for (int b = 0; b < grid; b++) {
            double[] s = Partial.DoubleDouble.add(lh, ll, scratch[1 + b], 0);
            lh = s[0];
            ll = s[1];
            double[] w = Partial.DoubleDouble.add(wh, wl, scratch[1 + grid + b], 0);
            wh = w[0];
            wl = w[1];
        }
        return new Partial(call.loss().id(), call.loss().reduction(), call.loss().definition().outer(), lh, ll, wh, wl,
                count);
    }

    /** rmse's √: the gradient is scaled by 1/(2√mean) once the mean is known (0 when it is 0 or Σw = 0). */
    private static void applyOuter(ValidatedCall call, Partial partial) {
        if (call.loss().definition().outer() != LossDefinition.Outer.SQRT) {
            return;
        }
        double root = partial.value();
        double k = root > 0 ? 0.5 / root : root == 0 || partial.sumWeight() == 0 ? 0 : Double.NaN;
        for (int s = 0; s < call.slotCount(); s++) {
            FloatBuffer g = call.gradient(s);
            if (g == null) {
                continue;
            }
            for (int i = 0; i < g.limit(); i++) {
                g.put(i, (float) (g.get(i) * k));
            }
        }
    }

    private static void checkDomain(ValidatedCall call, double[] scratch) {
        long key = Double.doubleToRawLongBits(scratch[0]);
        if (key != -1L) {
            throw Domain.error(call, key);
        }
    }

    // ---- driver plumbing ----------------------------------------------------------------------------

    private CUfunction function(Family family, String symbol, String termKey) {
        CUfunction f = functions.get(symbol);
        if (f != null) {
            return f;
        }
        CUmodule m = module(KernelNames.module(family));
        f = new CUfunction();
        try {
            cuModuleGetFunction(f, m, symbol);
        } catch (CudaException e) {
            if (termKey != null && String.valueOf(e.getMessage()).contains("NOT_FOUND")) {
                throw new UnsupportedOperationException("no CUDA kernels for " + termKey + " yet");
            }
            throw wrap(e, "cuModuleGetFunction", symbol);
        }
        functions.put(symbol, f);
        return f;
    }

    private CUmodule module(String name) {
        CUmodule m = modules.get(name);
        if (m != null) {
            return m;
        }
        byte[] ptx;
        try (InputStream in = CudaBackend.class.getResourceAsStream(PTX_DIR + name + ".ptx")) {
            if (in == null) {
                throw new UnsupportedOperationException("this build has no PTX for " + name);
            }
            byte[] text = in.readAllBytes();
            ptx = Arrays.copyOf(text, text.length + 1); // cuModuleLoadData takes a NUL-terminated image
        } catch (IOException e) {
            throw new IllegalStateException("cannot read " + PTX_DIR + name + ".ptx", e);
        }
        m = new CUmodule();
        try {
            cuModuleLoadData(m, ptx);
        } catch (CudaException e) {
            throw wrap(e, "cuModuleLoadData", name + ".ptx, " + ptx.length + " bytes");
        }
        LOG.info("CUDA backend: loaded {}.ptx ({} bytes) through cuModuleLoadData (driver JIT)", name, ptx.length);
        modules.put(name, m);
        return m;
    }

    private static void launch(String symbol, CUfunction f, int grid, int block, long bytes, List<Pointer> args) {
        try {
            cuLaunchKernel(f, grid, 1, 1, block, 1, 1, 0, null, Pointer.to(args.toArray(new Pointer[0])), null);
            cuCtxSynchronize();
        } catch (CudaException e) {
            throw wrap(e, symbol, "grid " + grid + " x block " + block + ", " + bytes + " bytes per input");
        }
    }

    private CUdeviceptr upload(FloatBuffer host, long bytes, String what) {
        CUdeviceptr d = arena.take(bytes);
        upload(d, host, bytes, what);
        return d;
    }

    private static void upload(CUdeviceptr d, Buffer host, long bytes, String what) {
        try {
            cuMemcpyHtoD(d, hostPointer(host), bytes);
        } catch (CudaException e) {
            throw wrap(e, "cuMemcpyHtoD", what + ", " + bytes + " bytes");
        }
    }

    private static void download(Pointer host, CUdeviceptr d, long bytes, String what) {
        try {
            cuMemcpyDtoH(host, d, bytes);
        } catch (CudaException e) {
            throw wrap(e, "cuMemcpyDtoH", what + ", " + bytes + " bytes");
        }
    }

    private static void downloadInto(FloatBuffer dest, CUdeviceptr d, long bytes, String what) {
        if (dest.isDirect() || dest.hasArray()) {
            download(hostPointer(dest), d, bytes, what);
        } else {
            float[] tmp = new float[(int) (bytes / Float.BYTES)];
            download(Pointer.to(tmp), d, bytes, what);
            dest.duplicate().clear().put(tmp);
        }
    }

    /** Host pointer at absolute index 0 of a buffer (the backends' indexing), copying read-only heap data. */
    private static Pointer hostPointer(Buffer b) {
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

    /** Presets the first-violation word to "none" (all ones). */
    private static void resetBad(CUdeviceptr scratch) {
        try {
            cuMemcpyHtoD(scratch, Pointer.to(new long[]{-1L}), 8);
        } catch (CudaException e) {
            throw wrap(e, "cuMemcpyHtoD", "domain word, 8 bytes");
        }
    }

    private static double[] readScratch(CUdeviceptr scratch, int grid, String what) {
        double[] out = new double[1 + 2 * grid];
        download(Pointer.to(out), scratch, 8L * out.length, what);
        return out;
    }

    private static Pointer ptr(CUdeviceptr p) {
        return Pointer.to(p == null ? new CUdeviceptr() : p);
    }

    private static Pointer i64(long v) {
        return Pointer.to(new long[]{v});
    }

    private static Pointer i32(int v) {
        return Pointer.to(new int[]{v});
    }

    private static Pointer f64(double v) {
        return Pointer.to(new double[]{v});
    }

    @Override
    public synchronized void close() {
        if (closed) {
            return;
        }
        closed = true;
        try {
            cuCtxSetCurrent(context);
            arena.free();
            for (CUmodule m : modules.values()) {
                cuModuleUnload(m);
            }
            modules.clear();
            functions.clear();
        } catch (CudaException e) {
            LOG.warn("CUDA backend: releasing device memory failed: {}", e.getMessage());
        } finally {
            try {
                cuDevicePrimaryCtxRelease(device);
            } catch (CudaException e) {
                LOG.warn("CUDA backend: releasing the primary context failed: {}", e.getMessage());
            }
        }
    }
}
