package losskit.cuda;

import static org.junit.jupiter.api.Assertions.assertNotNull;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Assumptions;

/** The built PTX of a module read as text (test support): its kernels, their bodies and their loops. */
final class PtxText {
    private static final Pattern ENTRY = Pattern.compile("\\.entry\\s+(\\w+)\\s*\\(([^)]*)\\)");
    private static final Pattern LABEL = Pattern.compile("^\\s*(\\$L__\\w+):");
    private static final Pattern BRANCH = Pattern.compile("\\bbra(?:\\.uni)?\\s+(\\$L__\\w+);");

    /** One kernel: its parameter count and its body (the text after its signature, up to the next kernel). */
    record Kernel(String name, int params, String body) {
        List<String> lines() {
            return List.of(body.split("\n"));
        }
    }

    private PtxText() {
    }

    static Map<String, Kernel> kernels(String module) {
        String text;
        try (InputStream in = PtxText.class.getResourceAsStream("/losskit/ptx/" + module + ".ptx")) {
            Assumptions.assumeTrue(in != null || System.getenv("CI") != null, "this build has no PTX (no nvcc)");
            assertNotNull(in, module + ".ptx is missing");
            text = new String(in.readAllBytes(), StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
        Map<String, Kernel> out = new LinkedHashMap<>();
        Matcher m = ENTRY.matcher(text);
        List<int[]> at = new ArrayList<>();
        List<String[]> heads = new ArrayList<>();
        while (m.find()) {
            at.add(new int[]{m.start(), m.end()});
            heads.add(new String[]{m.group(1), m.group(2)});
        }
        for (int i = 0; i < at.size(); i++) {
            int end = i + 1 < at.size() ? at.get(i + 1)[0] : text.length();
            String params = heads.get(i)[1];
            out.put(heads.get(i)[0], new Kernel(heads.get(i)[0], params.isBlank() ? 0 : params.split(",").length,
                    text.substring(at.get(i)[1], end)));
        }
        return out;
    }

    /**
     * The innermost loops of a kernel body, as the instruction lines between a label and the last backward branch
     * to it that contain no other such loop.
     */
    static List<List<String>> innermostLoops(Kernel k) {
        List<String> lines = k.lines();
        Map<String, Integer> labelAt = new LinkedHashMap<>();
        for (int i = 0; i < lines.size(); i++) {
            Matcher l = LABEL.matcher(lines.get(i));
            if (l.find()) {
                labelAt.put(l.group(1), i);
            }
        }
        List<int[]> loops = new ArrayList<>();
        Map<String, Integer> lastBack = new LinkedHashMap<>();
        for (int i = 0; i < lines.size(); i++) {
            Matcher b = BRANCH.matcher(lines.get(i));
            if (b.find()) {
                Integer at = labelAt.get(b.group(1));
                if (at != null && at < i) {
                    lastBack.put(b.group(1), i);
                }
            }
        }
        lastBack.forEach((label, end) -> loops.add(new int[]{labelAt.get(label), end}));
        List<List<String>> out = new ArrayList<>();
        for (int[] loop : loops) {
            boolean inner = true;
            for (int[] other : loops) {
                if (other != loop && other[0] > loop[0] && other[1] < loop[1]) {
                    inner = false;
                    break;
                }
            }
            if (inner) {
                out.add(lines.subList(loop[0], loop[1] + 1));
            }
        }
        return out;
    }

    /** The opcode of an instruction line (with its modifiers, e.g. {@code fma.rn.f64}), or null for other lines. */
    static String opcode(String line) {
        String s = line.strip();
        if (s.isEmpty() || s.startsWith("//") || s.startsWith("$") || s.startsWith(".") || s.startsWith("{")
                || s.startsWith("}")) {
            return null;
        }
        if (s.startsWith("@")) {
            int sp = s.indexOf(' ');
            s = sp < 0 ? "" : s.substring(sp + 1).strip();
        }
        int end = 0;
        while (end < s.length() && !Character.isWhitespace(s.charAt(end)) && s.charAt(end) != ';') {
            end++;
        }
        return end == 0 ? null : s.substring(0, end);
    }
}
