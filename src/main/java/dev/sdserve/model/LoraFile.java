package dev.sdserve.model;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.TreeSet;

/**
 * A kohya-format LoRA ({@code lora_unet_*} / {@code lora_te_*} / SDXL's {@code lora_te1_*}, {@code lora_te2_*}
 * modules with {@code .lora_down.weight}, {@code .lora_up.weight} and optional {@code .alpha}) matched against an
 * architecture: every module is mapped to the checkpoint weight it modifies ({@link LdmNames#kohyaTargetRows}: kohya
 * names are diffusers or LDM/SGM module paths with {@code _}; OpenCLIP towers' q/k/v modules are row blocks of the
 * fused {@code in_proj_weight}), with linear, 1×1 conv and 3×3 conv (LoCon) modules. Modules that match nothing or have
 * incompatible shapes are one clear error naming them.
 *
 * <p>Merging: {@code W += scale · (alpha / rank) · up · down} ({@link #delta}).
 */
public final class LoraFile implements AutoCloseable {
    public enum Kind { LINEAR, CONV1X1, CONV3X3 }

    /**
     * One LoRA module and the checkpoint weight it modifies: rows [rowStart, rowStart + rows) of it (all rows,
     * except for a q/k/v module of an OpenCLIP tower, which covers one third of the fused {@code in_proj_weight}).
     */
    public record Module(String name, String target, Kind kind, int rank, double alpha, long[] targetShape,
                         String downKey, String upKey, int rowStart, int rows) {
        public Module(String name, String target, Kind kind, int rank, double alpha, long[] targetShape,
                      String downKey, String upKey) {
            this(name, target, kind, rank, alpha, targetShape, downKey, upKey, 0, (int) targetShape[0]);
        }

        public boolean textEncoder() {
            return !target.startsWith(ModelConfigs.UNET);
        }

        /** The module covers only some rows of its weight. */
        public boolean partial() {
            return rows != targetShape[0];
        }

        /** alpha / rank. */
        public double ratio() {
            return alpha / rank;
        }
    }

    /** kohya module → LDM weight (and rows), and the weights' shapes, of an architecture (built once per config). */
    private record Layout(Map<String, LdmNames.Target> targets, Map<String, long[]> shapes) {
    }

    private static final Map<ModelConfig, Layout> LAYOUTS = new java.util.concurrent.ConcurrentHashMap<>();

    private final SafeTensors file;
    private final List<Module> modules;

    private LoraFile(SafeTensors file, List<Module> modules) {
        this.file = file;
        this.modules = modules;
    }

    /** Opens a LoRA and maps it onto {@code cfg}; an error names every module that does not fit. */
    public static LoraFile open(Path path, ModelConfig cfg) throws IOException {
        SafeTensors st = SafeTensors.open(path);
        try {
            return new LoraFile(st, map(st, cfg, path.getFileName().toString()));
        } catch (IOException | RuntimeException e) {
            st.close();
            throw e;
        }
    }

    private static List<Module> map(SafeTensors st, ModelConfig cfg, String name) throws IOException {
        Layout l = LAYOUTS.computeIfAbsent(cfg, c -> new Layout(LdmNames.kohyaTargetRows(c),
                CheckpointLayout.shapes(CheckpointLayout.weights(c, DType.F32))));
        Map<String, LdmNames.Target> targets = l.targets();
        Map<String, long[]> layout = l.shapes();
        TreeMap<String, String[]> parts = new TreeMap<>(); // module → [down, up, alpha]
        List<String> unsupported = new ArrayList<>();
        for (String k : st.names()) {
            int dot = k.indexOf('.');
            String module = dot < 0 ? k : k.substring(0, dot);
            String suffix = dot < 0 ? "" : k.substring(dot + 1);
            String[] p = parts.computeIfAbsent(module, m -> new String[3]);
            switch (suffix) {
                case "lora_down.weight" -> p[0] = k;
                case "lora_up.weight" -> p[1] = k;
                case "alpha" -> p[2] = k;
                default -> unsupported.add(k); // LoHa hada_*, LoKr lokr_*, DoRA dora_scale, lora_mid, ...
            }
        }
        if (st.names().stream().noneMatch(k -> k.endsWith(".lora_down.weight"))) {
            boolean model = st.names().stream().anyMatch(k -> k.startsWith(ModelConfigs.UNET));
            throw new CheckpointException("LoRA " + name + " is not a kohya LoRA (no *.lora_down.weight tensors)"
                    + (model ? "; it looks like a model checkpoint" : ""));
        }
        String family = cfg.familyName();
        boolean xlText = parts.keySet().stream().anyMatch(m -> m.startsWith("lora_te1_") || m.startsWith("lora_te2_"));
        if (xlText && !cfg.sdxl()) {
            throw new CheckpointException("LoRA " + name + " is for SDXL (lora_te1_/lora_te2_ modules), not " + family);
        }
        if (cfg.sdxl() && parts.keySet().stream().anyMatch(m -> m.startsWith("lora_te_"))) {
            throw new CheckpointException("LoRA " + name + " is for SD 1.x/2.x (lora_te_ modules), not SDXL");
        }
        if (!unsupported.isEmpty()) {
            throw new CheckpointException("LoRA " + name + " has " + unsupported.size()
                    + " tensors of a kind not supported (only kohya lora_down/lora_up/alpha; LoHa/LoKr/DoRA/"
                    + "CP-decomposed are not): " + limit(unsupported));
        }
        if (parts.isEmpty()) {
            throw new CheckpointException("LoRA " + name + " has no tensors");
        }
        List<Module> out = new ArrayList<>();
        List<String> unknown = new ArrayList<>();
        List<String> bad = new ArrayList<>();
        for (Map.Entry<String, String[]> e : parts.entrySet()) {
            String module = e.getKey();
            String[] p = e.getValue();
            if (p[0] == null || p[1] == null) {
                bad.add(module + " lacks its " + (p[0] == null ? "lora_down" : "lora_up") + ".weight");
                continue;
            }
            LdmNames.Target t = targets.get(module);
            if (t == null) {
                unknown.add(module);
                continue;
            }
            String target = t.key();
            long[] tShape = layout.get(target);
            long[] down = st.shape(p[0]);
            long[] up = st.shape(p[1]);
            String problem = null;
            Kind kind = null;
            int rank = (int) (down.length > 0 ? down[0] : -1);
            if (rank <= 0 || up.length < 2 || up[1] != rank) {
                problem = "down " + Arrays.toString(down) + " and up " + Arrays.toString(up) + " do not share a rank";
            } else if (up[0] != t.rows()) {
                problem = "up " + Arrays.toString(up) + " gives " + up[0] + " outputs, the weight has " + t.rows()
                        + (t.rows() != tShape[0] ? " (rows " + t.rowStart() + ".." + (t.rowStart() + t.rows()) + " of "
                        + tShape[0] + ")" : "");
            } else if (down.length < 2 || down[1] != tShape[1]) {
                problem = "down " + Arrays.toString(down) + " takes " + (down.length < 2 ? "?" : down[1])
                        + " inputs, the weight has " + tShape[1];
            } else if (tShape.length == 2) {
                if (down.length == 2 && up.length == 2) {
                    kind = Kind.LINEAR;
                } else {
                    problem = "a conv LoRA " + Arrays.toString(down) + " on a linear weight";
                }
            } else {
                long k = tShape[2];
                boolean upOk = up.length == 2 || (up.length == 4 && up[2] == 1 && up[3] == 1);
                boolean downOk = down.length == 2 ? k == 1 : down.length == 4 && down[2] == tShape[2] && down[3] == tShape[3];
                if (!upOk || !downOk) {
                    problem = "down " + Arrays.toString(down) + " / up " + Arrays.toString(up)
                            + " do not fit a " + k + "×" + tShape[3] + " conv";
                } else {
                    kind = k == 1 ? Kind.CONV1X1 : Kind.CONV3X3;
                }
            }
            if (problem != null) {
                bad.add(module + " → " + target + " " + Arrays.toString(tShape) + ": " + problem);
                continue;
            }
            double alpha = rank;
            if (p[2] != null) {
                float[] a = st.floats(p[2]);
                if (a.length != 1 || !Float.isFinite(a[0])) {
                    bad.add(module + ".alpha is not one finite number");
                    continue;
                }
                alpha = a[0];
            }
            out.add(new Module(module, target, kind, rank, alpha, tShape, p[0], p[1], t.rowStart(), t.rows()));
        }
        if (!unknown.isEmpty()) {
            throw new CheckpointException("LoRA " + name + " has " + unknown.size() + " of " + parts.size()
                    + " modules that match nothing in this " + family + " model (a LoRA for another architecture?): "
                    + limit(unknown));
        }
        if (!bad.isEmpty()) {
            throw new CheckpointException("LoRA " + name + " has " + bad.size() + " modules that do not fit this model: "
                    + limit(bad));
        }
        return Collections.unmodifiableList(out);
    }

    private static String limit(List<String> items) {
        int max = 12;
        String s = String.join(", ", items.subList(0, Math.min(max, items.size())));
        return items.size() > max ? s + ", … (" + (items.size() - max) + " more)" : s;
    }

    public List<Module> modules() {
        return modules;
    }

    public Path path() {
        return file.path();
    }

    public Map<String, String> metadata() {
        return file.metadata();
    }

    /** Distinct ranks of the modules. */
    public TreeSet<Integer> ranks() {
        TreeSet<Integer> r = new TreeSet<>();
        modules.forEach(m -> r.add(m.rank()));
        return r;
    }

    /** lora_down as float32, [rank, in(·kh·kw)] row-major. */
    public float[] down(Module m) throws IOException {
        return file.finiteFloats(m.downKey());
    }

    /** lora_up as float32, [rows, rank] row-major (the module's rows of its weight: {@link Module#rows}). */
    public float[] up(Module m) throws IOException {
        return file.finiteFloats(m.upKey());
    }

    /** lora_up as float32 over all rows of the target weight, [out, rank] row-major, zero outside the module's rows. */
    public float[] upFullRows(Module m) throws IOException {
        return padRows(up(m), m);
    }

    /** An up matrix of the module's rows placed into its weight's rows (zeros elsewhere). */
    public static float[] padRows(float[] up, Module m) {
        if (!m.partial()) {
            return up;
        }
        float[] full = new float[(int) m.targetShape()[0] * m.rank()];
        System.arraycopy(up, 0, full, m.rowStart() * m.rank(), up.length);
        return full;
    }

    /**
     * {@code scale · (alpha / rank) · up · down}, shaped like the target weight ([out, in] or [out, in, kh, kw],
     * row-major; zero outside the module's rows), to add to it.
     *
     * @throws CheckpointException when a factor is not finite or the product overflows float32
     */
    public float[] delta(Module m, double scale) throws IOException {
        float[] up = upFullRows(m);
        float[] down = down(m);
        int out = (int) m.targetShape()[0];
        int r = m.rank();
        int cols = down.length / r; // in · kh · kw
        float[] d = new float[out * cols];
        double f = scale * m.ratio();
        for (int o = 0; o < out; o++) {
            for (int k = 0; k < r; k++) {
                float u = (float) (f * up[o * r + k]);
                if (u == 0) {
                    continue;
                }
                int base = k * cols;
                int row = o * cols;
                for (int c = 0; c < cols; c++) {
                    d[row + c] += u * down[base + c];
                }
            }
        }
        for (float v : d) {
            if (!Float.isFinite(v)) {
                // finite factors whose product overflows float32 (huge weights or alpha): refuse, never merge an Inf
                throw new CheckpointException("LoRA module " + m.name() + ": scale " + scale + " × alpha/rank "
                        + m.ratio() + " × up · down overflows float32 (its weights are far too large)");
            }
        }
        return d;
    }

    @Override
    public void close() {
        file.close();
    }
}
