package losskit.cpu;

/**
 * Whether the vector twins ({@link VectorTerms}) run, decided when a {@link CpuBackend} is built.
 *
 * <p>The JDK Vector API is an incubator module: it is only resolved when the JVM is started with
 * {@code --add-modules jdk.incubator.vector}. Without it (the default for a library user) LossKit runs the
 * scalar term functions and says so in {@link CpuBackend#describe()}. The system property
 * {@value #PROPERTY}{@code =false} forces the scalar path (the tests run both). No class that names a
 * vector type is loaded unless the module is present.
 */
final class Simd {
    /** {@code losskit.simd}: {@code false} forces the scalar path; anything else means "when available". */
    static final String PROPERTY = "losskit.simd";
    static final String MODULE = "jdk.incubator.vector";

    /** The vector width in bits, or 0 for the scalar path. */
    final int bits;
    /** Why this path, for {@link CpuBackend#describe()}. */
    final String reason;

    private Simd(int bits, String reason) {
        this.bits = bits;
        this.reason = reason;
    }

    boolean enabled() {
        return bits > 0;
    }

    static Simd detect() {
        if ("false".equalsIgnoreCase(System.getProperty(PROPERTY, "").trim())) {
            return new Simd(0, "scalar (" + PROPERTY + "=false)");
        }
        if (ModuleLayer.boot().findModule(MODULE).isEmpty()) {
            return new Simd(0, "scalar (" + MODULE + " not present; run java with --add-modules " + MODULE
                    + " for the vector path)");
        }
        try {
            int bits = VectorTerms.selfTest();
            return new Simd(bits, "vector " + bits + "-bit (" + MODULE + ", " + bits / 64 + " float64 lanes)");
        } catch (Throwable e) {
            // an API change in a later JDK or a JIT problem: the scalar path is always correct
            return new Simd(0, "scalar (" + MODULE + " failed its self-test: " + e + ")");
        }
    }
}
