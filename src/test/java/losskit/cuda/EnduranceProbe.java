package losskit.cuda;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import losskit.api.BackendChoice;
import losskit.api.DeviceBuffer;
import losskit.api.Inputs;
import losskit.api.Loss;
import losskit.api.LossEngine;
import losskit.api.LossResult;
import losskit.api.PendingLoss;
import losskit.api.Reduction;
import losskit.api.Tensor;

/**
 * Child-process side of {@link EnduranceTest}: {@code calls} mixed calls on a CPU and an emulated-CUDA
 * engine (five losses of three families; small sizes mostly, a large one now and then — on the GPU
 * larger than its memory, so it streams through page-locked staging; synchronous, value-only,
 * asynchronous with the value read or not, and on device buffers from the engine's pool of varying
 * sizes; a few pending values and buffers left to the garbage collector). Every 13th GPU call is checked
 * against the CPU. Memory is measured after a warm-up that runs every kind of call once and at the end:
 * device bytes as the driver reports them and as the pool accounts for them, idle cached bytes against
 * the pool's cap, page-locked staging bytes, pool blocks handed out, and the JVM heap after GC. Prints
 * "key=value" lines; the emulator's exit report (LOSSKIT_EMU_REPORT) shows what outlived close.
 */
public final class EnduranceProbe {
    private static final int[] SMALL = {1, 7, 33, 257, 1000, 4097};
    private static final int LARGE_GPU = 1_000_000; // 16 MB of inputs and gradient: chunked on a 16 MiB device
    private static final int LARGE_CPU = 2_000_000;
    private static final int[] BUFFER_FLOATS = {64, 1000, 70_000, 300_000, 1_000_000};

    private EnduranceProbe() {
    }

    private static void emit(String key, Object value) {
        System.out.println(key + "=" + value);
    }

    private final SplittableRandom rnd = new SplittableRandom(42);
    private final LossEngine cpu = LossEngine.create(BackendChoice.CPU);
    private final LossEngine cuda = LossEngine.create(BackendChoice.CUDA);
    private final CudaBackend backend = (CudaBackend) cuda.backend();
    private final float[] x = random(LARGE_CPU, -3, 3);
    private final float[] t = random(LARGE_CPU, -3, 3);
    private final float[] p01 = random(LARGE_CPU, 0, 1);
    private final float[] logits = random(2000 * 100, -4, 4);
    private final int[] labels = new int[2000];
    private final List<PendingLoss> forgotten = new ArrayList<>();
    private long gpuCalls;
    private long cpuCalls;
    private long checked;
    private long mismatches;
    private String firstMismatch = "";

    public static void main(String[] args) throws Exception {
        long calls = Long.parseLong(args[0]);
        new EnduranceProbe().run(calls);
    }

    private void run(long calls) throws InterruptedException {
        for (int i = 0; i < labels.length; i++) {
            labels[i] = rnd.nextInt(100);
        }
        long start = System.nanoTime();
        // warm-up: every kind of call once (the large ones size the arena and the page-locked staging)
        for (int kind = 0; kind < 8; kind++) {
            call(kind, true);
        }
        long warm = Math.min(calls / 10, 1000);
        for (long i = 8; i < warm; i++) {
            call(rnd.nextInt(8), false);
        }
        settle();
        long[] warmHeld = backend.heldBytes();
        long warmDriver = backend.deviceBytesInUse();
        long warmBlocks = backend.poolBlocksHandedOut();
        long warmHeap = heapAfterGc();
        for (long i = warm; i < calls; i++) {
            call(rnd.nextInt(8), false);
        }
        settle();
        long[] endHeld = backend.heldBytes();
        emit("calls", calls);
        emit("gpuCalls", gpuCalls);
        emit("cpuCalls", cpuCalls);
        emit("checked", checked);
        emit("mismatches", mismatches);
        emit("firstMismatch", firstMismatch);
        emit("poolCap", backend.poolCap());
        emit("warm.driverDevice", warmDriver);
        emit("warm.heldDevice", warmHeld[0]);
        emit("warm.heldPinned", warmHeld[1]);
        emit("warm.poolBlocks", warmBlocks);
        emit("warm.heap", warmHeap);
        emit("end.driverDevice", backend.deviceBytesInUse());
        emit("end.heldDevice", endHeld[0]);
        emit("end.heldPinned", endHeld[1]);
        emit("end.poolCached", backend.poolCachedBytes());
        emit("end.poolBlocks", backend.poolBlocksHandedOut());
        emit("end.heap", heapAfterGc());
        emit("seconds", (System.nanoTime() - start) / 1e9);
        cuda.close();
        cpu.close();
        emit("done", "yes");
    }

    /** Lets the cleaner give back what the garbage collector found (pending values and buffers never closed). */
    private void settle() throws InterruptedException {
        forgotten.clear();
        for (int k = 0; k < 50 && backend.poolBlocksHandedOut() > 1; k++) {
            System.gc();
            Thread.sleep(20);
        }
        cuda.compute(Loss.of("mse"), Inputs.of(new float[]{1}, new float[]{0})); // reclaims deferred releases
    }

    private static long heapAfterGc() throws InterruptedException {
        Runtime rt = Runtime.getRuntime();
        for (int k = 0; k < 3; k++) {
            System.gc();
            Thread.sleep(10);
        }
        return rt.totalMemory() - rt.freeMemory();
    }

    private float[] random(int n, double lo, double hi) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            v[i] = (float) rnd.nextDouble(lo, hi);
        }
        return v;
    }

    private static float[] head(float[] a, int n) {
        return java.util.Arrays.copyOf(a, n);
    }

    /** A call of one kind: 0-2 CPU, 3 GPU sync, 4 GPU value-only, 5 GPU async, 6 GPU on device buffers, 7 GPU large. */
    private void call(int kind, boolean first) {
        boolean large = first || rnd.nextInt(400) == 0;
        int n = SMALL[rnd.nextInt(SMALL.length)];
        int loss = rnd.nextInt(5);
        switch (kind) {
            case 0, 1, 2 -> {
                cpuCalls++;
                int size = kind == 2 && large ? LARGE_CPU : n;
                cpu.compute(loss(loss), inputs(loss, size));
            }
            case 3 -> gpu(loss(loss), inputs(loss, n), false);
            case 4 -> gpu(loss(loss), inputs(loss, n), true);
            case 5 -> {
                gpuCalls++;
                Inputs in = inputs(loss, n);
                PendingLoss p = cuda.evaluateAsync(loss(loss), in);
                int r = rnd.nextInt(50);
                if (r == 0) {
                    forgotten.add(p); // left to the garbage collector's cleaner
                    if (forgotten.size() > 20) {
                        forgotten.clear();
                    }
                    return;
                }
                if (r < 20) {
                    check(loss(loss), in, p.value());
                }
                p.close();
            }
            case 6 -> deviceBuffers(n);
            default -> {
                if (large) {
                    gpu(Loss.of("mse"), Inputs.of(head(x, LARGE_GPU), head(t, LARGE_GPU)), false);
                } else {
                    gpu(loss(loss), inputs(loss, n), false);
                }
            }
        }
    }

    private void gpu(Loss loss, Inputs in, boolean valueOnly) {
        gpuCalls++;
        LossResult r = valueOnly ? cuda.evaluate(loss, in) : cuda.compute(loss, in);
        check(loss, in, r.value());
    }

    private void check(Loss loss, Inputs in, double value) {
        if (gpuCalls % 13 != 0) {
            return;
        }
        checked++;
        double e = cpu.evaluate(loss, in).value();
        if (!(Math.abs(value - e) <= 1e-6 * Math.max(1, Math.abs(e)))) {
            if (mismatches++ == 0) {
                firstMismatch = loss.id() + ": " + value + " vs CPU " + e;
            }
        }
    }

    /** Device buffers from the pool (sizes around and above the 4 KiB slab limit), an mse on them, closed. */
    private void deviceBuffers(int n) {
        gpuCalls++;
        int floats = BUFFER_FLOATS[rnd.nextInt(BUFFER_FLOATS.length)];
        int m = Math.min(n, floats);
        DeviceBuffer a = cuda.allocateDevice(floats);
        DeviceBuffer b = cuda.allocateDevice(floats);
        DeviceBuffer g = cuda.allocateDevice(floats);
        a.copyFrom(head(x, m));
        b.copyFrom(head(t, m));
        Inputs in = Inputs.empty().with("input", a.tensor(m)).with("target", b.tensor(m)).gradientInto("input", g.tensor(m));
        double v = cuda.compute(Loss.of("mse").reduction(Reduction.SUM), in).value();
        check(Loss.of("mse").reduction(Reduction.SUM), Inputs.of(head(x, m), head(t, m)), v);
        a.close();
        b.close();
        if (rnd.nextInt(50) != 0) {
            g.close(); // otherwise left to the cleaner
        }
    }

    private static Loss loss(int k) {
        return switch (k) {
            case 0 -> Loss.of("mse");
            case 1 -> Loss.of("bce-logits");
            case 2 -> Loss.of("huber").reduction(Reduction.SUM);
            case 3 -> Loss.of("cross-entropy");
            default -> Loss.of("cosine-embedding");
        };
    }

    private Inputs inputs(int k, int n) {
        return switch (k) {
            case 0, 2 -> Inputs.of(head(x, n), head(t, n));
            case 1 -> Inputs.of(head(x, n), head(p01, n));
            case 3 -> {
                int rows = Math.max(1, Math.min(2000, n / 100));
                yield Inputs.rows(head(logits, rows * 100), rows, 100, java.util.Arrays.copyOf(labels, rows));
            }
            default -> {
                int rows = Math.max(1, Math.min(256, n / 16));
                float[] y = new float[rows];
                for (int i = 0; i < rows; i++) {
                    y[i] = i % 3 == 0 ? -1 : 1;
                }
                yield Inputs.empty().with("x1", Tensor.of(head(x, rows * 16), rows, 16))
                        .with("x2", Tensor.of(head(t, rows * 16), rows, 16)).with("target", Tensor.of(y, rows));
            }
        };
    }
}
