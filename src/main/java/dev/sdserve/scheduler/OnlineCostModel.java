package dev.sdserve.scheduler;

import dev.sdserve.engine.CostModel;
import dev.sdserve.engine.DeepCache;
import dev.sdserve.engine.Stage;
import dev.sdserve.engine.LatentShape;

import java.util.Arrays;
import java.util.HashMap;
import java.util.Map;
import java.util.TreeMap;

/**
 * A cost model learned from measured engine calls: per (model, stage, latent shape) bucket and batch size, an
 * exponentially weighted mean of measured milliseconds. Between measured batch sizes it interpolates linearly;
 * below the smallest it uses the smallest (a smaller batch never costs more, so this errs on the safe side); above
 * the largest it extrapolates with the prior's shape (or linearly per item without a prior). Buckets without any
 * measurement fall back to the prior. A measurement under half the running mean replaces it (the first calls of a
 * model include loading and graph warm-up; those must not make admission pessimistic for long). Thread-safe.
 */
public final class OnlineCostModel implements CostModel {
    private final CostModel prior;
    private final double alpha;
    private final Map<Key, TreeMap<Integer, double[]>> measured = new HashMap<>();
    /** Predictions by bucket for batch sizes up to {@link #CACHED}, cleared when the bucket gets a measurement. */
    private final Map<Key, double[]> cache = new HashMap<>();
    private static final int CACHED = 256;

    /**
     * @param prior what to predict before a bucket is measured (seed defaults)
     * @param alpha weight of a new measurement in the running mean (the first measurement replaces the prior)
     */
    public OnlineCostModel(CostModel prior, double alpha) {
        this.prior = prior;
        this.alpha = alpha;
    }

    public OnlineCostModel(CostModel prior) {
        this(prior, 0.2);
    }

    private record Key(String model, Stage stage, LatentShape shape) {
    }

    private static Key key(String model, Stage stage, LatentShape shape) {
        return new Key(model, stage, stage == Stage.ENCODE ? null : shape);
    }

    /** DeepCache: measured shallow-call time ÷ the full call's predicted time at the same batch, by bucket. */
    private final Map<Key, Double> shallowRatio = new HashMap<>();

    /** Records a measured DeepCache shallow denoise call (what {@link #predictShallowMillis} learns from). */
    public synchronized void observeShallow(String model, LatentShape shape, int batch, double millis) {
        double full = predictMillis(model, Stage.DENOISE, shape, batch);
        if (batch <= 0 || !(millis >= 0) || !(full > 0)) {
            return;
        }
        double r = Math.min(1.0, millis / full);
        shallowRatio.merge(key(model, Stage.DENOISE, shape), r, (old, x) -> old + alpha * (x - old));
    }

    @Override
    public synchronized double predictShallowMillis(String model, LatentShape shape, int batch) {
        Double r = shallowRatio.get(key(model, Stage.DENOISE, shape));
        return (r == null ? DeepCache.SHALLOW_COST_PRIOR : r) * predictMillis(model, Stage.DENOISE, shape, batch);
    }

    /** Token merging's factor: the prior's (what it costs is measured offline, not learned per call). */
    @Override
    public double tokenMergingFactor(String model, LatentShape shape, double ratio) {
        return prior == null ? CostModel.super.tokenMergingFactor(model, shape, ratio)
                : prior.tokenMergingFactor(model, shape, ratio);
    }

    /** Records a measured call. */
    public synchronized void observe(String model, Stage stage, LatentShape shape, int batch, double millis) {
        if (batch <= 0 || !(millis >= 0)) {
            return;
        }
        Key key = key(model, stage, shape);
        double[] c = cache.get(key);
        if (c != null) {
            Arrays.fill(c, Double.NaN);
        }
        TreeMap<Integer, double[]> m = measured.computeIfAbsent(key, k -> new TreeMap<>());
        double[] v = m.get(batch);
        if (v == null) {
            m.put(batch, new double[]{millis, 1});
        } else if (millis < v[0] / 2) {
            v[0] = millis; // the earlier figure was an outlier (warm-up, model load, GC): recover at once
            v[1]++;
        } else {
            v[0] += alpha * (millis - v[0]);
            v[1]++;
        }
    }

    /** Measurements for a bucket (batch size → mean ms), for diagnostics. */
    public synchronized Map<Integer, Double> measurements(String model, Stage stage, LatentShape shape) {
        Map<Integer, Double> out = new TreeMap<>();
        TreeMap<Integer, double[]> m = measured.get(key(model, stage, shape));
        if (m != null) {
            m.forEach((b, v) -> out.put(b, v[0]));
        }
        return out;
    }

    @Override
    public synchronized double predictMillis(String model, Stage stage, LatentShape shape, int batch) {
        Key key = key(model, stage, shape);
        if (batch < 0 || batch > CACHED) {
            return compute(key, model, stage, shape, batch);
        }
        double[] c = cache.get(key);
        if (c == null) {
            c = new double[CACHED + 1];
            Arrays.fill(c, Double.NaN);
            cache.put(key, c);
        }
        double v = c[batch];
        if (Double.isNaN(v)) {
            v = compute(key, model, stage, shape, batch);
            c[batch] = v;
        }
        return v;
    }

    private double compute(Key key, String model, Stage stage, LatentShape shape, int batch) {
        TreeMap<Integer, double[]> m = measured.get(key);
        if (m == null || m.isEmpty()) {
            return prior == null ? 0 : prior.predictMillis(model, stage, shape, batch);
        }
        Map.Entry<Integer, double[]> lo = m.floorEntry(batch);
        Map.Entry<Integer, double[]> hi = m.ceilingEntry(batch);
        if (lo != null && hi != null) {
            if (lo.getKey().equals(hi.getKey())) {
                return lo.getValue()[0];
            }
            double w = (batch - lo.getKey()) / (double) (hi.getKey() - lo.getKey());
            return lo.getValue()[0] * (1 - w) + hi.getValue()[0] * w;
        }
        if (lo == null) {
            return hi.getValue()[0];
        }
        int top = lo.getKey();
        double topMs = lo.getValue()[0];
        if (prior != null) {
            double p0 = prior.predictMillis(model, stage, shape, top);
            double p1 = prior.predictMillis(model, stage, shape, batch);
            if (p0 > 0 && p1 > 0) {
                return topMs * Math.max(1.0, p1 / p0);
            }
        }
        return topMs * batch / top;
    }
}
