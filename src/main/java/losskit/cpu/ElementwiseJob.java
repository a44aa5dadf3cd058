package losskit.cpu;

import java.nio.FloatBuffer;
import losskit.api.Param;
import losskit.api.ValidatedCall;

/**
 * Everything an elementwise block loop reads, resolved once per call. Final fields, so the JIT loads
 * them once per block, not once per element.
 */
final class ElementwiseJob {
    final ElementwiseTerm term;
    /** Slots: input, target, the optional third slot (gaussian-nll's var), weights; null where absent. */
    final FloatBuffer x;
    final FloatBuffer t;
    final FloatBuffer v;
    final FloatBuffer w;
    /** Gradient destinations of input and of the third slot, per-element losses under NONE; null where not wanted. */
    final FloatBuffer gx;
    final FloatBuffer gv;
    final FloatBuffer out;
    /** bce-logits' posWeight: {@code aux} is {@code posWeight[i % length]}, or {@link #auxConstant} without it. */
    final float[] posWeight;
    final double auxConstant;
    final boolean checkFinite;
    /** gradScale, divided by Σ s·d under MEAN (0 when that is 0). */
    final double gradFactor;
    final BlockPartials parts;

    ElementwiseJob(ValidatedCall call, ElementwiseTerm term, double gradFactor, BlockPartials parts) {
        this.term = term;
        this.x = call.slot(0).floats();
        this.t = call.slot(1).floats();
        this.v = call.slotCount() > 2 ? call.slot(2).floats() : null;
        this.w = call.weights() == null ? null : call.weights().floats();
        this.gx = call.gradient(0);
        this.gv = call.slotCount() > 2 ? call.gradient(2) : null;
        this.out = call.losses();
        float[] pw = call.loss().definition().has(Param.POS_WEIGHT) ? call.loss().get(Param.POS_WEIGHT) : null;
        this.posWeight = pw != null && pw.length > 1 ? pw : null;
        this.auxConstant = pw != null && pw.length == 1 ? pw[0] : 1;
        this.checkFinite = call.loss().checkFinite();
        this.gradFactor = gradFactor;
        this.parts = parts;
    }

    /** Whether every buffer of the call is a heap array (what the vector path reads and writes). */
    boolean onHeap() {
        return heap(x) && heap(t) && (v == null || heap(v)) && (w == null || heap(w)) && (gx == null || heap(gx))
                && (gv == null || heap(gv)) && (out == null || heap(out));
    }

    private static boolean heap(FloatBuffer b) {
        return b.hasArray();
    }
}
