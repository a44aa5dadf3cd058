package losskit.golden;

import com.fasterxml.jackson.core.json.JsonReadFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.json.JsonMapper;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import losskit.api.AlphaMode;
import losskit.api.Catalogue;
import losskit.api.Inputs;
import losskit.api.Loss;
import losskit.api.LossDefinition;
import losskit.api.Param;
import losskit.api.Reduction;
import losskit.api.Tensor;

/**
 * One case of {@code src/test/resources/golden/<id>.json}, written by {@code scripts/gen-golden.py}
 * from PyTorch/scikit-learn in float64: the inputs (float32 values), the configuration and the expected
 * value, per-element losses, gradients — or the domain error expected instead. linear-cross-entropy cases may
 * also give the NONE upstream gradient ({@code lossesGradient}) and expect the per-row log-sum-exp
 * ({@code lse}, asked for with {@code lseInto}) and the reported z-loss term ({@code zLoss}).
 */
public record GoldenCase(String lossId, String name, Loss loss, Inputs inputs, Double value, double absSum,
                         double[] losses, Map<String, double[]> gradients, Map<String, GradRows> gradRows,
                         String errorSlot, long errorIndex, double[] lse, Double zLoss) {

    /** The gradient of selected rows of a large slot, and Σ|gradient| over all of it. */
    public record GradRows(int[] rows, double[][] values, double absSum) {
    }

    private static final ObjectMapper JSON = JsonMapper.builder()
            .enable(JsonReadFeature.ALLOW_NON_NUMERIC_NUMBERS).build();

    public boolean expectsError() {
        return errorSlot != null;
    }

    @Override
    public String toString() {
        return lossId + ": " + name;
    }

    /** The cases of one loss, or an empty list when its file is missing. */
    public static List<GoldenCase> load(LossDefinition def) {
        List<GoldenCase> out = new ArrayList<>();
        try (InputStream in = GoldenCase.class.getResourceAsStream("/golden/" + def.id() + ".json")) {
            if (in == null) {
                return out;
            }
            JsonNode root = JSON.readTree(in);
            for (JsonNode c : root.get("cases")) {
                out.add(parse(def.id(), c));
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return out;
    }

    private static GoldenCase parse(String id, JsonNode c) {
        Loss loss = Loss.of(Catalogue.get(id));
        for (Iterator<Map.Entry<String, JsonNode>> it = c.get("params").fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> e = it.next();
            loss = withParam(loss, e.getKey(), e.getValue());
        }
        loss = loss.reduction(Reduction.parse(c.get("reduction").asText()));
        if (c.hasNonNull("gradScale")) {
            loss = loss.gradScale(c.get("gradScale").asDouble());
        }
        Inputs inputs = Inputs.empty();
        for (Iterator<Map.Entry<String, JsonNode>> it = c.get("inputs").fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> e = it.next();
            inputs = inputs.with(e.getKey(), tensor(e.getValue()));
        }
        if (c.hasNonNull("weights")) {
            inputs = inputs.weights(floats(c.get("weights")));
        }
        if (c.hasNonNull("lossesGradient")) {
            inputs = inputs.lossesGradient(floats(c.get("lossesGradient")));
        }
        inputs = float32Outputs(c, inputs);
        if (c.has("error")) {
            JsonNode err = c.get("error");
            return new GoldenCase(id, c.get("name").asText(), loss, inputs, null, 0, null, Map.of(), Map.of(),
                    err.get("slot").asText(), err.get("index").asLong(), null, null);
        }
        JsonNode ex = c.get("expect");
        Double value = ex.hasNonNull("value") ? ex.get("value").asDouble() : null;
        double[] losses = ex.hasNonNull("losses") ? doubles(ex.get("losses")) : null;
        Map<String, double[]> grads = new LinkedHashMap<>();
        if (ex.hasNonNull("grad")) {
            for (Iterator<Map.Entry<String, JsonNode>> it = ex.get("grad").fields(); it.hasNext(); ) {
                Map.Entry<String, JsonNode> e = it.next();
                grads.put(e.getKey(), doubles(e.getValue()));
            }
        }
        Map<String, GradRows> rows = new LinkedHashMap<>();
        if (ex.hasNonNull("gradRows")) {
            for (Iterator<Map.Entry<String, JsonNode>> it = ex.get("gradRows").fields(); it.hasNext(); ) {
                Map.Entry<String, JsonNode> e = it.next();
                JsonNode r = e.getValue();
                int[] idx = new int[r.get("rows").size()];
                double[][] vals = new double[idx.length][];
                for (int i = 0; i < idx.length; i++) {
                    idx[i] = r.get("rows").get(i).asInt();
                    vals[i] = doubles(r.get("values").get(i));
                }
                rows.put(e.getKey(), new GradRows(idx, vals, r.get("absSum").asDouble()));
            }
        }
        double absSum = ex.hasNonNull("absSum") ? ex.get("absSum").asDouble() : Double.NaN;
        double[] lse = ex.hasNonNull("lse") ? doubles(ex.get("lse")) : null;
        if (lse != null) {
            inputs = inputs.lseInto(new float[lse.length]);
        }
        Double zLoss = ex.hasNonNull("zLoss") ? ex.get("zLoss").asDouble() : null;
        return new GoldenCase(id, c.get("name").asText(), loss, inputs, value, absSum, losses, grads, rows, null, -1,
                lse, zLoss);
    }

    /**
     * 16-bit inputs get 16-bit gradients (and NONE losses) by default, rounded to 8 or 11 bits: a case with a
     * 16-bit input asks for float32 destinations instead, so that the float64 oracle is checked to the
     * contract's tolerances (16-bit destinations are checked against these in their own tests).
     */
    private static Inputs float32Outputs(JsonNode c, Inputs inputs) {
        boolean half = false;
        for (Tensor t : inputs.tensors().values()) {
            half |= t.dtype().isHalf();
        }
        if (!half || c.has("error")) {
            return inputs;
        }
        JsonNode ex = c.get("expect");
        for (String section : new String[]{"grad", "gradRows"}) {
            if (ex.hasNonNull(section)) {
                for (Iterator<String> it = ex.get(section).fieldNames(); it.hasNext(); ) {
                    String slot = it.next();
                    inputs = inputs.gradientInto(slot, new float[(int) inputs.tensor(slot).size()]);
                }
            }
        }
        if (ex.hasNonNull("losses")) {
            inputs = inputs.lossesInto(new float[ex.get("losses").size()]);
        }
        return inputs;
    }

    private static Loss withParam(Loss loss, String name, JsonNode v) {
        Param<?> p = Param.byName().get(name);
        if (p == null) {
            throw new IllegalArgumentException("golden file names unknown parameter " + name);
        }
        Object value;
        if (p.type() == Double.class) {
            value = v.asDouble();
        } else if (p.type() == Integer.class) {
            value = v.asInt();
        } else if (p.type() == Boolean.class) {
            value = v.asBoolean();
        } else if (p.type() == AlphaMode.class) {
            value = AlphaMode.valueOf(v.asText());
        } else {
            value = v.isArray() ? floats(v) : new float[]{(float) v.asDouble()};
        }
        return set(loss, p, value);
    }

    @SuppressWarnings("unchecked")
    private static <T> Loss set(Loss loss, Param<T> p, Object value) {
        return loss.with(p, (T) value);
    }

    private static Tensor tensor(JsonNode t) {
        JsonNode shape = t.get("shape");
        long[] dims = new long[shape.size()];
        for (int i = 0; i < dims.length; i++) {
            dims[i] = shape.get(i).asLong();
        }
        String dtype = t.hasNonNull("dtype") ? t.get("dtype").asText() : "float32";
        if (t.has("hash")) {
            long n = 1;
            for (long d : dims) {
                n *= d;
            }
            return Tensor.of(hashed((int) n, t.get("hash").get("seed").asLong(), t.get("hash").get("scale").asDouble()), dims);
        }
        if (dtype.equals("bfloat16") || dtype.equals("float16")) {
            JsonNode bits = t.get("bits");
            short[] b = new short[bits.size()];
            for (int i = 0; i < b.length; i++) {
                b[i] = (short) bits.get(i).asInt();
            }
            return dtype.equals("bfloat16") ? Tensor.ofBFloat16(b, dims) : Tensor.ofFloat16(b, dims);
        }
        JsonNode data = t.get("data");
        if (dtype.startsWith("int")) {
            long[] y = new long[data.size()];
            for (int i = 0; i < y.length; i++) {
                y[i] = data.get(i).asLong();
            }
            return Tensor.labels(y);
        }
        return Tensor.of(floats(data), dims);
    }

    /**
     * The generator's hashed inputs: element i is float32(((fmix32(i·0x9E3779B1 + seed) >>> 8)/2²⁴ − 0.5)·2·scale),
     * fmix32 being MurmurHash3's finaliser — the same integers as scripts/gen-golden-matrix.py computes.
     */
    static float[] hashed(int n, long seed, double scale) {
        float[] f = new float[n];
        for (int i = 0; i < n; i++) {
            int x = (int) (i * 0x9E3779B1L + seed);
            x ^= x >>> 16;
            x *= 0x85EBCA6B;
            x ^= x >>> 13;
            x *= 0xC2B2AE35;
            x ^= x >>> 16;
            double u = (x >>> 8) / 16777216.0;
            f[i] = (float) ((u - 0.5) * 2 * scale);
        }
        return f;
    }

    private static float[] floats(JsonNode a) {
        float[] f = new float[a.size()];
        for (int i = 0; i < f.length; i++) {
            f[i] = (float) a.get(i).asDouble();
        }
        return f;
    }

    private static double[] doubles(JsonNode a) {
        double[] d = new double[a.size()];
        for (int i = 0; i < d.length; i++) {
            d[i] = a.get(i).asDouble();
        }
        return d;
    }
}
