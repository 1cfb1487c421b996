package dev.sdserve.engine.tf;

import org.tensorflow.Graph;
import org.tensorflow.Operand;
import org.tensorflow.Result;
import org.tensorflow.Session;
import org.tensorflow.Tensor;
import org.tensorflow.op.Ops;
import org.tensorflow.proto.ConfigProto;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;

/**
 * One built graph and its session: named inputs and outputs, and the weight placeholders it feeds from the
 * model's shared {@link Weights} at every run. Built once, run many times; not thread-safe for building, and runs
 * are serialised by the caller (the engine runs one call at a time per model).
 */
public final class TfGraph implements AutoCloseable {
    private final Graph graph;
    private final Session session;
    private final WeightBinder binder;
    private final Map<String, Operand<?>> inputs = new LinkedHashMap<>();
    private final Map<String, Operand<?>> outputs = new LinkedHashMap<>();
    private final String name;

    /** What a network builder gets: the ops, the primitives, and where to register inputs and outputs. */
    public final class Builder {
        public final Ops tf;
        public final Nn nn;

        Builder(Ops tf) {
            this.tf = tf;
            this.nn = new Nn(tf, binder);
        }

        public <T extends Operand<?>> T input(String name, T op) {
            inputs.put(name, op);
            return op;
        }

        public void output(String name, Operand<?> op) {
            outputs.put(name, op);
        }

        /**
         * Builds the network in {@code lanes} per-sample lanes ({@link Lanes}): the session then runs one lane per
         * inter-op thread with the intra-op threads shared out between them. 1 = the plain graph.
         */
        public void lanes(int lanes) {
            TfGraph.this.lanes = lanes;
        }
    }

    static {
        Lanes.perSessionPools(); // before the first session (TensorFlow reads its pool setting once)
    }

    private int lanes = 1;

    private TfGraph(String name, Weights weights, ComputeDType compute, Consumer<Builder> build, ConfigProto config) {
        this.name = name;
        this.graph = new Graph();
        this.binder = new WeightBinder(weights, compute);
        Session s = null;
        try {
            build.accept(new Builder(Ops.create(graph)));
            if (lanes > 1 && config != null) {
                config = config.toBuilder()
                        .setIntraOpParallelismThreads(Lanes.threadsPerLane(config.getIntraOpParallelismThreads(), lanes))
                        .setInterOpParallelismThreads(lanes).setUsePerSessionThreads(true).build();
            }
            s = config == null ? new Session(graph) : new Session(graph, config);
        } catch (RuntimeException e) {
            graph.close();
            throw e;
        }
        this.session = s;
    }

    public static TfGraph build(String name, Weights weights, Consumer<Builder> build) {
        return build(name, weights, ComputeDType.FP32, build);
    }

    /** A graph whose networks compute in {@code compute} (weights cast as needed; inputs and outputs float32). */
    public static TfGraph build(String name, Weights weights, ComputeDType compute, Consumer<Builder> build) {
        return new TfGraph(name, weights, compute, build, sessionConfig());
    }

    /** Threads: {@code sdserve.threads} (system property) or all cores for intra-op; one inter-op thread. */
    static ConfigProto sessionConfig() {
        int threads = Integer.getInteger("sdserve.threads", Runtime.getRuntime().availableProcessors());
        int inter = Integer.getInteger("sdserve.interOpThreads", 1);
        ConfigProto.Builder b = ConfigProto.newBuilder()
                .setIntraOpParallelismThreads(threads)
                .setInterOpParallelismThreads(inter);
        if (!Boolean.parseBoolean(System.getProperty("sdserve.grappler", "true"))) {
            b.setGraphOptions(org.tensorflow.proto.GraphOptions.newBuilder()
                    .setRewriteOptions(org.tensorflow.proto.RewriterConfig.newBuilder().setDisableMetaOptimizer(true)));
        }
        return b.build();
    }

    /**
     * Runs with the given inputs (by name) and fetches the named outputs. The caller closes the Result. Input
     * tensors stay owned by the caller.
     */
    public Result run(Map<String, ? extends Tensor> feeds, List<String> fetches) {
        return run(feeds, fetches, Map.of());
    }

    /** As {@link #run(Map, List)}, feeding {@code weightOverrides} (by weight key) instead of the model's weights. */
    public Result run(Map<String, ? extends Tensor> feeds, List<String> fetches, Map<String, ? extends Tensor> weightOverrides) {
        Session.Runner r = session.runner();
        for (var e : feeds.entrySet()) {
            Operand<?> in = inputs.get(e.getKey());
            if (in == null) {
                throw new IllegalArgumentException(name + ": no input '" + e.getKey() + "' (inputs: " + inputs.keySet() + ")");
            }
            r.feed(in, e.getValue());
        }
        Weights w = binder.weights();
        for (var e : binder.bound().entrySet()) {
            Tensor o = weightOverrides.get(e.getKey());
            if (o != null) {
                r.feed(binder.overridable().get(e.getKey()), o); // float32, downstream of any storage cast
            } else {
                r.feed(e.getValue(), w.tensor(e.getKey()));
            }
        }
        for (var e : binder.transforms().entrySet()) {
            KernelTransformCache.Key k = e.getValue();
            if (k.weights().stream().anyMatch(weightOverrides::containsKey)) {
                continue; // a LoRA-merged weight: the graph transforms (transposes, stacks) the override itself
            }
            org.tensorflow.types.TFloat32 u = w.transforms().get(k, binder.budget(k));
            if (u != null) {
                r.feed(e.getKey(), u);
            }
        }
        for (String f : fetches) {
            Operand<?> out = outputs.get(f);
            if (out == null) {
                throw new IllegalArgumentException(name + ": no output '" + f + "' (outputs: " + outputs.keySet() + ")");
            }
            r.fetch(out);
        }
        java.util.function.Consumer<Map<String, Double>> sink = TRACE_NEXT.getAndSet(null);
        try {
            if (sink == null) {
                return r.run();
            }
            r.setOptions(org.tensorflow.proto.RunOptions.newBuilder()
                    .setTraceLevel(org.tensorflow.proto.RunOptions.TraceLevel.FULL_TRACE).build());
            Result res = r.runAndFetchMetadata();
            Map<String, Double> byType = opMillis(graph, res.getMetadata().orElseThrow());
            byType.putAll(busy(res.getMetadata().orElseThrow()));
            sink.accept(byType);
            return res;
        } catch (RuntimeException e) {
            throw explain(e);
        }
    }

    private static final java.util.concurrent.atomic.AtomicReference<java.util.function.Consumer<Map<String, Double>>>
            TRACE_NEXT = new java.util.concurrent.atomic.AtomicReference<>();

    /**
     * For benchmarks: the next run of any graph is traced (TF's FULL_TRACE step stats) and {@code sink} gets its
     * milliseconds per op type, largest first (see {@link #opMillis}), then {@link #SPAN} and {@link #BUSY} (see
     * {@link #busy}). Once; tracing slows that run a little.
     */
    public static void traceNextRun(java.util.function.Consumer<Map<String, Double>> sink) {
        TRACE_NEXT.set(sink);
    }

    /**
     * Milliseconds per op type of one traced run: each node's start-to-end time, summed over the nodes of a type
     * (nodes on both threads add up, so the total can exceed the wall time), largest first.
     */
    public static java.util.LinkedHashMap<String, Double> opMillis(Graph graph, org.tensorflow.proto.RunMetadata md) {
        Map<String, String> type = new java.util.HashMap<>();
        graph.operations().forEachRemaining(o -> type.put(o.name(), o.type()));
        Map<String, Double> byType = new java.util.HashMap<>();
        for (var dev : md.getStepStats().getDevStatsList()) {
            for (var n : dev.getNodeStatsList()) {
                byType.merge(type.getOrDefault(n.getNodeName(), n.getNodeName()), n.getAllEndRelMicros() / 1e3,
                        Double::sum);
            }
        }
        java.util.LinkedHashMap<String, Double> out = new java.util.LinkedHashMap<>();
        byType.entrySet().stream().sorted((a, b) -> Double.compare(b.getValue(), a.getValue()))
                .forEach(e -> out.put(e.getKey(), e.getValue()));
        return out;
    }

    /** Key of {@link #opMillis}'s extra entry: milliseconds from the first op's start to the last op's end. */
    public static final String SPAN = "(span)";
    /** Key of {@link #opMillis}'s extra entry: milliseconds in which at least one op ran (the union of the ops' times). */
    public static final String BUSY = "(busy)";

    /**
     * The traced run's {@link #SPAN} and {@link #BUSY} milliseconds: {@code span − busy} is time in which no op ran
     * at all (the executor between ops: scheduling, Java-side feeds, a thread waiting for a core).
     */
    public static Map<String, Double> busy(org.tensorflow.proto.RunMetadata md) {
        List<long[]> iv = new java.util.ArrayList<>();
        for (var dev : md.getStepStats().getDevStatsList()) {
            for (var n : dev.getNodeStatsList()) {
                iv.add(new long[]{n.getAllStartMicros(), n.getAllStartMicros() + n.getAllEndRelMicros()});
            }
        }
        iv.sort(java.util.Comparator.comparingLong(a -> a[0]));
        long union = 0, curS = Long.MIN_VALUE, curE = Long.MIN_VALUE, first = Long.MAX_VALUE, last = Long.MIN_VALUE;
        for (long[] a : iv) {
            first = Math.min(first, a[0]);
            last = Math.max(last, a[1]);
            if (a[0] > curE) {
                union += curE - curS;
                curS = a[0];
                curE = a[1];
            } else {
                curE = Math.max(curE, a[1]);
            }
        }
        union += curE - curS;
        return Map.of(SPAN, iv.isEmpty() ? 0.0 : (last - first) / 1e3, BUSY, iv.isEmpty() ? 0.0 : union / 1e3);
    }

    /** A missing kernel (e.g. a half-precision op on a device without one) named plainly, with the way out. */
    private RuntimeException explain(RuntimeException e) {
        String m = String.valueOf(e.getMessage());
        java.util.regex.Matcher k = java.util.regex.Pattern.compile("No OpKernel was registered to support Op '([^']+)'")
                .matcher(m);
        if (k.find() || m.contains("Could not find device for node") || m.contains("no supported kernel")) {
            String op = k.find(0) ? k.group(1) : "(see below)";
            return new IllegalStateException(name + ": TensorFlow has no kernel for op " + op + " with these dtypes "
                    + "on this device (compute dtype " + binder.compute().name().toLowerCase(java.util.Locale.ROOT)
                    + "); set sdserve.compute-dtype=fp32. TensorFlow said: " + m, e);
        }
        return e;
    }

    /** Whether the graph has an input of that name (a low-rank LoRA feed for a layer the graph does not run has none). */
    public boolean hasInput(String name) {
        return inputs.containsKey(name);
    }

    /** Number of weight tensors this graph feeds. */
    public int weightInputs() {
        return binder.bound().size();
    }

    public String name() {
        return name;
    }

    @Override
    public void close() {
        session.close();
        graph.close();
    }
}
