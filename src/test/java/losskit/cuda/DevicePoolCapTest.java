package losskit.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import losskit.api.LossEngine;
import org.junit.jupiter.api.Test;

/** The pool cap's configuration: the system property's syntax and the builder's validation (no device needed). */
class DevicePoolCapTest {

    @Test
    void capSyntax() {
        assertEquals(1048576, DevicePool.parseBytes("p", "1048576"));
        assertEquals(64L << 10, DevicePool.parseBytes("p", "64K"));
        assertEquals(256L << 20, DevicePool.parseBytes("p", "256m"));
        assertEquals(2L << 30, DevicePool.parseBytes("p", " 2G "));
        assertEquals(0, DevicePool.parseBytes("p", "0"));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> DevicePool.parseBytes("losskit.cuda.poolCap", "-3M"));
        assertTrue(e.getMessage().startsWith("losskit.cuda.poolCap = -3M is invalid"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> DevicePool.parseBytes("p", "lots"));
        assertThrows(IllegalArgumentException.class, () -> DevicePool.parseBytes("p", "9999999999G"));
    }

    @Test
    void builderRejectsANegativeCap() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> LossEngine.builder().poolCap(-1));
        assertEquals("poolCap = -1 is invalid (expected >= 0 bytes)", e.getMessage());
    }
}
