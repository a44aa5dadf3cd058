/**
 * LossKit losses as Spark SQL aggregate functions (Spark 3.5, a {@code provided} dependency: nothing here runs
 * without Spark on the class path, and nothing else in LossKit needs it).
 *
 * <p>Public API of this package: {@link losskit.spark.LossKitSpark} (register the SQL functions, or build an
 * aggregate column for the DataFrame API), {@link losskit.spark.Signature} (the columns an aggregate takes) and
 * {@link losskit.spark.LossKitExtensions} (the functions for SQL-only sessions through
 * {@code spark.sql.extensions}). {@code LossAggregator} and {@code LossBuffer} are public because Spark
 * instantiates and serialises them; {@code SparkExample} is a runnable example ({@code spark-submit --class}).
 *
 * <p>Rows are gathered into column batches and evaluated by one {@code LossEngine} per executor JVM; only exact
 * {@code Partial}s cross the shuffle, so the value does not depend on partitioning.
 *
 * <p>Dependencies: above {@code losskit.api} only (backends are chosen by the engine); nothing in LossKit
 * imports it.
 */
package losskit.spark;
