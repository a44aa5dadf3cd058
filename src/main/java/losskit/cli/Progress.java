package losskit.cli;

import java.time.Duration;
import java.util.ArrayDeque;
import java.util.List;
import java.util.Optional;
import java.util.function.LongConsumer;
import java.util.function.LongSupplier;
import me.tongfei.progressbar.ConsoleProgressBarConsumer;
import me.tongfei.progressbar.DelegatingProgressBarConsumer;
import me.tongfei.progressbar.ProgressBar;
import me.tongfei.progressbar.ProgressBarBuilder;
import me.tongfei.progressbar.ProgressBarStyle;

/**
 * The progress bar on stderr (the progressbar library: bytes, rate, ETA), named after the losses that run
 * ({@code eval mse,mae}). It appears only once work has run for 2 s, and only on a terminal unless
 * {@code --progress} forces it.
 *
 * <p>The ETA is the bytes left over the rate of the <em>later half</em> of the bytes done so far: the rate
 * since the moment half of today's bytes were done. A rate since the start (or since the first chunk, the
 * previous rule) keeps counting the JVM's warm-up, during which the vector loops run interpreted until the
 * JIT has compiled them and a pass moves at a fraction of its later rate: at 10 % of a pass whose first
 * 4 % went at a tenth of the later rate it predicted 4.3 times the time left (ProgressTest). The later half forgets the
 * warm-up as the pass goes on and still averages over half the pass, so a noisy chunk moves it little. The
 * library's own ETA (from when the bar appeared) counted the bytes done before it appeared as done in no time.
 */
final class Progress implements LongConsumer, AutoCloseable {
    private static final long DELAY_NANOS = 2_000_000_000L;
    private final boolean enabled;
    private final boolean terminal;
    private final long total;
    private final long start;
    private final String task;
    private final LongSupplier clock;
    private volatile long done;
    private ProgressBar bar;
    /** (nanos, bytes done) after each chunk, oldest first, pruned to the later half (see the class comment). */
    private final ArrayDeque<long[]> samples = new ArrayDeque<>();

    Progress(boolean forced, long totalBytes) {
        this(forced, totalBytes, List.of());
    }

    /** @param losses the ids of the losses that run (shown as the bar's name) */
    Progress(boolean forced, long totalBytes, List<String> losses) {
        this(forced, System.console() != null, totalBytes, losses, System::nanoTime);
    }

    /** For tests: whether stderr is a terminal, and the clock (nanoseconds) the rate is measured with. */
    Progress(boolean forced, boolean terminal, long totalBytes, List<String> losses, LongSupplier clock) {
        this.clock = clock;
        this.start = clock.getAsLong();
        this.terminal = terminal;
        this.enabled = forced || terminal;
        this.total = totalBytes;
        String names = String.join(",", losses);
        this.task = names.isEmpty() ? "eval" : "eval " + (names.length() > 40 ? names.substring(0, 37) + "..." : names);
    }

    /** Bytes left over the rate of the later half of the bytes done, once two chunks have completed. */
    synchronized Optional<Duration> eta() {
        if (samples.size() < 2) {
            return Optional.empty();
        }
        long[] from = samples.peekFirst();
        long[] to = samples.peekLast();
        long d = to[1] - from[1];
        long dt = clock.getAsLong() - from[0];
        if (d <= 0 || dt <= 0) {
            return Optional.empty();
        }
        double left = Math.max(0, total - to[1]) * (double) dt / d;
        return Optional.of(Duration.ofNanos((long) left));
    }

    @Override
    public void accept(long bytes) {
        long now = clock.getAsLong();
        synchronized (this) {
            done += bytes;
            samples.addLast(new long[] {now, done});
            // keep the newest sample at or below half the bytes done (the window's start) and those after it
            while (samples.size() > 2) {
                long[] oldest = samples.removeFirst();
                if (samples.peekFirst()[1] > done / 2) {
                    samples.addFirst(oldest);
                    break;
                }
            }
        }
        if (!enabled) {
            return;
        }
        if (bar == null && now - start > DELAY_NANOS) {
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
