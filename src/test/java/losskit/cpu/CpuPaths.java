package losskit.cpu;

import losskit.api.BackendChoice;
import losskit.api.LossEngine;
import losskit.api.Precision;

/** Engines on each CPU path, whatever the JVM was started with (test support). */
public final class CpuPaths {
    private CpuPaths() {
    }

    /** Whether this JVM can run the vector path (the build's test JVM gets {@code --add-modules jdk.incubator.vector}). */
    public static boolean vectorAvailable() {
        return ModuleLayer.boot().findModule("jdk.incubator.vector").isPresent();
    }

    /** The scalar path: {@code losskit.simd=false} while the backend is built. */
    public static LossEngine scalar(int threads) {
        return scalar(threads, Precision.FAST);
    }

    public static LossEngine scalar(int threads, Precision precision) {
        String old = System.getProperty("losskit.simd");
        System.setProperty("losskit.simd", "false");
        try {
            LossEngine e = LossEngine.builder().backend(BackendChoice.CPU).threads(threads).precision(precision).build();
            if (((CpuBackend) e.backend()).vectorized()) {
                throw new AssertionError("losskit.simd=false but " + e.backend().describe());
            }
            return e;
        } finally {
            if (old == null) {
                System.clearProperty("losskit.simd");
            } else {
                System.setProperty("losskit.simd", old);
            }
        }
    }

    /** The default path: vector when the module is present (asserted), else scalar. */
    public static LossEngine auto(int threads) {
        return auto(threads, Precision.FAST);
    }

    public static LossEngine auto(int threads, Precision precision) {
        LossEngine e = LossEngine.builder().backend(BackendChoice.CPU).threads(threads).precision(precision).build();
        if (vectorAvailable() && !((CpuBackend) e.backend()).vectorized()) {
            throw new AssertionError("jdk.incubator.vector is present but " + e.backend().describe());
        }
        return e;
    }
}
