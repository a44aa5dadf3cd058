package losskit.cpu;

/** Numerically stable building blocks shared by the term functions (twins of cuda-kernels/include/stable_math.cuh). */
final class StableMath {
    static final double LN2 = Math.log(2);

    private StableMath() {
    }

    /** log(1 + e^x) without overflow: max(x, 0) + log1p(e^{−|x|}). */
    static double softplus(double x) {
        return Math.max(x, 0) + Math.log1p(Math.exp(-Math.abs(x)));
    }

    /** 1/(1 + e^{−x}) without overflow for large |x|. */
    static double sigmoid(double x) {
        if (x >= 0) {
            return 1 / (1 + Math.exp(-x));
        }
        double e = Math.exp(x);
        return e / (1 + e);
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
