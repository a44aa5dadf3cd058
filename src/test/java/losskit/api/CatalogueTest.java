package losskit.api;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.HashSet;
import java.util.List;
import java.util.Set;
import losskit.cpu.CpuBackend;
import losskit.golden.GoldenCase;
import org.junit.jupiter.api.Test;

/** The catalogue is complete and coherent: every LOSSES.md entry, a term per form, golden coverage. */
class CatalogueTest {
    /** The ids of LOSSES.md, in its order. */
    private static final List<String> LOSSES_MD = List.of("mse", "mae", "rmse", "msle", "huber", "smooth-l1",
            "log-cosh", "quantile", "poisson-nll", "gaussian-nll", "bce", "bce-logits", "hinge", "squared-hinge",
            "focal", "focal-logits", "wasserstein", "cross-entropy", "nll", "categorical-cross-entropy",
            "sparse-categorical-cross-entropy", "log-loss", "multi-margin", "kl-divergence", "entropy",
            "distribution-cross-entropy", "cosine-proximity", "cosine-embedding", "contrastive", "triplet", "dice",
            "tversky", "info-nce", "linear-cross-entropy");

    @Test
    void catalogueHoldsExactlyTheSpecifiedLosses() {
        assertEquals(LOSSES_MD, Catalogue.all().stream().map(LossDefinition::id).toList());
    }

    @Test
    void aliasesResolve() {
        assertSame(Catalogue.get("mae"), Catalogue.get("l1"));
        assertSame(Catalogue.get("mae"), Catalogue.get("ABS"));
        assertSame(Catalogue.get("msle"), Catalogue.get("log-mse"));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Catalogue.get("nope"));
        assertTrue(e.getMessage().startsWith("loss = nope is unknown"), e.getMessage());
    }

    @Test
    void everyFormHasACpuTerm() {
        for (LossDefinition d : Catalogue.all()) {
            for (Form f : d.forms()) {
                assertTrue(CpuBackend.hasTerm(Loss.of(d), f), d.id() + " form " + f.name() + " has no CPU term");
            }
        }
    }

    @Test
    void everyEntryHasGoldenCoverageForEveryFormAndReduction() {
        int total = 0;
        for (LossDefinition d : Catalogue.all()) {
            List<GoldenCase> cases = GoldenCase.load(d);
            assertFalse(cases.isEmpty(), d.id() + " has no golden cases (run scripts/gen-golden.py)");
            Set<Reduction> seen = new HashSet<>();
            Set<String> forms = new HashSet<>();
            for (GoldenCase c : cases) {
                seen.add(c.loss().reduction());
                if (!c.expectsError()) {
                    forms.add(ValidatedCall.validate(c.loss(), c.inputs(), false, losskit.api.Precision.FAST).form().name());
                }
            }
            assertEquals(d.reductions(), seen, d.id() + ": golden cases miss a reduction");
            for (Form f : d.forms()) {
                assertTrue(forms.contains(f.name()), d.id() + ": no golden case for form " + f.name());
            }
            total += cases.size();
        }
        assertTrue(total >= 1000, "only " + total + " golden cases");
        System.out.println("golden cases: " + total);
    }

    @Test
    void defaultsAreValidAndParametersAreValidatedAtConstruction() {
        for (LossDefinition d : Catalogue.all()) {
            Loss l = Loss.of(d);
            for (ParamSpec<?> s : d.params()) {
                Object v = l.get(s.param());
                if (v != null) {
                    s.check(d.id(), v);
                }
            }
            assertEquals(d.defaultReduction(), l.reduction());
        }
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> Loss.of("huber").with(Param.DELTA, -1.0));
        assertEquals("huber: delta = -1.0 is invalid (expected > 0)", e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> Loss.of("mse").with(Param.DELTA, 1.0));
        assertTrue(e.getMessage().startsWith("mse: has no parameter delta"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> Loss.of("rmse").reduction(Reduction.SUM));
        assertEquals("rmse: reduction = sum is not supported (expected one of [mean])", e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> Loss.of("mse").reduction(Reduction.BATCHMEAN));
        assertTrue(e.getMessage().contains("batchmean is not supported"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> Loss.of("multi-margin").with(Param.P, 3.0));
        assertEquals("multi-margin: p = 3.0 is invalid (expected 1 or 2)", e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> Loss.of("cross-entropy")
                .with(Param.CLASS_WEIGHT, new float[]{1, Float.NaN}));
        assertTrue(e.getMessage().startsWith("cross-entropy: classWeight = 1.0;NaN is invalid"), e.getMessage());
    }

    @Test
    void cliSpecRoundTrips() {
        Loss l = Loss.parse("cross-entropy:classWeight=1;2;3,labelSmoothing=0.1,reduction=sum");
        assertEquals(Reduction.SUM, l.reduction());
        assertEquals(0.1, l.real(Param.LABEL_SMOOTHING));
        assertEquals(3, l.get(Param.CLASS_WEIGHT).length);
        assertEquals(l.toString(), Loss.parse(l.toString()).toString());
        assertEquals("focal:alphaMode=UNIFORM", Loss.parse("focal:alphaMode=uniform").toString());
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Loss.parse("huber:delta"));
        assertTrue(e.getMessage().startsWith("huber: parameter 'delta' has no value"), e.getMessage());
    }
}
