package losskit.cpu;

import losskit.api.Loss;

/** Placeholder: the FAST vector twins (none yet: every FAST term runs its scalar skeleton). */
final class FastVectorTerms {
    private FastVectorTerms() {
    }

    static FastTwin elementwise(String key, Loss loss) {
        return null;
    }
}
