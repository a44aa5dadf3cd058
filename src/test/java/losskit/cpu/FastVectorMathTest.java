package losskit.cpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.io.IOException;
import java.lang.reflect.Method;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import java.util.function.IntFunction;
import losskit.api.HalfFloats;
import losskit.api.HalfFloatsTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@link FastVectorMath} against {@link FastMath} and {@link HalfFloats} bit for bit (NaN ↔ NaN) at the
 * preferred lane count, over {@link FastMathTest#EDGES} at every lane position and random inputs (random bit
 * patterns and each function's interesting range); the 16-bit widenings over all 65536 patterns. The same
 * checks (fewer random inputs) run again in child JVMs whose vectors are 128 and 64 bits wide
 * ({@code -XX:MaxVectorSize}), so the bits are checked at 4 and 2 lanes too.
 */
public class FastVectorMathTest {

    private static final int L = FastVectorMath.L;
    /** Random inputs per function (the child JVMs of {@link #sameBitsAtOtherLaneCounts} use fewer). */
    private static final int RANDOM = Integer.getInteger("losskit.test.fastVectorRandom", 1 << 20);

    interface Pass {
        void run(float[] in, int inOff, float[] out, int outOff, int n);
    }

    interface Scalar {
        float at(float x);
    }

    /** EDGES at every lane position, then random bit patterns and uniform values in [lo, hi). */
    static float[] inputs(long seed, float lo, float hi, int n) {
        SplittableRandom rnd = new SplittableRandom(seed);
        float[] e = FastMathTest.EDGES;
        int edges = e.length * L;
        float[] x = new float[(edges + n + L - 1) / L * L];
        for (int i = 0; i < edges; i++) {
            x[i] = e[(i / L + i % L) % e.length];
        }
        for (int i = edges; i < x.length; i++) {
            x[i] = (i & 1) == 0 ? Float.intBitsToFloat(rnd.nextInt()) : (float) rnd.nextDouble(lo, hi);
        }
        return x;
    }

    private static void sameBits(String name, float[] in, float[] got, Scalar scalar, int offset) {
        for (int i = 0; i < got.length - offset; i++) {
            float expected = scalar.at(in[i + offset]);
            float g = got[i + offset];
            boolean ok = Float.isNaN(expected) ? Float.isNaN(g) : Float.floatToRawIntBits(expected) == Float.floatToRawIntBits(g);
            if (!ok) {
                fail(String.format("%s(%a) at index %d: vector %a, scalar %a (lanes %d)", name, in[i + offset], i + offset, g,
                        expected, L));
            }
        }
    }

    private static void check(String name, Pass pass, Scalar scalar, float lo, float hi, long seed) {
        float[] in = inputs(seed, lo, hi, RANDOM);
        float[] out = new float[in.length];
        pass.run(in, 0, out, 0, in.length);
        sameBits(name, in, out, scalar, 0);
        // offsets that are not multiples of L
        float[] out2 = new float[in.length];
        int n = (in.length - 3) / L * L;
        pass.run(in, 3, out2, 3, n);
        for (int i = 3; i < 3 + n; i++) {
            float expected = scalar.at(in[i]);
            if (Float.isNaN(expected) ? !Float.isNaN(out2[i]) : Float.floatToRawIntBits(expected) != Float.floatToRawIntBits(out2[i])) {
                fail(name + " at offset 3, index " + i);
            }
        }
    }

    @Test
    void exp() {
        check("exp", FastVectorMath::exp, FastMath::exp, -110, 95, 1);
    }

    @Test
    void expm1() {
        check("expm1", FastVectorMath::expm1, FastMath::expm1, -2, 2, 2);
        check("expm1", FastVectorMath::expm1, FastMath::expm1, -40, 95, 3);
    }

    @Test
    void log() {
        check("log", FastVectorMath::log, FastMath::log, 0, 3, 4);
    }

    @Test
    void log1p() {
        check("log1p", FastVectorMath::log1p, FastMath::log1p, -1, 2, 5);
    }

    @Test
    void logPair() {
        float[] x = inputs(9, 0, 3, RANDOM);
        float[] hi = new float[x.length];
        float[] lo = new float[x.length];
        FastVectorMath.logPair(x, 0, hi, 0, lo, 0, x.length);
        sameBits("logPair hi", x, hi, v -> FastMath.hiOf(FastMath.logPair(v)), 0);
        sameBits("logPair lo", x, lo, v -> FastMath.loOf(FastMath.logPair(v)), 0);
        // offsets that are not multiples of L, lo in place over x
        float[] hi2 = new float[x.length];
        float[] lo2 = x.clone();
        int n = (x.length - 3) / L * L;
        FastVectorMath.logPair(lo2, 3, hi2, 3, lo2, 3, n);
        for (int i = 3; i < 3 + n; i++) {
            long p = FastMath.logPair(x[i]);
            assertTrue(Float.floatToRawIntBits(FastMath.hiOf(p)) == Float.floatToRawIntBits(hi2[i])
                    && Float.floatToRawIntBits(FastMath.loOf(p)) == Float.floatToRawIntBits(lo2[i])
                    || Float.isNaN(FastMath.hiOf(p)) && Float.isNaN(hi2[i]) && Float.isNaN(lo2[i]),
                    "logPair at offset 3, index " + i + ": " + Float.toHexString(x[i]));
        }
    }

    @Test
    void tanh() {
        check("tanh", FastVectorMath::tanh, FastMath::tanh, -3, 3, 6);
    }

    @Test
    void pow() {
        float[] ys = {0f, -0f, 1f, 0.5f, 2f, 2.5f, -1.75f, 0x1.3p-3f, 33.3f, -100.7f, 1e-30f, 1e30f, Float.MIN_VALUE,
            Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY, Float.NaN};
        float[] x = inputs(7, 0, 2, RANDOM / 16);
        for (int i = 0; i < x.length; i += 3) {
            x[i] = Math.abs(x[i]);   // mostly the domain x ≥ 0, some negative x and NaN
        }
        float[] out = new float[x.length];
        for (float y : ys) {
            FastVectorMath.pow(x, 0, y, out, 0, x.length);
            sameBits("pow(x, " + y + ")", x, out, v -> FastMath.pow(v, y), 0);
        }
        SplittableRandom rnd = new SplittableRandom(8);
        for (int k = 0; k < 16; k++) {
            float y = k % 2 == 0 ? Float.intBitsToFloat(rnd.nextInt()) : (float) rnd.nextDouble(-10, 10);
            FastVectorMath.pow(x, 0, y, out, 0, x.length);
            sameBits("pow(x, " + y + ")", x, out, v -> FastMath.pow(v, y), 0);
        }
    }

    private static void widenAll(boolean bf16, IntFunction<Float> scalar) {
        short[] h = new short[65536];
        for (int i = 0; i < h.length; i++) {
            h[i] = (short) i;
        }
        float[] out = new float[h.length];
        if (bf16) {
            FastVectorMath.widenBf16(h, 0, out, 0, h.length);
        } else {
            FastVectorMath.widenF16(h, 0, out, 0, h.length);
        }
        for (int i = 0; i < h.length; i++) {
            assertEquals(Float.floatToRawIntBits(scalar.apply(i)), Float.floatToRawIntBits(out[i]),
                    (bf16 ? "bf16 " : "f16 ") + Integer.toHexString(i));
        }
    }

    @Test
    void widening() {
        widenAll(true, i -> HalfFloats.bf16ToFloat((short) i));
        widenAll(false, i -> HalfFloats.f16ToFloat((short) i));
    }

    @Test
    void narrowing() {
        float[] in = HalfFloatsTest.narrowingInputs(9, RANDOM);
        in = java.util.Arrays.copyOf(in, in.length / L * L);
        short[] b = new short[in.length];
        short[] f = new short[in.length];
        FastVectorMath.narrowBf16(in, 0, b, 0, in.length);
        FastVectorMath.narrowF16(in, 0, f, 0, in.length);
        for (int i = 0; i < in.length; i++) {
            assertEquals(HalfFloats.floatToBf16(in[i]), b[i], "bf16 of " + Float.toHexString(in[i]));
            assertEquals(HalfFloats.floatToF16(in[i]), f[i], "f16 of " + Float.toHexString(in[i]));
        }
    }

    @Test
    void sameBitsAtOtherLaneCounts(@TempDir Path tmp) throws IOException, InterruptedException {
        String java = ProcessHandle.current().info().command().orElse("java");
        String cp = System.getProperty("surefire.test.class.path", System.getProperty("java.class.path"));
        for (int bytes : new int[]{16, 8}) {
            Path log = tmp.resolve("lanes-" + bytes + ".log");
            Process p = new ProcessBuilder(List.of(java, "--add-modules", "jdk.incubator.vector", "-XX:MaxVectorSize=" + bytes,
                    "-Dlosskit.test.fastVectorRandom=" + (1 << 14), "-cp", cp, OtherLanes.class.getName()))
                    .redirectErrorStream(true).redirectOutput(log.toFile()).start();
            if (!p.waitFor(120, TimeUnit.SECONDS)) {
                p.destroyForcibly();
                fail("child JVM did not finish: " + Files.readString(log));
            }
            String out = Files.readString(log, StandardCharsets.UTF_8);
            assertEquals(0, p.exitValue(), out);
            assertTrue(out.contains("all passed at " + Math.min(L, bytes / 4) + " lanes"), out);
        }
    }

    /** The child: every other test of this class, at the lane count its JVM prefers. */
    public static final class OtherLanes {
        public static void main(String[] args) throws Exception {
            FastVectorMathTest t = new FastVectorMathTest();
            for (Method m : FastVectorMathTest.class.getDeclaredMethods()) {
                if (m.isAnnotationPresent(Test.class) && m.getParameterCount() == 0) {
                    m.setAccessible(true);
                    m.invoke(t);
                }
            }
            System.out.println("all passed at " + L + " lanes");
        }
    }
}
