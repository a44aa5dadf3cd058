package losskit.spark;

import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;
import losskit.api.BackendChoice;
import losskit.api.LossEngine;
import org.apache.spark.SparkEnv;
import org.apache.spark.TaskContext;
import org.apache.spark.resource.ResourceInformation;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The engines of one executor JVM, opened lazily on first use and kept for the JVM's life (closed by a
 * shutdown hook): one per GPU address Spark hands to tasks, one for tasks without a GPU. Every task of
 * the executor shares them; {@link LossEngine} is thread-safe.
 *
 * <p>How the backend is chosen on an executor:
 * <ol>
 *   <li>the Spark configuration {@code spark.losskit.backend} ({@code auto|cpu|cuda}) if set, else the
 *       engine's own rule: the {@code losskit.backend} system property, the {@code LOSSKIT_BACKEND}
 *       environment variable (on a cluster: {@code spark.executorEnv.LOSSKIT_BACKEND}), else {@code auto};</li>
 *   <li>the GPU: when Spark schedules GPUs ({@code spark.executor.resource.gpu.amount},
 *       {@code spark.task.resource.gpu.amount}), the task's address from {@link TaskContext#resourcesJMap()}
 *       ({@code "gpu"}, first address) is the CUDA device index the executor engine opens
 *       ({@link LossEngine.Builder#device});</li>
 *   <li>{@code auto} without a usable CUDA backend (no driver, no device, no PTX in this build) runs on the
 *       CPU, and the engine logs why, once per engine.</li>
 * </ol>
 * The CPU engine has {@code spark.task.cpus} threads, so a task uses the cores Spark gave it.
 */
final class ExecutorEngines {
    private static final Logger LOG = LoggerFactory.getLogger(ExecutorEngines.class);

    /** Elements per engine call on the CPU: below the CPU backend's inline threshold, 128 KiB per column. */
    static final int CPU_BATCH_ELEMENTS = 1 << 15;
    /** Elements per engine call on a GPU: large enough to amortise the transfers and the launch. */
    static final int CUDA_BATCH_ELEMENTS = 1 << 20;

    /** Spark configuration key that overrides LOSSKIT_BACKEND on executors. */
    static final String BACKEND_CONF = "spark.losskit.backend";

    private static final Map<String, LossEngine> ENGINES = new ConcurrentHashMap<>();
    private static final AtomicLong BATCHES = new AtomicLong();
    private static volatile boolean hookAdded;

    private ExecutorEngines() {
    }

    /** The engine for the calling task (its GPU, if Spark gave it one). */
    static LossEngine current() {
        int device = deviceOfCurrentTask();
        String choice = configuredBackend();
        return ENGINES.computeIfAbsent(choice + "@" + device, k -> open(choice, device));
    }

    /** Rows × width at which a buffer evaluates its pending rows, for the calling task's engine. */
    static int batchElements() {
        return "cuda".equals(current().backendName()) ? CUDA_BATCH_ELEMENTS : CPU_BATCH_ELEMENTS;
    }

    static void countBatch() {
        BATCHES.incrementAndGet();
    }

    /** Engine calls made by aggregates in this JVM (tests check that rows go in batches). */
    static long batches() {
        return BATCHES.get();
    }

    /** The CUDA device index of a task's resources: the first {@code gpu} address, −1 without one. */
    static int deviceIndex(Map<String, ResourceInformation> resources) {
        if (resources == null) {
            return -1;
        }
        ResourceInformation gpu = resources.get("gpu");
        if (gpu == null || gpu.addresses().length == 0) {
            return -1;
        }
        String address = gpu.addresses()[0].trim();
        try {
            return Integer.parseInt(address);
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("losskit: Spark GPU address '" + address + "' is not a device index"
                    + " (expected the discovery script to report CUDA ordinals 0, 1, …)", e);
        }
    }

    private static int deviceOfCurrentTask() {
        TaskContext tc = TaskContext.get();
        return tc == null ? -1 : deviceIndex(tc.resourcesJMap());
    }

    /** {@code spark.losskit.backend} from the executor's Spark configuration, or "" for the engine's own rule. */
    private static String configuredBackend() {
        SparkEnv env = SparkEnv.get();
        if (env == null) {
            return "";
        }
        String v = env.conf().get(BACKEND_CONF, "");
        return v.isBlank() ? "" : BackendChoice.parse(v).name().toLowerCase(java.util.Locale.ROOT);
    }

    private static LossEngine open(String choice, int device) {
        int threads = 1;
        SparkEnv env = SparkEnv.get();
        if (env != null) {
            threads = Math.max(1, env.conf().getInt("spark.task.cpus", 1));
        }
        LossEngine.Builder b = LossEngine.builder().threads(threads);
        if (device >= 0) {
            b.device(device);
        }
        if (!choice.isEmpty()) {
            b.backend(BackendChoice.parse(choice));
        }
        LossEngine e = b.build();
        String gpu = device < 0 ? "no GPU assigned by Spark" : "Spark GPU address " + device;
        // the engine has logged why it chose its backend; this line ties it to the executor's GPU and settings
        LOG.info("LossKit on Spark: executor engine on {} ({}, {})", e.backendName(), gpu,
                choice.isEmpty() ? BACKEND_CONF + " unset" : BACKEND_CONF + "=" + choice);
        addShutdownHook();
        return e;
    }

    private static synchronized void addShutdownHook() {
        if (!hookAdded) {
            hookAdded = true;
            Runtime.getRuntime().addShutdownHook(new Thread(() -> ENGINES.values().forEach(LossEngine::close),
                    "losskit-engines-close"));
        }
    }
}
