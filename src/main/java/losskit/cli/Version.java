package losskit.cli;

import java.io.IOException;
import java.io.InputStream;
import java.util.Properties;
import picocli.CommandLine;

/** The LossKit version, from the build ({@code losskit/version.properties}, filtered by Maven from the pom). */
final class Version implements CommandLine.IVersionProvider {
    static final String VERSION = read();

    private static String read() {
        try (InputStream in = Version.class.getResourceAsStream("/losskit/version.properties")) {
            if (in == null) {
                return "unknown";
            }
            Properties p = new Properties();
            p.load(in);
            String v = p.getProperty("version", "unknown");
            return v.startsWith("${") ? "unknown" : v;
        } catch (IOException e) {
            return "unknown";
        }
    }

    @Override
    public String[] getVersion() {
        return new String[]{"LossKit " + VERSION};
    }
}
