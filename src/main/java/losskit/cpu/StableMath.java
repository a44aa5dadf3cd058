package losskit.cpu;

/** Numerically stable building blocks shared by the term functions (twins of cuda-kernels/include/stable_math.cuh). */
final class StableMath {
    static final double LN2 = Math.log(2);

    private StableMath() {
    }

    /**
     * log(1 + z) for 0 ≤ z ≤ 1 (softplus and log-cosh feed it e^{−|x|}) through the intrinsic {@link Math#log}
     * rather than {@link Math#log1p} (a native call, 2× slower): u = fl(1 + z), then log u plus the rounding
     * error of u over u. For these z, u − 1 and z − (u − 1) are exact, so the result is within a few ulps.
     */
    static double log1pUnit(double z) {
        double u = 1 + z;
        return Math.log(u) + (z - (u - 1)) / u;
    }

    /** log cosh e takes its Taylor series below this |e|, where |e| + log1p(e^{−2|e|}) − ln 2 cancels. */
    static final double LOG_COSH_SMALL = 0.125;

    /**
     * log cosh e for |e| ≤ 1/8: z·P(z), z = e², the Taylor series to e¹⁶ (Σ 2^{2n}(2^{2n}−1)B_{2n} e^{2n}/(2n·(2n)!);
     * truncation < 3e-19 relative). The closed form |e| + log1p(e^{−2|e|}) − ln 2 subtracts ln 2 from a sum near
     * it and keeps only the absolute accuracy ~1e-16: at e = 1e-8, l ≈ 5e-17 came out 35 % wrong.
     */
    static double logCoshSmall(double e) {
        double z = e * e;
        double p = -929569.0 / 10216206000.0;
        p = p * z + 10922.0 / 42567525.0;
        p = p * z - 691.0 / 935550.0;
        p = p * z + 31.0 / 14175.0;
        p = p * z - 17.0 / 2520.0;
        p = p * z + 1.0 / 45.0;
        p = p * z - 1.0 / 12.0;
        p = p * z + 0.5;
        return z * p;
    }

    /**
     * σ(x) from q = e^{−|x|} (shared with softplus by the logit losses): 1/(1 + q) for x ≥ 0, q/(1 + q)
     * below; never overflows.
     */
    static double sigmoidFromQ(double x, double q) {
        return (x >= 0 ? 1 : q) / (1 + q);
    }

    /** PyTorch's binary cross-entropy of a probability: logs clamped at −100 so 0·log 0 stays finite. */
    static double bce(double p, double t) {
        double logP = Math.max(Math.log(p), -100);
        double log1mP = Math.max(Math.log1p(-p), -100);
        return -(t * logP + (1 - t) * log1mP);
    }

    /** PyTorch's {@code xlogy}: x·log y, 0 where x = 0. */
    static double xlogy(double x, double y) {
        return x == 0 && !Double.isNaN(y) ? 0 : x * Math.log(y);
    }
}
