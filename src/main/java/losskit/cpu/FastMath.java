package losskit.cpu;

/** Placeholder until the fastmath branch lands (its FastMath replaces this file). */
final class FastMath {
    private FastMath() {
    }

    static float exp(float x) {
        return (float) Math.exp(x);
    }

    static float expm1(float x) {
        return (float) Math.expm1(x);
    }

    static float log(float x) {
        return (float) Math.log(x);
    }

    static float log1p(float x) {
        return (float) Math.log1p(x);
    }

    static float tanh(float x) {
        return (float) Math.tanh(x);
    }

    static float pow(float x, float y) {
        return (float) Math.pow(x, y);
    }

    static float scalb(float x, int k) {
        return Math.scalb(x, k);
    }
}
