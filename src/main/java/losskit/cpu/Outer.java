package losskit.cpu;

import java.nio.FloatBuffer;
import losskit.api.LossDefinition;
import losskit.api.Partial;
import losskit.api.ValidatedCall;

/** Applies the derivative of a loss's outer function (rmse's √) to the gradient, once the mean is known. */
final class Outer {
    private Outer() {
    }

    static void applyToGradient(ValidatedCall call, Partial partial) {
        if (call.loss().definition().outer() != LossDefinition.Outer.SQRT) {
            return;
        }
        double root = partial.value();
        // d√m/dm = 1/(2√m); LOSSES.md sets the gradient to 0 when rmse = 0
        // zero total weight: NaN value, all-zero gradient (LOSSES.md), whatever the outer function
        double k = root > 0 ? 0.5 / root : root == 0 || partial.sumWeight() == 0 ? 0 : Double.NaN;
        for (int s = 0; s < call.slotCount(); s++) {
            FloatBuffer g = call.gradient(s);
            if (g == null) {
                continue;
            }
            for (int i = 0; i < g.limit(); i++) {
                g.put(i, (float) (g.get(i) * k));
            }
        }
    }
}
