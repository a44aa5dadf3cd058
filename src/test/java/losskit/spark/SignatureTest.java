package losskit.spark;

import static losskit.spark.Signature.Kind.ARRAY;
import static losskit.spark.Signature.Kind.LABEL;
import static losskit.spark.Signature.Kind.SCALAR;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.Map;
import losskit.api.Catalogue;
import losskit.api.Family;
import losskit.api.LossDefinition;
import org.apache.spark.resource.ResourceInformation;
import org.junit.jupiter.api.Test;

/** Column layouts → loss forms, and the GPU address → device index rule; no Spark session needed. */
class SignatureTest {
    static LossDefinition loss(String id) {
        return Catalogue.get(id);
    }

    @Test
    void kindsPickTheForm() {
        assertEquals("default", Signature.of(ARRAY, LABEL).formFor(loss("cross-entropy")).name());
        assertEquals("soft", Signature.of(ARRAY, ARRAY).formFor(loss("cross-entropy")).name());
        assertEquals("binary", Signature.of(SCALAR, LABEL).formFor(loss("log-loss")).name());
        assertEquals("default", Signature.of(ARRAY, LABEL).formFor(loss("log-loss")).name());
        assertEquals("default", Signature.of(SCALAR, SCALAR).formFor(loss("contrastive")).name());
        assertEquals("pairs", Signature.of(ARRAY, ARRAY, SCALAR).formFor(loss("contrastive")).name());
        assertEquals("default", Signature.of(ARRAY, ARRAY).formFor(loss("bce-logits")).name(), "multi-label");
        assertEquals("default", Signature.of(SCALAR, SCALAR, SCALAR).formFor(loss("gaussian-nll")).name());
    }

    @Test
    void everyPerRowLossHasADefaultSignatureThatFitsIt() {
        for (LossDefinition d : Catalogue.all()) {
            if (d.family() == Family.MATRIX) {
                IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Signature.defaultFor(d));
                assertTrue(e.getMessage().startsWith(d.id() + ": a matrix loss couples all rows"), e.getMessage());
                assertThrows(IllegalArgumentException.class, () -> Signature.of(ARRAY, ARRAY).formFor(d), d.id());
                continue;
            }
            Signature s = Signature.defaultFor(d);
            assertEquals(d.forms().get(0), s.formFor(d), d.id() + " over (" + s + ")");
        }
        assertEquals(List.of(SCALAR, SCALAR), Signature.defaultFor(loss("mse")).kinds());
        assertEquals(List.of(ARRAY, LABEL), Signature.defaultFor(loss("cross-entropy")).kinds());
        assertEquals(List.of(ARRAY, ARRAY, ARRAY), Signature.defaultFor(loss("triplet")).kinds());
    }

    @Test
    void aMismatchNamesTheFormsTheLossTakes() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> Signature.of(SCALAR, SCALAR).withWeight().formFor(loss("cross-entropy")));
        assertEquals("cross-entropy: columns (scalar, scalar, weight) do not match the loss's inputs (expected "
                + "(input array, target label) or (input array, target array), then a weight)", e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> Signature.of(SCALAR, ARRAY).formFor(loss("mse")));
        assertThrows(IllegalArgumentException.class, () -> Signature.of(LABEL, LABEL).formFor(loss("mse")));
    }

    @Test
    void sqlTypesOfTheArguments() {
        assertEquals("struct<loss:string,column1:array<float>,column2:bigint,weight:float>",
                Signature.of(ARRAY, LABEL).withWeight().schema(true).simpleString());
        assertEquals("struct<column1:float,column2:float>", Signature.of(SCALAR, SCALAR).schema(false).simpleString());
    }

    @Test
    void gpuAddressIsTheDeviceIndex() {
        assertEquals(-1, ExecutorEngines.deviceIndex(Map.of()));
        assertEquals(-1, ExecutorEngines.deviceIndex(null));
        assertEquals(2, ExecutorEngines.deviceIndex(Map.of("gpu", new ResourceInformation("gpu", new String[]{"2", "3"}))));
        assertEquals(-1, ExecutorEngines.deviceIndex(Map.of("fpga", new ResourceInformation("fpga", new String[]{"0"}))));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> ExecutorEngines.deviceIndex(
                Map.of("gpu", new ResourceInformation("gpu", new String[]{"GPU-8f3a"}))));
        assertTrue(e.getMessage().contains("'GPU-8f3a' is not a device index"), e.getMessage());
    }
}
