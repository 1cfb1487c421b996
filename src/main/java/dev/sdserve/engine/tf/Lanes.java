package dev.sdserve.engine.tf;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import org.bytedeco.javacpp.BytePointer;
import org.bytedeco.javacpp.Loader;
import org.bytedeco.javacpp.Pointer;
import org.bytedeco.javacpp.PointerPointer;
import org.tensorflow.Operand;
import org.tensorflow.ndarray.Shape;
import org.tensorflow.op.Ops;
import org.tensorflow.types.TInt32;
import org.tensorflow.types.family.TType;

/**
 * Per-sample lanes: a batched network built as independent chains of ops, one per part of the batch, in a session
 * with one intra-op thread per lane and one inter-op thread per lane, so each core runs its own samples' ops from
 * start to end with no hand-off inside an op. On two cores a guided step (batch 2: the prompt's sample and the
 * negative's) then runs as two single-thread UNets side by side: oneDNN's single-thread kernels lose nothing to
 * splitting an op between threads, where two threads inside every op of a 32×32 latent wait on each other.
 *
 * <p>TensorFlow sizes one process-wide intra-op pool from the first session's settings unless the environment has
 * {@code TF_OVERRIDE_GLOBAL_THREADPOOL=1} when the first session is made, which gives each session its own pools.
 * {@link #perSessionPools()} exports that variable into the process environment (through JavaCPP: the C
 * {@code environ} array gets one more entry; nothing else changes) before the first session, unless the user set it
 * (then their value holds: {@code TF_OVERRIDE_GLOBAL_THREADPOOL=0} keeps one process-wide pool, and no lanes).
 * Sessions with their own pools and no lanes run as before (same threads per op). Without per-session pools no graph
 * is built in lanes (one thread per op would be all the process had). {@code -Dsdserve.lanes=1} builds no lanes.
 */
public final class Lanes {
    private Lanes() {
    }

    static final String ENV = "TF_OVERRIDE_GLOBAL_THREADPOOL";

    /** Lanes per batched graph ({@code -Dsdserve.lanes}, read at each graph choice): 2 by default, 1 = off. */
    static int configured() {
        return Math.max(1, Integer.getInteger("sdserve.lanes", 2));
    }

    /** What was decided at the first session: whether each session has its own thread pools. */
    private static Boolean perSession;
    /** The exported environment entry and the array holding it: native memory that must outlive the process. */
    @SuppressWarnings("unused")
    private static Object keepAlive;

    /**
     * Whether sessions get their own thread pools (call before the first session; later calls return the first
     * answer, since TensorFlow reads the variable once).
     */
    public static synchronized boolean perSessionPools() {
        if (perSession == null) {
            String user = System.getenv(ENV);
            perSession = user != null ? user.equals("1") || user.equalsIgnoreCase("true") : export(ENV, "1");
        }
        return perSession;
    }

    /**
     * Per-sample work below which lanes do not pay for their graph: a lanes graph has twice the ops, so its first
     * call (TensorFlow's graph optimisation, oneDNN's primitives) costs more. On the demo model at 128² (a UNet call
     * of ~1 M of the {@link #unetWork} measure) lanes made a step 33 instead of 60 ms but the first step 1.3 s longer,
     * and `generate` (20 steps) 7.7 → 9.5 s; SD 1.5 at a 32×32 latent (105 M) saves ≈ 250 ms a guided step.
     */
    static final long UNET_MIN_WORK = 1L << 22;
    /** As {@link #UNET_MIN_WORK} for a text tower ({@link #textWork}): CLIP-L at 77 tokens is 545 M, the demo's 16 M. */
    static final long TEXT_MIN_WORK = 100_000_000L;

    /** A UNet sample's work for the lanes choice: latent pixels × first-level channels². */
    static long unetWork(int height, int width, int channels) {
        return (long) height * width * channels * channels;
    }

    /** A text tower's work per sample for the lanes choice: tokens × width² × layers. */
    static long textWork(int tokens, int width, int layers) {
        return (long) tokens * width * width * layers;
    }

    /**
     * Lanes for a batch of {@code batch} samples of {@code work} each ({@link #unetWork}, {@link #textWork}) against
     * {@code minWork}: {@link #configured()} when the work is at least that, the batch divides evenly into them (an odd
     * batch split in two would leave one core with more work than the threads of the plain graph share), there is a
     * thread for each lane ({@code sdserve.threads}) and sessions have their own pools, else 1 (the plain graph).
     * {@code -Dsdserve.lanes.anySize=true} drops the work bound (tests run lanes on the tiny models with it).
     */
    public static int forBatch(int batch, long work, long minWork) {
        int lanes = configured();
        int threads = Integer.getInteger("sdserve.threads", Runtime.getRuntime().availableProcessors());
        if (lanes < 2 || (work < minWork && !Boolean.getBoolean("sdserve.lanes.anySize")) || batch < lanes || batch % lanes != 0 || threads < lanes
                || !perSessionPools()) {
            return 1;
        }
        return lanes;
    }

    /** Intra-op threads of each lane when the process has {@code threads}. */
    static int threadsPerLane(int threads, int lanes) {
        return Math.max(1, threads / lanes);
    }

    /**
     * The inputs (each [B, …] with B the dynamic first dimension) cut into {@code lanes} consecutive equal parts
     * along the batch, each with its input's static shape (batch −1). {@code lanes == 1}: the inputs themselves.
     */
    static <T extends TType> List<Map<String, Operand<T>>> split(Ops tf, Map<String, Operand<T>> inputs,
                                                                   int lanes) {
        if (lanes == 1) {
            return List.of(inputs);
        }
        List<Map<String, Operand<T>>> parts = new ArrayList<>();
        for (int lane = 0; lane < lanes; lane++) {
            parts.add(new LinkedHashMap<>());
        }
        for (var e : inputs.entrySet()) {
            for (int lane = 0; lane < lanes; lane++) {
                parts.get(lane).put(e.getKey(), part(tf, e.getValue(), lane, lanes));
            }
        }
        return parts;
    }

    /** Part {@code lane} of {@code lanes} of {@code x} along its first dimension, with x's static shape. */
    static <T extends TType> Operand<T> part(Ops tf, Operand<T> x, int lane, int lanes) {
        Shape s = x.shape();
        int rank = s.numDimensions();
        Operand<TInt32> n = tf.slice(tf.shape(x), tf.constant(new int[]{0}), tf.constant(new int[]{1}));
        Operand<TInt32> size = tf.math.floorDiv(n, tf.constant(new int[]{lanes}));
        Operand<TInt32> start = tf.math.mul(size, tf.constant(new int[]{lane}));
        int[] zeros = new int[rank - 1];
        int[] all = new int[rank - 1];
        java.util.Arrays.fill(all, -1);
        long[] shape = new long[rank];
        shape[0] = -1;
        for (int d = 1; d < rank; d++) {
            shape[d] = s.size(d);
        }
        return tf.reshape(tf.slice(x, concat(tf, start, zeros), concat(tf, size, all)), tf.constant(shape));
    }

    /** Each output of the lanes joined back along the batch, in lane order. */
    static <T extends TType> Map<String, Operand<T>> join(Ops tf, List<Map<String, Operand<T>>> outs) {
        if (outs.size() == 1) {
            return outs.get(0);
        }
        Map<String, Operand<T>> joined = new LinkedHashMap<>();
        for (String name : outs.get(0).keySet()) {
            List<Operand<T>> parts = new ArrayList<>();
            for (Map<String, Operand<T>> o : outs) {
                parts.add(o.get(name));
            }
            joined.put(name, tf.concat(parts, tf.constant(0)));
        }
        return joined;
    }

    private static Operand<TInt32> concat(Ops tf, Operand<TInt32> first, int[] rest) {
        return rest.length == 0 ? first : tf.concat(List.of(first, tf.constant(rest)), tf.constant(0));
    }

    /**
     * Adds {@code name=value} to the C environment of this process (what {@code getenv} in native code sees) if it
     * is not there: a new {@code environ} array with the old entries and this one. Returns whether the entry is
     * there afterwards. Java's own {@link System#getenv} keeps its startup copy.
     */
    static boolean export(String name, String value) {
        try {
            org.tensorflow.TensorFlow.version(); // loads the native libraries (and JavaCPP's) first
            Pointer at = Loader.addressof("environ");
            if (at == null || at.isNull()) {
                return false;
            }
            PointerPointer<BytePointer> var = new PointerPointer<>(at);
            PointerPointer<BytePointer> old = new PointerPointer<>(var.get(0));
            String prefix = name + "=";
            int n = 0;
            for (Pointer e = old.get(0); e != null && !e.isNull(); e = old.get(++n)) {
                if (new BytePointer(e).getString().startsWith(prefix)) {
                    return new BytePointer(e).getString().equals(prefix + value);
                }
            }
            BytePointer entry = new BytePointer(prefix + value);
            PointerPointer<BytePointer> fresh = new PointerPointer<>(n + 2L);
            for (int i = 0; i < n; i++) {
                fresh.put(i, old.get(i));
            }
            fresh.put(n, entry);
            fresh.put(n + 1, (Pointer) null);
            keepAlive = new Object[]{entry, fresh};
            var.put(0, fresh);
            return true;
        } catch (RuntimeException | LinkageError e) {
            return false;
        }
    }
}
