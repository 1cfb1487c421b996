package dev.sdserve.model;

import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.locks.ReentrantLock;

/**
 * Writes a civitai-layout checkpoint of any family ({@link CheckpointLayout#full}) with deterministic pseudo-random
 * weights, streamed through {@link SafeTensorsWriter} (a 2 GB fp16 SD 1.5 file needs a few MB of heap), plus the
 * config JSON beside it ({@code <stem>.json}, {@link ModelConfigs#toJson}).
 *
 * <p>Weights are scaled so activations stay O(1): conv/linear weights N(0, 1/fan_in), biases N(0, 0.02²), norm
 * scales 1 + N(0, 0.05²) and norm shifts N(0, 0.02²), token embeddings N(0, 1), position embeddings N(0, 0.1²).
 * The schedule buffers are LatentDiffusion's, from the SD beta schedule (scaled linear 0.00085 → 0.012, 1000
 * steps); position_ids are 0..n−1. Every value is a pure function of (seed, tensor name, index), so a file is
 * identical for the same seed whatever the chunking.
 */
public final class RandomCheckpoint {
    /** Generator id written to the metadata; a file with another id is not reused. */
    public static final String GENERATOR = "sd-serve-random-v1";
    public static final double BETA_START = 0.00085;
    public static final double BETA_END = 0.012;

    private static final ConcurrentHashMap<Path, ReentrantLock> LOCKS = new ConcurrentHashMap<>();

    private RandomCheckpoint() {
    }

    /**
     * Returns {@code target}, writing it (and its config JSON) unless a valid file made by this generator with the
     * same architecture, dtype and seed is already there. Safe against concurrent callers in this and other JVMs.
     */
    public static Path ensure(Path target, ModelConfig cfg, DType dtype, long seed) throws IOException {
        Path abs = target.toAbsolutePath().normalize();
        Files.createDirectories(abs.getParent());
        ReentrantLock lock = LOCKS.computeIfAbsent(abs, k -> new ReentrantLock());
        lock.lock();
        try (FileChannel ch = FileChannel.open(abs.resolveSibling(abs.getFileName() + ".lock"),
                StandardOpenOption.CREATE, StandardOpenOption.WRITE);
             FileLock ignored = ch.lock()) {
            if (!isValid(abs, cfg, dtype, seed)) {
                write(abs, cfg, dtype, seed);
            } else {
                writeConfigJson(abs, cfg);
            }
            return abs;
        } finally {
            lock.unlock();
        }
    }

    /** File name of the full-size SD 1.5 random checkpoint made by {@link #sd15}. */
    public static final String SD15_FILE = "sd15-random-fp16-v1.safetensors";
    public static final long SD15_SEED = 1_5_2022L;

    /**
     * The full-size SD 1.5-architecture checkpoint with random weights in fp16 (about 2.1 GB, the civitai layout
     * of sd15-full-layout.txt) in {@code dir}, written on first use (about a minute) and reused after. For benchmarks.
     */
    public static Path sd15(Path dir) throws IOException {
        return ensure(dir.resolve(SD15_FILE), ModelConfigs.sd15(), DType.F16, SD15_SEED);
    }

    /** True when {@code file} holds exactly the layout of {@code cfg} in {@code dtype}, made by this generator with {@code seed}. */
    public static boolean isValid(Path file, ModelConfig cfg, DType dtype, long seed) {
        if (!Files.isRegularFile(file)) {
            return false;
        }
        try (SafeTensors st = SafeTensors.open(file)) {
            if (!GENERATOR.equals(st.metadata().get("sdserve.generator"))
                    || !Long.toString(seed).equals(st.metadata().get("sdserve.seed"))) {
                return false;
            }
            List<CheckpointLayout.Entry> layout = CheckpointLayout.full(cfg, dtype);
            if (st.tensors().size() != layout.size()) {
                return false;
            }
            for (CheckpointLayout.Entry e : layout) {
                SafeTensors.TensorInfo t = st.tensors().get(e.name());
                if (t == null || t.dtype() != e.dtype() || !Arrays.equals(t.shape(), e.shape())) {
                    return false;
                }
            }
            return true;
        } catch (IOException e) {
            return false;
        }
    }

    /** Writes the file (atomically) and its config JSON, replacing what is there. */
    public static void write(Path target, ModelConfig cfg, DType dtype, long seed) throws IOException {
        if (dtype != DType.F32 && dtype != DType.F16 && dtype != DType.BF16) {
            throw new IllegalArgumentException("weights can be F32, F16 or BF16, not " + dtype);
        }
        SafeTensorsWriter w = new SafeTensorsWriter()
                .metadata("format", "pt")
                .metadata("sdserve.generator", GENERATOR)
                .metadata("sdserve.seed", Long.toString(seed));
        double[][] schedule = scheduleBuffers();
        for (CheckpointLayout.Entry e : CheckpointLayout.full(cfg, dtype)) {
            if (e.dtype() == DType.I64) {
                long[] ids = new long[(int) e.elements()];
                for (int i = 0; i < ids.length; i++) {
                    ids[i] = i;
                }
                w.addLongs(e.name(), DType.I64, e.shape(), ids);
                continue;
            }
            int sched = CheckpointLayout.SCHEDULE_BUFFERS.indexOf(e.name());
            if (sched >= 0) {
                double[] values = schedule[sched];
                w.add(e.name(), e.dtype(), e.shape(), (start, chunk, count) -> {
                    for (int i = 0; i < count; i++) {
                        chunk[i] = (float) values[(int) start + i];
                    }
                });
                continue;
            }
            Init init = init(e);
            long key = mix(seed ^ fnv(e.name()));
            w.add(e.name(), e.dtype(), e.shape(), (start, chunk, count) -> {
                for (int i = 0; i < count; i++) {
                    chunk[i] = (float) (init.mean + init.std * gaussian(key, start + i));
                }
            });
        }
        Path tmpDirCheck = target.toAbsolutePath().getParent();
        Files.createDirectories(tmpDirCheck);
        w.write(target);
        writeConfigJson(target, cfg);
    }

    private static void writeConfigJson(Path target, ModelConfig cfg) throws IOException {
        Path json = configPath(target);
        byte[] bytes = ModelConfigs.toJson(cfg).toPrettyString().getBytes(StandardCharsets.UTF_8);
        if (Files.isRegularFile(json) && Arrays.equals(Files.readAllBytes(json), bytes)) {
            return;
        }
        Path tmp = json.resolveSibling(json.getFileName() + ".tmp" + ProcessHandle.current().pid());
        Files.write(tmp, bytes);
        Files.move(tmp, json, java.nio.file.StandardCopyOption.REPLACE_EXISTING, java.nio.file.StandardCopyOption.ATOMIC_MOVE);
    }

    /** The config JSON beside a checkpoint: {@code <stem>.json}. */
    public static Path configPath(Path checkpoint) {
        String n = checkpoint.getFileName().toString();
        String stem = n.endsWith(".safetensors") ? n.substring(0, n.length() - ".safetensors".length()) : n;
        return checkpoint.resolveSibling(stem + ".json");
    }

    private record Init(double mean, double std) {
    }

    /** How a tensor is initialised, from its name and shape. */
    static Init init(CheckpointLayout.Entry e) {
        String n = e.name();
        long[] s = e.shape();
        if (n.endsWith("token_embedding.weight")) {
            return new Init(0, 1);
        }
        if (n.endsWith("position_embedding.weight") || n.endsWith("positional_embedding")) {
            return new Init(0, 0.1);
        }
        if (n.endsWith("text_projection")) { // applied as x @ P: fan-in is the first dimension
            return new Init(0, 1 / Math.sqrt(s[0]));
        }
        if (s.length >= 2) {
            long fanIn = 1;
            for (int i = 1; i < s.length; i++) {
                fanIn *= s[i];
            }
            return new Init(0, 1 / Math.sqrt(fanIn));
        }
        if (n.endsWith(".weight")) { // rank-1 weight: a GroupNorm / LayerNorm scale
            return new Init(1, 0.05);
        }
        return new Init(0, 0.02);
    }

    // ---------------------------------------------------------------- schedule

    /**
     * LatentDiffusion's 12 schedule buffers in {@link CheckpointLayout#SCHEDULE_BUFFERS} order, in float64, for
     * the SD beta schedule (betas = linspace(√0.00085, √0.012, 1000)², v_posterior 0).
     */
    public static double[][] scheduleBuffers() {
        int n = CheckpointLayout.TRAIN_TIMESTEPS;
        double[] betas = new double[n];
        double a = Math.sqrt(BETA_START);
        double b = Math.sqrt(BETA_END);
        for (int i = 0; i < n; i++) {
            double x = a + (b - a) * i / (n - 1);
            betas[i] = x * x;
        }
        double[] ac = new double[n];
        double[] acPrev = new double[n];
        double prod = 1;
        for (int i = 0; i < n; i++) {
            acPrev[i] = prod;
            prod *= 1 - betas[i];
            ac[i] = prod;
        }
        double[][] out = new double[12][n];
        for (int i = 0; i < n; i++) {
            double pv = betas[i] * (1 - acPrev[i]) / (1 - ac[i]);
            out[0][i] = betas[i];
            out[1][i] = ac[i];
            out[2][i] = acPrev[i];
            out[3][i] = Math.sqrt(ac[i]);
            out[4][i] = Math.sqrt(1 - ac[i]);
            out[5][i] = Math.log(1 - ac[i]);
            out[6][i] = Math.sqrt(1 / ac[i]);
            out[7][i] = Math.sqrt(1 / ac[i] - 1);
            out[8][i] = pv;
            out[9][i] = Math.log(Math.max(pv, 1e-20));
            out[10][i] = betas[i] * Math.sqrt(acPrev[i]) / (1 - ac[i]);
            out[11][i] = (1 - acPrev[i]) * Math.sqrt(1 - betas[i]) / (1 - ac[i]);
        }
        return out;
    }

    // ---------------------------------------------------------------- counter-based pseudo-random numbers

    static long fnv(String s) {
        long h = 0xcbf29ce484222325L;
        for (byte c : s.getBytes(StandardCharsets.UTF_8)) {
            h ^= c & 0xff;
            h *= 0x100000001b3L;
        }
        return h;
    }

    /** SplitMix64 finaliser. */
    static long mix(long z) {
        z = (z ^ (z >>> 30)) * 0xbf58476d1ce4e5b9L;
        z = (z ^ (z >>> 27)) * 0x94d049bb133111ebL;
        return z ^ (z >>> 31);
    }

    /**
     * Approximately standard normal (mean 0, variance 1): the sum of four 16-bit uniforms from one 64-bit hash,
     * centred and scaled (Irwin–Hall, |x| ≤ 2√3).
     */
    static double gaussian(long key, long index) {
        long h = mix(key + index * 0x9E3779B97F4A7C15L);
        long s = (h & 0xffff) + ((h >>> 16) & 0xffff) + ((h >>> 32) & 0xffff) + (h >>> 48);
        // each term uniform on {0..65535}: mean 32767.5, variance (65536² − 1) / 12
        return (s - 4 * 32767.5) / (Math.sqrt(4 * (65536.0 * 65536.0 - 1) / 12));
    }
}
