package dev.sdserve.tools.bench;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import java.util.function.Function;

import org.tensorflow.Graph;
import org.tensorflow.Operand;
import org.tensorflow.Result;
import org.tensorflow.Session;
import org.tensorflow.ndarray.Shape;
import org.tensorflow.ndarray.buffer.DataBuffers;
import org.tensorflow.op.Ops;
import org.tensorflow.op.core.Placeholder;
import org.tensorflow.proto.ConfigProto;
import org.tensorflow.types.TFloat32;

/**
 * Builds a graph from placeholders of given shapes, feeds random inputs and times {@code Session.run}. Inputs are
 * fed (not baked in as constants), as the engine feeds or holds its weights.
 */
public final class GraphTimer implements AutoCloseable {
    private final Graph graph = new Graph();
    private final Session session;
    private final List<Placeholder<TFloat32>> inputs = new ArrayList<>();
    private final List<TFloat32> values = new ArrayList<>();
    private final Operand<TFloat32> output;

    public GraphTimer(ConfigProto config, List<Shape> shapes, Function<List<Operand<TFloat32>>, Operand<TFloat32>>
            build, long seed) {
        Ops tf = Ops.create(graph);
        SplittableRandom rnd = new SplittableRandom(seed);
        List<Operand<TFloat32>> ops = new ArrayList<>();
        for (Shape s : shapes) {
            Placeholder<TFloat32> p = tf.placeholder(TFloat32.class, Placeholder.shape(s));
            inputs.add(p);
            ops.add(p);
            float[] data = new float[Math.toIntExact(s.size())];
            for (int i = 0; i < data.length; i++) {
                data[i] = (float) (rnd.nextDouble() * 2 - 1) * 0.5f;
            }
            values.add(TFloat32.tensorOf(s, DataBuffers.of(data, true, false)));
        }
        output = build.apply(ops);
        session = new Session(graph, config);
    }

    /** Runs once and returns the output as a flat array (for checks). */
    public float[] runOnce() {
        try (Result r = runner()) {
            TFloat32 t = (TFloat32) r.get(0);
            float[] out = new float[Math.toIntExact(t.shape().size())];
            t.asRawTensor().data().asFloats().read(out);
            return out;
        }
    }

    private Result runner() {
        Session.Runner r = session.runner();
        for (int i = 0; i < inputs.size(); i++) {
            r.feed(inputs.get(i), values.get(i));
        }
        return r.fetch(output).run();
    }

    /**
     * One traced run (after the warm-up runs): milliseconds per op type summed over the run's nodes (TF's step
     * stats; the ops of both threads add up, so the sum exceeds the wall time), largest first.
     */
    public java.util.LinkedHashMap<String, Double> profile(int warmup) {
        medianMillis(warmup, 1);
        Session.Runner r = session.runner();
        for (int i = 0; i < inputs.size(); i++) {
            r.feed(inputs.get(i), values.get(i));
        }
        r.setOptions(org.tensorflow.proto.RunOptions.newBuilder()
                .setTraceLevel(org.tensorflow.proto.RunOptions.TraceLevel.FULL_TRACE).build());
        try (Result res = r.fetch(output).runAndFetchMetadata()) {
            return dev.sdserve.engine.tf.TfGraph.opMillis(graph, res.getMetadata().orElseThrow());
        }
    }

    /** Median wall time in ms of {@code reps} runs after {@code warmup} runs. */
    public double medianMillis(int warmup, int reps) {
        for (int i = 0; i < warmup; i++) {
            try (Result r = runner()) {
                // discard
            }
        }
        double[] t = new double[reps];
        long cpu0 = EngineBench.processCpuNanos();
        for (int i = 0; i < reps; i++) {
            long t0 = System.nanoTime();
            try (Result r = runner()) {
                t[i] = (System.nanoTime() - t0) / 1e6;
            }
        }
        cpuSecondsPerRun = (EngineBench.processCpuNanos() - cpu0) / 1e9 / reps;
        Arrays.sort(t);
        return t[reps / 2];
    }

    private double cpuSecondsPerRun = Double.NaN;

    /** Process CPU seconds per run of the last {@link #medianMillis} (all threads). */
    public double cpuSecondsPerRun() {
        return cpuSecondsPerRun;
    }

    public float[] input(int i) {
        TFloat32 t = values.get(i);
        float[] out = new float[Math.toIntExact(t.shape().size())];
        t.asRawTensor().data().asFloats().read(out);
        return out;
    }

    @Override
    public void close() {
        session.close();
        values.forEach(TFloat32::close);
        graph.close();
    }
}
