package dev.sdserve.tools.bench;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

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
 * A graph whose inputs and weights are placeholders fed with random tensors (uniform in ±scale), for timing.
 * {@link #pooled} shares one weight tensor between all layers of the same shape and scale, which keeps a
 * full-size UNet-shaped stack within memory while leaving its FLOPs and its per-layer weight traffic unchanged
 * (every layer still streams its whole weight tensor).
 */
public final class FedGraph implements AutoCloseable {
    private final Graph graph = new Graph();
    private final Ops tf = Ops.create(graph);
    private final List<Placeholder<TFloat32>> feeds = new ArrayList<>();
    private final List<TFloat32> values = new ArrayList<>();
    private final Map<String, Operand<TFloat32>> pool = new HashMap<>();
    private final SplittableRandom rnd;
    private final Map<Operand<TFloat32>, Operand<TFloat32>> summaries = new HashMap<>();
    private Session session;

    public FedGraph(long seed) {
        rnd = new SplittableRandom(seed);
    }

    public Ops tf() {
        return tf;
    }

    /** A new fed input of this shape. */
    public Operand<TFloat32> input(Shape shape, float scale) {
        Placeholder<TFloat32> p = tf.placeholder(TFloat32.class, Placeholder.shape(shape));
        float[] data = new float[Math.toIntExact(shape.size())];
        for (int i = 0; i < data.length; i++) {
            data[i] = (float) ((rnd.nextDouble() * 2 - 1) * scale);
        }
        feeds.add(p);
        values.add(TFloat32.tensorOf(shape, DataBuffers.of(data, true, false)));
        return p;
    }

    /** A weight of this shape scaled 1/√fanIn (fanIn = product of all but the last axis), shared by shape. */
    public Operand<TFloat32> weight(long... shape) {
        long fanIn = 1;
        for (int i = 0; i < shape.length - 1; i++) {
            fanIn *= shape[i];
        }
        float scale = (float) (Math.sqrt(3.0 / Math.max(1, fanIn)));
        return pooled(Shape.of(shape), scale);
    }

    /** A per-channel vector (bias, norm beta) near 0, or gamma near 1 with {@code one}. */
    public Operand<TFloat32> vector(long n, boolean one) {
        Operand<TFloat32> v = pooled(Shape.of(n), 0.1f);
        return one ? tf.math.add(v, tf.constant(1f)) : v;
    }

    public Operand<TFloat32> pooled(Shape shape, float scale) {
        String key = Arrays.toString(shape.asArray()) + "/" + scale;
        return pool.computeIfAbsent(key, k -> input(shape, scale));
    }

    public long fedBytes() {
        return values.stream().mapToLong(v -> v.shape().size() * 4).sum();
    }

    /** Adds the mean-|x| reduction that {@link #run} fetches for this output (call before {@link #open}). */
    public void summary(Operand<TFloat32> output) {
        summaries.put(output, tf.math.mean(tf.math.abs(output), tf.constant(
                java.util.stream.IntStream.range(0, output.shape().numDimensions()).toArray())));
    }

    public void open(ConfigProto config) {
        session = new Session(graph, config);
    }

    /** Median and minimum wall time in ms over {@code reps} runs after {@code warmup} runs. */
    public double[] time(Operand<TFloat32> output, int warmup, int reps) {
        for (int i = 0; i < warmup; i++) {
            run(output);
        }
        double[] t = new double[reps];
        for (int i = 0; i < reps; i++) {
            long t0 = System.nanoTime();
            run(output);
            t[i] = (System.nanoTime() - t0) / 1e6;
        }
        Arrays.sort(t);
        return new double[]{t[reps / 2], t[0]};
    }

    /** Runs once and checks that the output is finite; returns its mean absolute value. */
    public double run(Operand<TFloat32> output) {
        Operand<TFloat32> summary = summaries.get(output);
        if (summary == null) {
            throw new IllegalStateException("call summary(output) before open()");
        }
        Session.Runner r = session.runner();
        for (int i = 0; i < feeds.size(); i++) {
            r.feed(feeds.get(i), values.get(i));
        }
        try (Result res = r.fetch(summary).run()) {
            float v = ((TFloat32) res.get(0)).getFloat();
            if (!Float.isFinite(v)) {
                throw new IllegalStateException("benchmark graph produced a non-finite output");
            }
            return v;
        }
    }

    @Override
    public void close() {
        if (session != null) {
            session.close();
        }
        values.forEach(TFloat32::close);
        graph.close();
    }
}
