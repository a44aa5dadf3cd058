package losskit.cuda;

import static jcuda.driver.JCudaDriver.cuCtxSetCurrent;
import static jcuda.driver.JCudaDriver.cuDeviceGet;
import static jcuda.driver.JCudaDriver.cuDevicePrimaryCtxRetain;
import static jcuda.driver.JCudaDriver.cuInit;
import static jcuda.driver.JCudaDriver.cuMemAlloc;
import static jcuda.driver.JCudaDriver.cuMemFree;
import static jcuda.driver.JCudaDriver.cuMemcpyDtoH;
import static jcuda.driver.JCudaDriver.cuMemcpyHtoD;

import java.util.SplittableRandom;
import jcuda.Pointer;
import jcuda.driver.CUcontext;
import jcuda.driver.CUdevice;
import jcuda.driver.CUdeviceptr;
import jcuda.driver.JCudaDriver;
import losskit.api.BackendChoice;
import losskit.api.Inputs;
import losskit.api.Loss;
import losskit.api.LossEngine;
import losskit.api.LossResult;
import losskit.api.Param;
import losskit.api.PendingLoss;
import losskit.api.Reduction;
import losskit.api.Tensor;

/**
 * Child-process side of {@link CudaChildProcessTest}: runs one scenario against the emulated driver under
 * the environment the parent chose (the emulator reads its switches once per process) and prints
 * "key=value" lines; the emulator's accounting report (LOSSKIT_EMU_REPORT) is written when it exits.
 */
public final class CudaProbe {
    private CudaProbe() {
    }

    public static void main(String[] args) {
        switch (args[0]) {
            case "device-loop" -> deviceLoop();
            case "chunked" -> chunked();
            case "paths" -> paths();
            default -> throw new IllegalArgumentException("unknown scenario " + args[0]);
        }
        System.out.flush();
    }

    private static void emit(String key, Object value) {
        System.out.println(key + "=" + value);
    }

    /** One small call on a fresh engine, then how each module reached the (emulated) GPU. */
    private static void paths() {
        try (LossEngine engine = LossEngine.create(BackendChoice.CUDA)) {
            LossResult r = engine.compute(Loss.of("mse"), Inputs.of(new float[]{1, 2, 3}, new float[]{0, 2, 5}));
            emit("value", r.value());
            emit("describe", engine.backend().describe());
            emit("paths", ((CudaBackend) engine.backend()).modulePaths());
        }
    }

    /**
     * A training loop on device data: 20 asynchronous steps of cross-entropy (MEAN with class weights: a
     * data-dependent denominator) with the gradient into device memory, the value read every 5th step.
     * The probe keeps the primary context retained itself, so that whatever the engine leaks stays live
     * until the emulator's exit report.
     */
    private static void deviceLoop() {
        JCudaDriver.setExceptionsEnabled(true);
        cuInit(0);
        CUdevice device = new CUdevice();
        cuDeviceGet(device, 0);
        CUcontext ctx = new CUcontext();
        cuDevicePrimaryCtxRetain(ctx, device);
        cuCtxSetCurrent(ctx);
        int rows = 64;
        int classes = 100;
        SplittableRandom rnd = new SplittableRandom(5);
        float[] logits = new float[rows * classes];
        for (int i = 0; i < logits.length; i++) {
            logits[i] = (float) rnd.nextDouble(-4, 4);
        }
        int[] labels = new int[rows];
        for (int i = 0; i < rows; i++) {
            labels[i] = i % 7 == 3 ? -100 : rnd.nextInt(classes);
        }
        float[] classWeight = new float[classes];
        for (int i = 0; i < classes; i++) {
            classWeight[i] = 0.5f + (i % 4) * 0.25f;
        }
        CUdeviceptr x = new CUdeviceptr();
        CUdeviceptr y = new CUdeviceptr();
        CUdeviceptr g = new CUdeviceptr();
        cuMemAlloc(x, 4L * logits.length);
        cuMemAlloc(y, 4L * rows);
        cuMemAlloc(g, 4L * logits.length);
        cuMemcpyHtoD(x, Pointer.to(logits), 4L * logits.length);
        cuMemcpyHtoD(y, Pointer.to(labels), 4L * rows);
        emit("setupHtodBytes", 4L * logits.length + 4L * rows + 4L * classes);

        Loss ce = Loss.of("cross-entropy").with(Param.CLASS_WEIGHT, classWeight).with(Param.LABEL_SMOOTHING, 0.1);
        LossEngine cpu = LossEngine.create(BackendChoice.CPU);
        LossResult expected = cpu.compute(ce, Inputs.rows(logits, rows, classes, labels));
        LossEngine engine = LossEngine.create(BackendChoice.CUDA);
        emit("describe", engine.selectionReason());
        CudaBackend backend = (CudaBackend) engine.backend();
        emit("paths", backend.modulePaths());
        Inputs step = Inputs.empty().with("input", Tensor.onDevice(JCudaInterop.address(x), rows, classes))
                .with("target", Tensor.labelsOnDevice(JCudaInterop.address(y), Tensor.DType.INT32, rows))
                .gradientInto("input", Tensor.onDevice(JCudaInterop.address(g), rows * classes));
        int reads = 0;
        double last = Double.NaN;
        for (int k = 0; k < 20; k++) {
            try (PendingLoss p = engine.computeAsync(ce, step)) {
                if (k % 5 == 4) {
                    last = p.value();
                    reads++;
                }
            }
        }
        emit("reads", reads);
        emit("recordBytes", ResultRecord.BYTES);
        emit("value", last);
        emit("cpuValue", expected.value());
        float[] grad = new float[rows * classes];
        cuCtxSetCurrent(ctx);
        cuMemcpyDtoH(Pointer.to(grad), g, 4L * grad.length);
        emit("probeDtohBytes", 4L * grad.length);
        emit("gradientError", maxRelativeError(expected.gradientArray("input"), grad));
        emit("poolBlocksBeforeClose", backend.poolBlocksHandedOut());
        // left for the engine's close: a pending value never closed, device buffers never closed
        engine.computeAsync(Loss.of("cross-entropy").reduction(Reduction.SUM), step.gradientInto("input",
                Tensor.onDevice(JCudaInterop.address(g), rows * classes)));
        engine.allocateDevice(1 << 20);
        engine.allocateDevice(10);
        engine.close();
        cpu.close();
        cuCtxSetCurrent(ctx);
        cuMemFree(x);
        cuMemFree(y);
        cuMemFree(g);
        emit("done", "yes");
    }

    /**
     * Host inputs larger than the (emulated) device memory: values and gradients against the CPU, chunk
     * statistics, a domain error in a late chunk, and a call that cannot fit at all.
     */
    private static void chunked() {
        LossEngine cpu = LossEngine.create(BackendChoice.CPU);
        LossEngine cuda = LossEngine.create(BackendChoice.CUDA);
        CudaBackend backend = (CudaBackend) cuda.backend();
        SplittableRandom rnd = new SplittableRandom(11);
        int n = 1_000_002;
        float[] x = new float[n];
        float[] t = new float[n];
        float[] w = new float[n];
        for (int i = 0; i < n; i++) {
            x[i] = (float) rnd.nextDouble(-3, 3);
            t[i] = (float) rnd.nextDouble(-3, 3);
            w[i] = (float) rnd.nextDouble(0, 2);
        }
        compare("mse", Loss.of("mse"), Inputs.of(x, t).weights(w), cpu, cuda, backend);
        compare("rmse", Loss.of("rmse"), Inputs.of(x, t), cpu, cuda, backend);
        compare("huberNone", Loss.of("huber").reduction(Reduction.NONE), Inputs.of(x, t), cpu, cuda, backend);
        float[] p = new float[n];
        for (int i = 0; i < n; i++) {
            p[i] = rnd.nextBoolean() ? 1 : 0;
        }
        compare("bceLogits", Loss.of("bce-logits").with(Param.POS_WEIGHT, new float[]{2f, 0.5f, 1.5f}),
                Inputs.of(Tensor.of(x, n / 3, 3), Tensor.of(p, n / 3, 3)), cpu, cuda, backend);
        int rows = 30_000;
        int classes = 40;
        float[] logits = new float[rows * classes];
        for (int i = 0; i < logits.length; i++) {
            logits[i] = (float) rnd.nextDouble(-5, 5);
        }
        long[] labels = new long[rows];
        float[] rw = new float[rows];
        for (int i = 0; i < rows; i++) {
            labels[i] = i % 11 == 5 ? -100 : rnd.nextInt(classes);
            rw[i] = (float) rnd.nextDouble(0.5, 1.5);
        }
        Loss ce = Loss.of("cross-entropy").with(Param.LABEL_SMOOTHING, 0.05);
        Inputs ceIn = Inputs.empty().with("input", Tensor.of(logits, rows, classes)).with("target", Tensor.labels(labels))
                .weights(rw);
        compare("ce", ce, ceIn, cpu, cuda, backend);
        labels[rows - 100] = classes + 3;
        emit("lateErrorCpu", message(() -> cpu.compute(ce, ceIn)));
        emit("lateErrorCuda", message(() -> cuda.compute(ce, ceIn)));
        float[] wide = new float[600_000];
        emit("tooWide", message(() -> cuda.compute(Loss.of("cross-entropy"),
                Inputs.rows(wide, 1, wide.length, new int[]{3}))));
        emit("afterwards", cuda.compute(Loss.of("mse"), Inputs.of(new float[]{1, 2}, new float[]{0, 0})).value());
        cuda.close();
        cpu.close();
        emit("done", "yes");
    }

    private static void compare(String name, Loss loss, Inputs in, LossEngine cpu, LossEngine cuda, CudaBackend backend) {
        LossResult e = cpu.compute(loss, in);
        long before = backend.chunkStats()[0];
        LossResult a = cuda.compute(loss, in);
        long[] stats = backend.chunkStats();
        emit(name + ".chunked", stats[0] - before);
        emit(name + ".chunks", stats[1]);
        emit(name + ".retries", stats[3]);
        emit(name + ".valueError", Math.abs(a.value() - e.value()) / Math.max(Math.abs(e.value()), 1e-300));
        double g = 0;
        for (String slot : e.gradients().keySet()) {
            g = Math.max(g, maxRelativeError(e.gradientArray(slot), a.gradientArray(slot)));
        }
        emit(name + ".gradientError", g);
        emit(name + ".lossesError", e.losses() == null ? 0 : maxRelativeError(e.lossesArray(), a.lossesArray()));
    }

    private static String message(Runnable r) {
        try {
            r.run();
            return "no error";
        } catch (RuntimeException e) {
            return e.getClass().getSimpleName() + ": " + e.getMessage();
        }
    }

    /** max |a − e| / max(|e|, 1e-6·max|e|) over the elements. */
    static double maxRelativeError(float[] e, float[] a) {
        double scale = 0;
        for (float f : e) {
            scale = Math.max(scale, Math.abs(f));
        }
        double worst = 0;
        for (int i = 0; i < e.length; i++) {
            double d = Math.abs((double) a[i] - e[i]) / Math.max(Math.abs(e[i]), 1e-6 * scale + 1e-30);
            worst = Math.max(worst, d);
        }
        return worst;
    }
}
