/**
 * The CPU backend ({@link losskit.cpu.CpuBackend}): the Java term functions of every loss, in float64 (EXACT)
 * and float32 (FAST, with LossKit's own elementary functions in {@link losskit.cpu.FastMath}), the family
 * drivers (elementwise, rows, pairs, matrix) that run them over blocks on a fixed thread pool, and the vector
 * paths on the incubating Vector API, taken when the JVM has {@code jdk.incubator.vector} and giving the same bits
 * as the scalar ones.
 *
 * <p>Internal: users reach it through {@code losskit.api.LossEngine} ({@code BackendChoice.CPU}, or {@code auto}
 * without a GPU); its public types are public for the engine and the tests, and may change.
 *
 * <p>Dependencies: built on {@code losskit.api} (calls, results, the catalogue, the summation order); imports no
 * other LossKit package.
 */
package losskit.cpu;
