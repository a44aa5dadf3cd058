package losskit.cli;

import java.util.function.LongConsumer;
import me.tongfei.progressbar.ConsoleProgressBarConsumer;
import me.tongfei.progressbar.DelegatingProgressBarConsumer;
import me.tongfei.progressbar.ProgressBar;
import me.tongfei.progressbar.ProgressBarBuilder;
import me.tongfei.progressbar.ProgressBarStyle;

/**
 * The progress bar on stderr (the progressbar library: bytes, rate, ETA). It appears only once work has
 * run for 2 s, and only on a terminal unless {@code --progress} forces it.
 */
final class Progress implements LongConsumer, AutoCloseable {
    private static final long DELAY_NANOS = 2_000_000_000L;
    private final boolean enabled;
    private final boolean terminal;
    private final long total;
    private final long start = System.nanoTime();
    private long done;
    private ProgressBar bar;

    Progress(boolean forced, long totalBytes) {
        this.terminal = System.console() != null;
        this.enabled = forced || terminal;
        this.total = totalBytes;
    }

    @Override
    public void accept(long bytes) {
        done += bytes;
        if (!enabled) {
            return;
        }
        if (bar == null && System.nanoTime() - start > DELAY_NANOS) {
            // on a terminal the bar redraws itself in place; forced onto a file or pipe (--progress) it is one plain
            // line per update, with no carriage returns or escape codes to garble a log
            bar = new ProgressBarBuilder().setTaskName("eval").setInitialMax(total).setUnit(" MB", 1_000_000)
                    .showSpeed().setStyle(ProgressBarStyle.ASCII).setUpdateIntervalMillis(terminal ? 1000 : 10_000)
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
