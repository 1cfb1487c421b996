package dev.sdserve.engine.tf;

import dev.sdserve.engine.LoraWeight;
import dev.sdserve.job.ServeException;
import dev.sdserve.model.CheckpointException;
import dev.sdserve.model.LoraFile;
import dev.sdserve.model.ModelConfig;
import org.tensorflow.ndarray.Shape;
import org.tensorflow.ndarray.buffer.DataBuffers;
import org.tensorflow.types.TFloat32;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;

/**
 * LoRA tensors for the TF engine: each LoRA file is read once per (file hash, architecture) and kept as float32
 * down/up matrices (up pre-multiplied by alpha/rank), and turned into either
 * <ul>
 * <li>a merged weight overlay ({@link #merge}): for every weight a LoRA set touches,
 * {@code W + Σ weight · alpha/rank · up · down} as a TF tensor fed in place of W, or</li>
 * <li>unmerged low-rank feeds ({@link #lowRankFeeds}): stacked down/up matrices and a per-sample gate for
 * {@link LowRank}, so samples with different LoRA sets share one graph run.</li>
 * </ul>
 */
public final class LoraLibrary {
    /** Where LoRAs come from: name → file (NOT_FOUND / INVALID_ARGUMENT as {@link ServeException}), file → hash. */
    public interface Source {
        Path resolve(String name);

        String hash(Path file);
    }

    /** One module: the weight key it changes, down [r, in·kh·kw] and up·(alpha/r) [out, r]. */
    public record Mod(String key, LoraFile.Kind kind, int rank, float[] down, float[] up, long[] targetShape) {
        int cols() {
            return down.length / rank;
        }
    }

    /** A LoRA prepared for one architecture. */
    public record Prepared(String name, String hash, Map<String, Mod> mods) {
        public boolean hasConv3x3() {
            return mods.values().stream().anyMatch(m -> m.kind() == LoraFile.Kind.CONV3X3);
        }
    }

    private record Key(String hash, ModelConfig config) {
    }

    private final Source source;
    private final Map<Key, Prepared> cache = Collections.synchronizedMap(new LinkedHashMap<>(16, 0.75f, true) {
        @Override
        protected boolean removeEldestEntry(Map.Entry<Key, Prepared> e) {
            return size() > Integer.getInteger("sdserve.lora.cache-entries", 64);
        }
    });
    private long loads;

    public LoraLibrary(Source source) {
        this.source = source;
    }

    /** Files read so far (cache misses). */
    public synchronized long loads() {
        return loads;
    }

    /** The LoRA prepared for {@code cfg}: NOT_FOUND if unknown, INVALID_ARGUMENT naming it if it does not fit. */
    public Prepared get(String name, ModelConfig cfg) {
        Path p = source.resolve(name);
        String hash = source.hash(p);
        Key k = new Key(hash, cfg);
        Prepared pr = cache.get(k);
        if (pr != null) {
            return pr;
        }
        synchronized (this) {
            loads++;
        }
        try (LoraFile f = LoraFile.open(p, cfg)) {
            Map<String, Mod> mods = new TreeMap<>();
            for (LoraFile.Module m : f.modules()) {
                float[] up = f.up(m);
                float r = (float) m.ratio();
                for (int i = 0; i < up.length; i++) {
                    up[i] *= r;
                }
                // modules on row blocks of one weight (an OpenCLIP tower's q/k/v in its fused in_proj) stack into one
                mods.merge(m.target(), new Mod(m.target(), m.kind(), m.rank(), f.down(m), LoraFile.padRows(up, m),
                        m.targetShape()), LoraLibrary::stack);
            }
            pr = new Prepared(name, hash, Collections.unmodifiableMap(mods));
        } catch (CheckpointException e) {
            throw ServeException.invalid("lora", "LoRA '" + name + "' cannot be applied to this model: " + e.getMessage());
        } catch (IOException e) {
            throw ServeException.invalid("lora", "LoRA '" + name + "' cannot be read: " + e.getMessage());
        }
        cache.put(k, pr);
        return pr;
    }

    /** Two modules on one weight as one of rank ra + rb: down rows stacked, up columns side by side. */
    static Mod stack(Mod a, Mod b) {
        if (a.kind() != b.kind() || a.cols() != b.cols()) {
            throw new IllegalStateException(a.key() + ": LoRA modules of different kinds on one weight");
        }
        int out = (int) a.targetShape()[0];
        int r = a.rank() + b.rank();
        float[] down = java.util.Arrays.copyOf(a.down(), a.down().length + b.down().length);
        System.arraycopy(b.down(), 0, down, a.down().length, b.down().length);
        float[] up = new float[out * r];
        for (int o = 0; o < out; o++) {
            System.arraycopy(a.up(), o * a.rank(), up, o * r, a.rank());
            System.arraycopy(b.up(), o * b.rank(), up, o * r + a.rank(), b.rank());
        }
        return new Mod(a.key(), a.kind(), r, down, up, a.targetShape());
    }

    /** Canonical key of a LoRA set (sorted by name; weights summed per name; zero weights dropped). */
    public static String setKey(List<LoraWeight> loras) {
        TreeMap<String, Double> m = new TreeMap<>();
        for (LoraWeight l : loras) {
            m.merge(l.name(), l.weight(), Double::sum);
        }
        m.values().removeIf(w -> w == 0.0);
        StringBuilder sb = new StringBuilder();
        m.forEach((n, w) -> sb.append(n).append('@').append(w).append(';'));
        return sb.toString();
    }

    /**
     * Merged overlay: weight key → W + Σ weight·up·down, for the weights this set touches whose key starts with
     * {@code prefix} (one network). The caller owns (closes) the tensors.
     */
    public static Map<String, TFloat32> merge(Weights w, List<Prepared> loras, List<Double> weights, String prefix) {
        Map<String, float[]> acc = new LinkedHashMap<>();
        for (int j = 0; j < loras.size(); j++) {
            double s = weights.get(j);
            for (Mod m : loras.get(j).mods().values()) {
                if (!m.key().startsWith(prefix) || !w.has(m.key())) {
                    continue;
                }
                float[] base = acc.computeIfAbsent(m.key(), w::floats);
                float[] d = delta(m, s);
                if (m.targetShape().length == 4 && m.targetShape()[2] * m.targetShape()[3] > 1) {
                    long[] t = m.targetShape();
                    d = Weights.oihwToHwio(d, (int) t[0], (int) t[1], (int) t[2], (int) t[3]);
                }
                if (d.length != base.length) {
                    throw new IllegalStateException(m.key() + ": LoRA delta of " + d.length + " values, weight has " + base.length);
                }
                for (int i = 0; i < d.length; i++) {
                    base[i] += d[i];
                }
            }
        }
        Map<String, TFloat32> out = new LinkedHashMap<>();
        try {
            for (var e : acc.entrySet()) {
                float[] v = e.getValue();
                out.put(e.getKey(), TFloat32.tensorOf(Shape.of(w.shape(e.getKey())), d -> d.copyFrom(DataBuffers.of(v, true, false))));
            }
        } catch (RuntimeException ex) {
            out.values().forEach(TFloat32::close);
            throw ex;
        }
        return out;
    }

    /** scale · up · down ([out, cols], PyTorch layout). */
    static float[] delta(Mod m, double scale) {
        int out = (int) m.targetShape()[0];
        int r = m.rank();
        int cols = m.cols();
        float[] d = new float[out * cols];
        for (int o = 0; o < out; o++) {
            for (int k = 0; k < r; k++) {
                float u = (float) (scale * m.up()[o * r + k]);
                if (u == 0) {
                    continue;
                }
                int base = k * cols;
                int row = o * cols;
                for (int c = 0; c < cols; c++) {
                    d[row + c] += u * m.down()[base + c];
                }
            }
        }
        return d;
    }

    /** Low-rank feeds for a batch, and the weight keys they cover. The caller closes the tensors. */
    public record LowRankFeeds(Set<String> keys, Map<String, TFloat32> feeds) implements AutoCloseable {
        @Override
        public void close() {
            feeds.values().forEach(TFloat32::close);
        }
    }

    /**
     * Per sample, its LoRAs (prepared) and weights; builds stacked A/B and per-sample gates for every linear or
     * 1×1-conv weight (key starting with {@code prefix}) any sample's LoRAs touch.
     */
    public static LowRankFeeds lowRankFeeds(List<List<Prepared>> perSample, List<List<Double>> weightsPerSample, String prefix) {
        // distinct LoRAs in the batch, by hash
        Map<String, Prepared> distinct = new LinkedHashMap<>();
        perSample.forEach(l -> l.forEach(p -> distinct.putIfAbsent(p.hash(), p)));
        List<Prepared> list = new ArrayList<>(distinct.values());
        int n = perSample.size();
        double[][] gate = new double[n][list.size()];
        for (int s = 0; s < n; s++) {
            for (int j = 0; j < perSample.get(s).size(); j++) {
                gate[s][list.indexOf(distinct.get(perSample.get(s).get(j).hash()))] += weightsPerSample.get(s).get(j);
            }
        }
        TreeSet<String> keys = new TreeSet<>();
        for (Prepared p : list) {
            for (Mod m : p.mods().values()) {
                if (m.key().startsWith(prefix)) {
                    if (m.kind() == LoraFile.Kind.CONV3X3) {
                        throw new IllegalStateException("LoRA '" + p.name() + "' has a 3×3 conv module (" + m.key()
                                + "): not supported on the unmerged path");
                    }
                    keys.add(m.key());
                }
            }
        }
        Map<String, TFloat32> feeds = new LinkedHashMap<>();
        try {
            for (String key : keys) {
                List<Integer> js = new ArrayList<>();
                int rTotal = 0;
                int in = -1, out = -1;
                for (int j = 0; j < list.size(); j++) {
                    Mod m = list.get(j).mods().get(key);
                    if (m != null) {
                        js.add(j);
                        rTotal += m.rank();
                        in = m.cols();
                        out = (int) m.targetShape()[0];
                    }
                }
                float[] a = new float[rTotal * in];
                float[] b = new float[out * rTotal];
                float[] g = new float[n * rTotal];
                int off = 0;
                for (int j : js) {
                    Mod m = list.get(j).mods().get(key);
                    int r = m.rank();
                    System.arraycopy(m.down(), 0, a, off * in, r * in);
                    for (int o = 0; o < out; o++) {
                        System.arraycopy(m.up(), o * r, b, o * rTotal + off, r);
                    }
                    for (int s = 0; s < n; s++) {
                        for (int k = 0; k < r; k++) {
                            g[s * rTotal + off + k] = (float) gate[s][j];
                        }
                    }
                    off += r;
                }
                int rt = rTotal, ii = in, oo = out;
                feeds.put(LowRank.down(key), TFloat32.tensorOf(Shape.of(rt, ii), d -> d.copyFrom(DataBuffers.of(a, true, false))));
                feeds.put(LowRank.up(key), TFloat32.tensorOf(Shape.of(oo, rt), d -> d.copyFrom(DataBuffers.of(b, true, false))));
                feeds.put(LowRank.gate(key), TFloat32.tensorOf(Shape.of(n, 1, rt), d -> d.copyFrom(DataBuffers.of(g, true, false))));
            }
        } catch (RuntimeException ex) {
            feeds.values().forEach(TFloat32::close);
            throw ex;
        }
        return new LowRankFeeds(Collections.unmodifiableSet(keys), feeds);
    }
}
