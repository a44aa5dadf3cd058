package losskit.cpu;

import java.io.IOException;
import java.io.InputStream;
import java.lang.invoke.MethodHandles;

/**
 * One copy of a generic loop class per term class, so that each loss gets its own JIT profile.
 *
 * <p>Why: the JIT inlines a call like {@code term.eval(..)} only while that call site has seen one or two
 * receiver classes. A single generic loop used by every loss sees them all, stops inlining and pays a
 * virtual call and a memory round trip of {@link TermOut} per element (measured: {@code mse} at 10⁷
 * elements 5 ms alone, 22 ms after three other losses ran). Writing the loop once per loss would
 * duplicate the skeleton 17 times; instead the loop is written once ({@link ElementwiseLoop}) and its
 * class file is defined again as a hidden class per term class ({@link MethodHandles.Lookup#defineHiddenClass}),
 * which the JVM profiles and compiles separately. The formula stays in the term; the skeleton stays in
 * the template. If the copy cannot be defined (a restricted runtime), the template itself is used:
 * correct, only slower.
 */
final class LoopCopies<T> {
    private final Class<T> type;
    private final Class<? extends T> template;
    private final byte[] classFile;
    private final ClassValue<T> copies = new ClassValue<>() {
        @Override
        protected T computeValue(Class<?> termClass) {
            return define();
        }
    };

    /** @param type the interface callers use; @param template the loop class copied (it implements {@code type}) */
    LoopCopies(Class<T> type, Class<? extends T> template) {
        this.type = type;
        this.template = template;
        this.classFile = read(template);
    }

    /** The copy of the loop that serves every term of {@code term}'s class. */
    T forTerm(Object term) {
        return copies.get(term.getClass());
    }

    private T define() {
        if (classFile != null) {
            try {
                MethodHandles.Lookup copy = MethodHandles.lookup().defineHiddenClass(classFile, true);
                return type.cast(copy.findConstructor(copy.lookupClass(),
                        java.lang.invoke.MethodType.methodType(void.class)).invoke());
            } catch (Throwable e) {
                // fall through: the shared template is correct, only not specialised
            }
        }
        try {
            return template.getDeclaredConstructor().newInstance();
        } catch (ReflectiveOperationException e) {
            throw new IllegalStateException("cannot instantiate " + template.getName(), e);
        }
    }

    private static byte[] read(Class<?> c) {
        try (InputStream in = c.getResourceAsStream(c.getSimpleName() + ".class")) {
            return in == null ? null : in.readAllBytes();
        } catch (IOException e) {
            return null;
        }
    }
}
