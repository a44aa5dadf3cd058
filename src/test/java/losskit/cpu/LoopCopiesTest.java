package losskit.cpu;

import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import losskit.api.Loss;
import losskit.api.Param;
import org.junit.jupiter.api.Test;

/** The scalar skeleton is copied once per term class (its own JIT profile), and shared by that class's terms. */
class LoopCopiesTest {
    @Test
    void eachTermClassGetsItsOwnHiddenCopyOfTheLoop() {
        LoopCopies<ElementwiseBlock> copies = new LoopCopies<>(ElementwiseBlock.class, ElementwiseLoop.class);
        ElementwiseBlock mse = copies.forTerm(ElementwiseTerms.forKey("mse", Loss.of("mse")));
        ElementwiseBlock mae = copies.forTerm(ElementwiseTerms.forKey("mae", Loss.of("mae")));
        assertNotSame(mse.getClass(), mae.getClass());
        assertTrue(mse.getClass().isHidden() && mae.getClass().isHidden(), mse.getClass().getName());
        assertTrue(mse.getClass().getName().startsWith(ElementwiseLoop.class.getName() + "/"), mse.getClass().getName());
        // terms of one class with other parameters share the copy: the profile is per formula, not per value
        ElementwiseBlock huber1 = copies.forTerm(ElementwiseTerms.forKey("huber", Loss.of("huber")));
        ElementwiseBlock huber2 = copies.forTerm(ElementwiseTerms.forKey("huber", Loss.of("huber").with(Param.DELTA, 0.5)));
        assertSame(huber1, huber2);
    }
}
