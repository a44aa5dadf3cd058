package losskit.cpu;

/**
 * Error of a float result in ulps of the float grid around a float64 reference (an independent oracle:
 * {@link StrictMath}'s fdlibm functions, accurate to ~1 ulp of float64, i.e. 2⁻²⁹ of a float ulp).
 */
final class Ulps {
    private Ulps() {
    }

    /**
     * |got − ref| in units of the spacing of the floats around ref (the spacing below a power of two when ref
     * lies below it). 0 when both are the same infinity or both NaN; +∞ when exactly one is NaN or infinite
     * and the other is not where the correctly rounded result is.
     */
    static double error(float got, double ref) {
        if (Double.isNaN(ref) || Float.isNaN(got)) {
            return Double.isNaN(ref) && Float.isNaN(got) ? 0 : Double.POSITIVE_INFINITY;
        }
        float cr = (float) ref;
        if (Float.isInfinite(got) || Float.isInfinite(cr)) {
            return got == cr ? 0 : Float.isInfinite(got) ? Double.POSITIVE_INFINITY
                    : error(got, Math.copySign((double) Float.MAX_VALUE, ref));
        }
        double a = Math.abs(ref);
        float c = Math.abs(cr);
        double spacing = a < c ? c - Math.nextDown(c) : Math.nextUp(c) - c;
        if (Float.isInfinite(Math.nextUp(c))) {
            spacing = c - Math.nextDown(c);
        }
        return Math.abs(got - ref) / spacing;
    }
}
