package losskit.emu;

import static jcuda.driver.JCudaDriver.cuCtxDestroy;
import static jcuda.driver.JCudaDriver.cuCtxSynchronize;
import static jcuda.driver.JCudaDriver.cuLaunchKernel;
import static jcuda.driver.JCudaDriver.cuMemAlloc;
import static jcuda.driver.JCudaDriver.cuMemFree;
import static jcuda.driver.JCudaDriver.cuMemcpyDtoH;
import static jcuda.driver.JCudaDriver.cuMemcpyHtoD;
import static jcuda.driver.JCudaDriver.cuModuleGetFunction;
import static jcuda.driver.JCudaDriver.cuModuleLoadData;
import static losskit.emu.EmuSupport.image;
import static losskit.emu.EmuSupport.ptxText;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.function.IntFunction;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import jcuda.Pointer;
import jcuda.driver.CUcontext;
import jcuda.driver.CUdeviceptr;
import jcuda.driver.CUfunction;
import jcuda.driver.CUmodule;
import losskit.api.HalfFloats;
import losskit.api.HalfFloatsTest;
import losskit.cpu.FastMath;
import losskit.cpu.FastMathTest;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The CUDA twins in {@code cuda-kernels/include/fast_math.cuh} and {@code half.cuh}, compiled by g++ for the
 * emulated driver (and by nvcc to the PTX it loads), against {@link FastMath} and {@link HalfFloats} bit for
 * bit (NaN ↔ NaN): the probe kernels of {@code cuda-kernels/emu/test/fast_math_probe.cu} applied to edge
 * cases and ≥ 1M random inputs per function (the pair functions: hi and lo both), the 16-bit widenings to all
 * 65536 patterns.
 */
class FastMathEmulatedTest {

    private static final int BLOCK = 256;
    private static final int GRID = 64;
    private static final int RANDOM = 1 << 20;

    private CUcontext context;
    private CUmodule module;
    private final List<CUdeviceptr> allocations = new ArrayList<>();

    @BeforeEach
    void setUp() {
        EmuSupport.requireEmulator();
        context = EmuSupport.newContext();
        module = new CUmodule();
        cuModuleLoadData(module, image(ptxText("fast_math_probe")));
    }

    @AfterEach
    void tearDown() {
        for (CUdeviceptr p : allocations) {
            cuMemFree(p);
        }
        if (context != null) {
            cuCtxDestroy(context);
        }
    }

    private CUfunction function(String name) {
        CUfunction f = new CUfunction();
        cuModuleGetFunction(f, module, name);
        return f;
    }

    private CUdeviceptr upload(Pointer host, long bytes) {
        CUdeviceptr d = new CUdeviceptr();
        cuMemAlloc(d, bytes);
        allocations.add(d);
        if (host != null) {
            cuMemcpyHtoD(d, host, bytes);
        }
        return d;
    }

    private void launch(String kernel, Pointer... params) {
        cuLaunchKernel(function(kernel), GRID, 1, 1, BLOCK, 1, 1, 0, null, Pointer.to(params), null);
        cuCtxSynchronize();
    }

    private static boolean same(float expected, float got) {
        return Float.isNaN(expected) ? Float.isNaN(got) : Float.floatToRawIntBits(expected) == Float.floatToRawIntBits(got);
    }

    /** FastMathTest.EDGES, then random bit patterns and uniform values in [lo, hi). */
    private static float[] inputs(long seed, double lo, double hi) {
        float[] e = FastMathTest.EDGES;
        float[] x = new float[e.length + RANDOM];
        System.arraycopy(e, 0, x, 0, e.length);
        SplittableRandom rnd = new SplittableRandom(seed);
        for (int i = e.length; i < x.length; i++) {
            x[i] = (i & 1) == 0 ? Float.intBitsToFloat(rnd.nextInt()) : (float) rnd.nextDouble(lo, hi);
        }
        return x;
    }

    private float[] unary(int fn, float[] x) {
        int n = x.length;
        CUdeviceptr dx = upload(Pointer.to(x), 4L * n);
        CUdeviceptr dout = upload(null, 4L * n);
        launch("fm_probe_unary", Pointer.to(dx), Pointer.to(dout), Pointer.to(new long[]{n}), Pointer.to(new int[]{fn}));
        float[] out = new float[n];
        cuMemcpyDtoH(Pointer.to(out), dout, 4L * n);
        return out;
    }

    private static void compare(String name, int n, IntFunction<String> input, IntFunction<Float> expected, float[] got) {
        for (int i = 0; i < n; i++) {
            float e = expected.apply(i);
            if (!same(e, got[i])) {
                fail(String.format("%s(%s) at index %d: CUDA (emulated) %a, Java %a", name, input.apply(i), i, got[i], e));
            }
        }
    }

    private void checkUnary(String name, int fn, FloatOp java, double lo, double hi, long seed) {
        float[] x = inputs(seed, lo, hi);
        float[] got = unary(fn, x);
        compare(name, x.length, i -> Float.toHexString(x[i]), i -> java.at(x[i]), got);
    }

    interface FloatOp {
        float at(float x);
    }

    @Test
    void exp() {
        checkUnary("lk_expf", 0, FastMath::exp, -110, 95, 1);
    }

    @Test
    void expm1() {
        checkUnary("lk_expm1f", 1, FastMath::expm1, -2, 2, 2);
    }

    @Test
    void log() {
        checkUnary("lk_logf", 2, FastMath::log, 0, 3, 3);
    }

    @Test
    void log1p() {
        checkUnary("lk_log1pf", 3, FastMath::log1p, -1, 2, 4);
    }

    @Test
    void tanh() {
        checkUnary("lk_tanhf", 4, FastMath::tanh, -3, 3, 5);
    }

    @Test
    void pow() {
        float[] e = FastMathTest.EDGES;
        int edgePairs = e.length * e.length;
        int n = edgePairs + RANDOM;
        float[] x = new float[n];
        float[] y = new float[n];
        for (int i = 0; i < edgePairs; i++) {
            x[i] = e[i / e.length];
            y[i] = e[i % e.length];
        }
        SplittableRandom rnd = new SplittableRandom(6);
        for (int i = edgePairs; i < n; i++) {
            switch (i % 3) {
                case 0 -> {
                    x[i] = Math.abs(Float.intBitsToFloat(rnd.nextInt()));
                    y[i] = Float.intBitsToFloat(rnd.nextInt());
                }
                case 1 -> {
                    x[i] = (float) rnd.nextDouble(0, 1);
                    y[i] = (float) rnd.nextDouble(0, 5);
                }
                default -> {
                    x[i] = Float.intBitsToFloat(rnd.nextInt(1, 0x7f80_0000));
                    double l = Math.log(x[i]);
                    y[i] = l == 0 ? 1f : (float) (rnd.nextDouble(-104, 89) / l);
                }
            }
        }
        CUdeviceptr dx = upload(Pointer.to(x), 4L * n);
        CUdeviceptr dy = upload(Pointer.to(y), 4L * n);
        CUdeviceptr dout = upload(null, 4L * n);
        launch("fm_probe_pow", Pointer.to(dx), Pointer.to(dy), Pointer.to(dout), Pointer.to(new long[]{n}));
        float[] got = new float[n];
        cuMemcpyDtoH(Pointer.to(got), dout, 4L * n);
        compare("lk_powf", n, i -> Float.toHexString(x[i]) + ", " + Float.toHexString(y[i]), i -> FastMath.pow(x[i], y[i]), got);
    }

    @Test
    void scalb() {
        float[] e = FastMathTest.EDGES;
        int[] ks = {Integer.MIN_VALUE, -100000, -401, -400, -277, -254, -253, -150, -149, -127, -126, -125, -24, -1, 0, 1, 24,
            127, 128, 253, 254, 255, 400, 401, 100000, Integer.MAX_VALUE};
        int edgePairs = e.length * ks.length;
        int n = edgePairs + RANDOM;
        float[] x = new float[n];
        int[] k = new int[n];
        for (int i = 0; i < edgePairs; i++) {
            x[i] = e[i / ks.length];
            k[i] = ks[i % ks.length];
        }
        SplittableRandom rnd = new SplittableRandom(7);
        for (int i = edgePairs; i < n; i++) {
            x[i] = Float.intBitsToFloat(rnd.nextInt());
            k[i] = rnd.nextInt(-330, 331);
        }
        CUdeviceptr dx = upload(Pointer.to(x), 4L * n);
        CUdeviceptr dk = upload(Pointer.to(k), 4L * n);
        CUdeviceptr dout = upload(null, 4L * n);
        launch("fm_probe_scalb", Pointer.to(dx), Pointer.to(dk), Pointer.to(dout), Pointer.to(new long[]{n}));
        float[] got = new float[n];
        cuMemcpyDtoH(Pointer.to(got), dout, 4L * n);
        compare("lk_scalbf", n, i -> Float.toHexString(x[i]) + ", " + k[i], i -> FastMath.scalb(x[i], k[i]), got);
    }

    /** The probe's fm_probe_pair: (hi, lo) of function fn for x (and xl, exp's low part) into out[0], out[1]. */
    private float[][] pair(int fn, float[] x, float[] xl) {
        int n = x.length;
        CUdeviceptr dx = upload(Pointer.to(x), 4L * n);
        CUdeviceptr dxl = upload(Pointer.to(xl), 4L * n);
        CUdeviceptr dhi = upload(null, 4L * n);
        CUdeviceptr dlo = upload(null, 4L * n);
        launch("fm_probe_pair", Pointer.to(dx), Pointer.to(dxl), Pointer.to(dhi), Pointer.to(dlo), Pointer.to(new long[]{n}),
                Pointer.to(new int[]{fn}));
        float[][] out = new float[2][n];
        cuMemcpyDtoH(Pointer.to(out[0]), dhi, 4L * n);
        cuMemcpyDtoH(Pointer.to(out[1]), dlo, 4L * n);
        return out;
    }

    private static void comparePair(String name, int n, IntFunction<String> input, IntFunction<Long> expected, float[][] got) {
        for (int i = 0; i < n; i++) {
            long e = expected.apply(i);
            float hi = FastMath.hiOf(e);
            float lo = FastMath.loOf(e);
            if (!same(hi, got[0][i]) || !same(lo, got[1][i])) {
                fail(String.format("%s(%s) at index %d: CUDA (emulated) %a + %a, Java %a + %a", name, input.apply(i), i, got[0][i],
                        got[1][i], hi, lo));
            }
        }
    }

    @Test
    void logPair() {
        float[] x = inputs(31, 0, 3);
        float[][] got = pair(0, x, new float[x.length]);
        comparePair("lk_log_pairf", x.length, i -> Float.toHexString(x[i]), i -> FastMath.logPair(x[i]), got);
    }

    @Test
    void log1pPair() {
        float[] x = inputs(32, -1, 2);
        float[][] got = pair(1, x, new float[x.length]);
        comparePair("lk_log1p_pairf", x.length, i -> Float.toHexString(x[i]), i -> FastMath.log1pPair(x[i]), got);
    }

    /**
     * lk_exp_pairf: every edge value × every edge value (special and unnormalised pairs), then random pairs —
     * floats (xl = 0), |xl| within an ulp of xh in exp's range, TwoSum differences, and two random bit patterns.
     */
    @Test
    void expPair() {
        float[] e = FastMathTest.EDGES;
        int edgePairs = e.length * e.length;
        int n = edgePairs + RANDOM;
        float[] xh = new float[n];
        float[] xl = new float[n];
        for (int i = 0; i < edgePairs; i++) {
            xh[i] = e[i / e.length];
            xl[i] = e[i % e.length];
        }
        SplittableRandom rnd = new SplittableRandom(33);
        for (int i = edgePairs; i < n; i++) {
            switch (i % 4) {
                case 0 -> xh[i] = (float) rnd.nextDouble(-110, 95);
                case 1 -> {
                    xh[i] = (float) rnd.nextDouble(-110, 95);
                    xl[i] = (float) (Math.ulp(xh[i]) * rnd.nextDouble(-1, 1));
                }
                case 2 -> {
                    float a = (float) rnd.nextDouble(-60, 60);
                    float m = (float) rnd.nextDouble(-60, 60);
                    xh[i] = a - m;
                    float bb = xh[i] - a;
                    xl[i] = (a - (xh[i] - bb)) + (-m - bb);
                }
                default -> {
                    xh[i] = Float.intBitsToFloat(rnd.nextInt());
                    xl[i] = Float.intBitsToFloat(rnd.nextInt());
                }
            }
        }
        float[][] got = pair(2, xh, xl);
        comparePair("lk_exp_pairf", n, i -> Float.toHexString(xh[i]) + ", " + Float.toHexString(xl[i]),
                i -> FastMath.expPair(xh[i], xl[i]), got);
    }

    /**
     * What the emulator cannot see: on a GPU, a float operation without an explicit rounding mode (what a
     * plain a*b+c compiles to) may be contracted into an fma by ptxas, and approximate instructions differ
     * from IEEE. nvcc's PTX of the probe must have every f32 add/sub/mul/fma/div with .rn, and no .approx,
     * .ftz, ex2 or lg2.
     */
    @Test
    void ptxHasOnlyCorrectlyRoundedFloatOperations() {
        String ptx = ptxText("fast_math_probe");
        Matcher m = Pattern.compile("(?m)^\\s*(?:@%p\\d+\\s+)?((add|sub|mul|fma|div|neg|abs|ex2|lg2|rcp|sqrt|rsqrt)((?:\\.\\w+)*))\\s").matcher(ptx);
        int checked = 0;
        while (m.find()) {
            String op = m.group(1);
            if (!op.endsWith(".f32")) {
                continue;
            }
            checked++;
            String base = m.group(2);
            assertTrue(!op.contains(".approx") && !op.contains(".ftz") && !base.equals("ex2") && !base.equals("lg2")
                    && !base.equals("rcp") && !base.equals("rsqrt"), "approximate or flushing instruction in the probe: " + op);
            if (!base.equals("neg") && !base.equals("abs")) {
                assertTrue(op.contains(".rn."), "f32 operation without an explicit .rn (contractible by ptxas): " + op);
            }
        }
        assertTrue(checked > 100, "only " + checked + " f32 instructions found in fast_math_probe.ptx");
    }

    /**
     * nvcc contracts a plain a*b+c into fma.rn.f32, which the .rn check above cannot tell from an intended
     * __fmaf_rn. scripts/build-emu.sh also compiles the probe with -fmad=false: the two PTX are the same
     * exactly when fast_math.cuh and half.cuh leave nvcc nothing to contract.
     */
    @Test
    void ptxIsTheSameWithoutFmaContraction() {
        String contracted = ptxText("fast_math_probe");
        String plain = ptxText("fast_math_probe.nofmad");
        if (!contracted.equals(plain)) {
            String[] a = contracted.split("\n");
            String[] b = plain.split("\n");
            for (int i = 0; i < Math.min(a.length, b.length); i++) {
                if (!a[i].equals(b[i])) {
                    fail("fast_math_probe.ptx differs with -fmad=false at line " + (i + 1) + ": '" + a[i].trim() + "' vs '"
                            + b[i].trim() + "' (a float expression written without the __f*_rn intrinsics)");
                }
            }
            fail("fast_math_probe.ptx differs in length with -fmad=false");
        }
    }

    @Test
    void wideningEveryPattern() {
        short[] h = new short[65536];
        for (int i = 0; i < h.length; i++) {
            h[i] = (short) i;
        }
        CUdeviceptr dh = upload(Pointer.to(h), 2L * h.length);
        CUdeviceptr dout = upload(null, 4L * h.length);
        for (int bf16 = 0; bf16 < 2; bf16++) {
            launch("fm_probe_widen", Pointer.to(dh), Pointer.to(dout), Pointer.to(new long[]{h.length}), Pointer.to(new int[]{bf16}));
            float[] got = new float[h.length];
            cuMemcpyDtoH(Pointer.to(got), dout, 4L * h.length);
            boolean b = bf16 == 1;
            for (int i = 0; i < h.length; i++) {
                float expected = b ? HalfFloats.bf16ToFloat(h[i]) : HalfFloats.f16ToFloat(h[i]);
                // widening keeps NaN payloads: compare the bits, NaN included
                if (Float.floatToRawIntBits(expected) != Float.floatToRawIntBits(got[i])) {
                    fail(String.format("%s widening of %04x: CUDA %08x, Java %08x", b ? "bf16" : "f16", i,
                            Float.floatToRawIntBits(got[i]), Float.floatToRawIntBits(expected)));
                }
            }
        }
    }

    @Test
    void narrowing() {
        float[] x = HalfFloatsTest.narrowingInputs(8, RANDOM);
        int n = x.length;
        CUdeviceptr dx = upload(Pointer.to(x), 4L * n);
        CUdeviceptr dout = upload(null, 2L * n);
        for (int bf16 = 0; bf16 < 2; bf16++) {
            launch("fm_probe_narrow", Pointer.to(dx), Pointer.to(dout), Pointer.to(new long[]{n}), Pointer.to(new int[]{bf16}));
            short[] got = new short[n];
            cuMemcpyDtoH(Pointer.to(got), dout, 2L * n);
            boolean b = bf16 == 1;
            for (int i = 0; i < n; i++) {
                short expected = b ? HalfFloats.floatToBf16(x[i]) : HalfFloats.floatToF16(x[i]);
                if (expected != got[i]) {
                    fail(String.format("%s narrowing of %a: CUDA %04x, Java %04x", b ? "bf16" : "f16", x[i], got[i] & 0xFFFF,
                            expected & 0xFFFF));
                }
            }
        }
    }
}
