package losskit.cli;

import java.util.function.LongConsumer;
import me.tongfei.progressbar.ConsoleProgressBarConsumer;
import me.tongfei.progressbar.DelegatingProgressBarConsumer;
import me.tongfei.progressbar.ProgressBar;
import me.tongfei.progressbar.ProgressBarBuilder;
import me.tongfei.progressbar.ProgressBarStyle;

/**
 * The progress bar on stderr (the progressbar library: bytes, rate, ETA), named after the losses that run
 * ({@code eval mse,mae}). It appears only once work has run for 2 s, and only on a terminal unless
 * {@code --progress} forces it. The ETA is the bytes left over the rate since the first chunk completed —
 * not since the bar appeared (the library's own ETA counted the bytes done before it appeared as done in no
 * time, and came out short), and not since the start (the JVM's warm-up and the first read are slower).
 */
final class Progress implements LongConsumer, AutoCloseable {
    private static final long DELAY_NANOS = 2_000_000_000L;
    private final boolean enabled;
    private final boolean terminal;
    private final long total;
    private final long start = System.nanoTime();
    private final String task;
    private volatile long done;
    private ProgressBar bar;
    /** When the first chunk completed, and the bytes done then: the rate for the ETA is measured from here. */
    private volatile long firstNanos = -1;
    private volatile long firstDone;

    Progress(boolean forced, long totalBytes) {
        this(forced, totalBytes, java.util.List.of());
    }

    /** @param losses the ids of the losses that run (shown as the bar's name) */
    Progress(boolean forced, long totalBytes, java.util.List<String> losses) {
        this.terminal = System.console() != null;
        this.enabled = forced || terminal;
        this.total = totalBytes;
        String names = String.join(",", losses);
        this.task = names.isEmpty() ? "eval" : "eval " + (names.length() > 40 ? names.substring(0, 37) + "..." : names);
    }

    /** Bytes left over the rate since the first chunk, once a later one has completed. */
    java.util.Optional<java.time.Duration> eta() {
        long t0 = firstNanos;
        long d = done - firstDone;
        long dt = System.nanoTime() - t0;
        if (t0 < 0 || d <= 0 || dt <= 0) {
            return java.util.Optional.empty();
        }
        double left = Math.max(0, total - done) * (double) dt / d;
        return java.util.Optional.of(java.time.Duration.ofNanos((long) left));
    }

    @Override
    public void accept(long bytes) {
        done += bytes;
        if (firstNanos < 0) {
            firstDone = done;
            firstNanos = System.nanoTime();
        }
        if (!enabled) {
            return;
        }
        if (bar == null && System.nanoTime() - start > DELAY_NANOS) {
            // on a terminal the bar redraws itself in place; forced onto a file or pipe (--progress) it is one plain
            // line per update, with no carriage returns or escape codes to garble a log
            bar = new ProgressBarBuilder().setTaskName(task).setInitialMax(total).setUnit(" MB", 1_000_000)
                    .showSpeed().setEtaFunction(state -> eta()).setStyle(ProgressBarStyle.ASCII).setUpdateIntervalMillis(terminal ? 1000 : 10_000)
                    .setConsumer(terminal ? new ConsoleProgressBarConsumer(System.err)
                            : new DelegatingProgressBarConsumer(line -> System.err.println(line.strip()), 80)).build();
        }
        if (bar != null) {
            bar.stepTo(done);
        }
    }

    @Override
    public void close() {
        if (bar != null) {
            bar.close();
        }
    }
}
