/**
 * The {@code losskit} command ({@link losskit.cli.LossKitCli}: {@code list}, {@code eval}, {@code bench}, ...),
 * its reports and plots, the demo data set, and the relaunch that adds {@code jdk.incubator.vector} when
 * {@code losskit-cli.jar} is started by a plain {@code java -jar}.
 *
 * <p>Not a library API: {@code LossKitCli} is public for its {@code main}.
 *
 * <p>Dependencies: the top floor. It uses {@code losskit.api}, {@code losskit.io} and {@code losskit.cuda}
 * (the bench's CUDA event timer, the CUDA backend's device details); nothing in LossKit imports it.
 */
package losskit.cli;
