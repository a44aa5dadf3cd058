package losskit.api;

/**
 * Which loss forms evaluate their terms in float32 under {@link Precision#FAST}. A form whose float32 terms do
 * not yet meet FAST's accuracy contract (values 1e-6, gradients 1e-5 against the float64 oracle, over the
 * golden cases and the seeded sweeps of the hard regions) is evaluated with its {@link Precision#EXACT}
 * (float64) terms when FAST is asked for: a call is never less accurate than the contract, at the cost of
 * float64 arithmetic and of the cross-backend "same bits" (EXACT agrees across backends to ~1e-15). The
 * result reports the precision its terms ran in ({@link ValidatedCall#precision()}); docs/SEMANTICS.md
 * lists the forms and why.
 */
public final class FastCoverage {
    private FastCoverage() {
    }

    /**
     * Why a form's FAST terms are not used yet, or {@code null} when they meet the contract.
     *
     * @param loss the loss with its parameters bound
     * @param form the form the call resolved to
     */
    public static String pendingReason(Loss loss, Form form) {
        return switch (form.termKey(loss.id())) {
            default -> null;
        };
    }

    /** The precision a call's terms run in: {@code requested}, unless FAST is asked of a form still pending. */
    public static Precision termsPrecision(Loss loss, Form form, Precision requested) {
        return requested == Precision.FAST && pendingReason(loss, form) != null ? Precision.EXACT : requested;
    }
}
