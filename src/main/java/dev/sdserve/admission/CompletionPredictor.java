package dev.sdserve.admission;

import dev.sdserve.engine.CostModel;
import dev.sdserve.engine.LatentShape;
import dev.sdserve.engine.Stage;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.function.ToDoubleFunction;

/**
 * When admitted work will finish: each request's remaining critical path under its bucket's load profile
 * ({@code ownMillis}) and its share of machine time at the best batched throughput ({@code workMillis}), turned into
 * {@link LoadItem}s for the {@link AdmissionController}; from them the admission decision for a candidate, each
 * request's slack (the scheduler's least-slack order) and the least slack over all admitted work (how much room
 * background work has). Stateless between calls: the scheduler passes its requests (as {@link Pending}) under its
 * lock, and the predictor reads the cost model, the recent batch sizes and the model load times through the
 * functions it was given.
 */
public final class CompletionPredictor {
    /** The scheduler's batch limits, read at every prediction (they are settings that tests may change). */
    public interface Limits {
        /** Largest UNet batch in latent samples. */
        int maxLatentBatch();

        /** Largest text-encoder batch in prompts. */
        int maxEncodeBatch();

        /** Largest VAE decode batch in images. */
        int maxDecodeBatch();
    }

    private final CostModel cost;
    private final AdmissionController admission;
    private final Limits limits;
    private final ToDoubleFunction<String> recentLatents;
    private final ToDoubleFunction<String> loadWaitMillis;

    /**
     * @param recentLatents  recent mean UNet samples per denoise call of a bucket (0 when unknown)
     * @param loadWaitMillis predicted wait for a model to become resident (0 when it is)
     */
    public CompletionPredictor(CostModel cost, AdmissionController admission, Limits limits,
                               ToDoubleFunction<String> recentLatents, ToDoubleFunction<String> loadWaitMillis) {
        this.cost = cost;
        this.admission = admission;
        this.limits = limits;
        this.recentLatents = recentLatents;
        this.loadWaitMillis = loadWaitMillis;
    }

    /**
     * The admission decision for a candidate against the admitted, unfinished work (in admission order).
     *
     * @throws dev.sdserve.job.ServeException RESOURCE_EXHAUSTED with a retry-after hint
     */
    public AdmissionController.Outcome admit(List<? extends Pending> works, Pending cand, long nowNs) {
        List<Pending> all = new ArrayList<>(works);
        all.add(cand);
        Map<String, Profile> without = profiles(works);
        Map<String, Profile> with = profiles(all);
        Map<String, double[]> bucketInfo = new HashMap<>();
        List<LoadItem> before = new ArrayList<>(works.size());
        List<LoadItem> after = new ArrayList<>(works.size());
        double earliestFree = works.isEmpty() ? 0 : Double.MAX_VALUE;
        for (Pending w : works) {
            LoadItem li = loadItem(w, without, bucketInfo);
            before.add(li);
            after.add(loadItem(w, with, bucketInfo));
            earliestFree = Math.min(earliestFree, li.ownMillis());
        }
        return admission.decide(before, after, loadItem(cand, with, bucketInfo), nowNs, works.size(), earliestFree);
    }

    private LoadItem loadItem(Pending w, Map<String, Profile> profiles, Map<String, double[]> bucketInfo) {
        double own = ownRemainingMillis(w, profiles.get(w.bucket())) + loadWaitMillis(w.model(), bucketInfo);
        double work = workMillis(w, bucketInfo);
        return new LoadItem(w.tenant(), w.weight(), w.bestEffort(), w.deadlineNanos(), own, work);
    }

    /**
     * Predicted denoise time of a bucket's jobs: step {@code s} from now runs with every job that still has at
     * least {@code s} evaluations left (capped at the batch limit), so the step time falls as jobs finish.
     */
    public final class Profile {
        /** prefix[s] = predicted time of the next s steps of a job that stays that long. */
        final double[] prefix;

        Profile(String model, LatentShape shape, String bucket, List<Pending> members) {
            int maxRem = 0;
            for (Pending w : members) {
                maxRem = Math.max(maxRem, w.remainingEvals());
            }
            prefix = new double[maxRem + 1];
            // UNet samples at step s from now: every job with s evaluations left, each with its own samples then
            // (guidance truncation: fewer after the cutoff)
            int[] loadAt = new int[maxRem + 2];
            // DeepCache: shallow steps run in calls of their own (the planner groups by step kind), at their cost
            int[] shallowAt = new int[maxRem + 2];
            for (Pending w : members) {
                for (int s = 1, rem = w.remainingEvals(); s <= rem; s++) {
                    (w.shallowAtEval(s) ? shallowAt : loadAt)[s] += w.latentsAtEval(s);
                }
            }
            // Arrivals keep replacing departures under load: never predict a batch below the recent mean.
            double recent = recentLatents.applyAsDouble(bucket);
            double factor = mergeFactor(members.get(0)); // a bucket's members share their token merging
            int maxBatch = limits.maxLatentBatch();
            for (int st = 1; st <= maxRem; st++) {
                int b = Math.max(1, Math.min(maxBatch, Math.max(loadAt[st], (int) Math.round(recent))));
                prefix[st] = prefix[st - 1] + (shallowMillis(model, shape, shallowAt[st], maxBatch)
                        + (loadAt[st] == 0 && shallowAt[st] > 0 ? 0 : cost.predictMillis(model, Stage.DENOISE, shape, b)))
                        * factor;
            }
        }

        private double shallowMillis(String model, LatentShape shape, int samples, int maxBatch) {
            return samples == 0 ? 0 : cost.predictShallowMillis(model, shape, Math.min(maxBatch, samples));
        }

        double denoiseMillis(int steps) {
            if (steps < prefix.length) {
                return prefix[steps];
            }
            double last = prefix.length > 1 ? prefix[prefix.length - 1] - prefix[prefix.length - 2] : 0;
            return prefix[prefix.length - 1] + (steps - prefix.length + 1) * last;
        }
    }

    /** Profiles of the jobs still to denoise (encoding or denoising), by bucket. */
    public Map<String, Profile> profiles(List<? extends Pending> ws) {
        Map<String, List<Pending>> by = new HashMap<>();
        for (Pending w : ws) {
            if (w.toDenoise()) {
                by.computeIfAbsent(w.bucket(), k -> new ArrayList<>()).add(w);
            }
        }
        Map<String, Profile> out = new HashMap<>();
        for (Map.Entry<String, List<Pending>> e : by.entrySet()) {
            Pending f = e.getValue().get(0);
            out.put(e.getKey(), new Profile(f.model(), f.shape(), e.getKey(), e.getValue()));
        }
        return out;
    }

    /** Predicted wait for a model to become resident (0 when it is), cached per admission decision. */
    private double loadWaitMillis(String model, Map<String, double[]> cache) {
        return cache.computeIfAbsent("load:" + model, k -> new double[]{loadWaitMillis.applyAsDouble(model)})[0];
    }

    /** Critical path of the work's remaining stages under the bucket's load profile. */
    private double ownRemainingMillis(Pending w, Profile profile) {
        double ms = 0;
        int encodes = w.toEncode() ? w.encodeItems() : 0; // a cache lookup per prompt: asked once
        if (encodes > 0) { // none: every prompt cached, no encoder call
            ms += cost.predictMillis(w.model(), Stage.ENCODE, null, encodes);
        }
        if (w.toEncodeImage()) {
            ms += cost.predictMillis(w.model(), Stage.IMAGE_ENCODE, w.shape(), w.imageEncodeItems());
        }
        if (w.toDenoise() && profile != null) {
            ms += profile.denoiseMillis(w.remainingEvals());
        }
        ms += cost.predictMillis(w.model(), Stage.DECODE, w.shape(), w.images()) * (1 + w.previewDecodes());
        int previews = w.decoderPreviews();
        if (previews > 0) {
            ms += cost.predictMillis(w.model(), Stage.PREVIEW, w.shape(), w.images()) * previews;
        }
        return ms;
    }

    /** Machine time the work still needs at the best batched throughput of its bucket (encode/decode amortised). */
    private double workMillis(Pending w, Map<String, double[]> bucketInfo) {
        double ms = 0;
        String m = w.model();
        if (w.toEncode()) {
            int b = limits.maxEncodeBatch();
            ms += cost.predictMillis(m, Stage.ENCODE, null, b) / b * w.encodeItems();
        }
        if (w.toDenoise()) {
            double thr = bucketInfo.computeIfAbsent(w.bucket(), k -> new double[]{bestThroughput(m, w.shape())})[0];
            double denoise = w.remainingLatents() / thr;
            int shallow = w.remainingShallowLatents();
            if (shallow > 0) { // DeepCache's shallow steps cost their share of a full one
                int b = limits.maxLatentBatch();
                double full = cost.predictMillis(m, Stage.DENOISE, w.shape(), b);
                double ratio = full > 0 ? Math.min(1, cost.predictShallowMillis(m, w.shape(), b) / full) : 1;
                denoise -= (1 - ratio) * shallow / thr;
            }
            ms += denoise * mergeFactor(w);
        }
        int d = limits.maxDecodeBatch();
        if (w.toEncodeImage()) { // the VAE encoder batches like its decoder
            ms += cost.predictMillis(m, Stage.IMAGE_ENCODE, w.shape(), d) / d * w.imageEncodeItems();
        }
        ms += cost.predictMillis(m, Stage.DECODE, w.shape(), d) / d * w.images() * (1 + w.previewDecodes());
        int previews = w.decoderPreviews();
        if (previews > 0) { // batched like decodes
            ms += cost.predictMillis(m, Stage.PREVIEW, w.shape(), d) / d * w.images() * previews;
        }
        return ms;
    }

    /** Latent samples per millisecond at the most efficient batch size within the limit. */
    private double bestThroughput(String model, LatentShape shape) {
        double best = 0;
        int max = limits.maxLatentBatch();
        for (int b = 1; ; b = Math.min(b * 2, max)) {
            double c = cost.predictMillis(model, Stage.DENOISE, shape, b);
            best = Math.max(best, c <= 0 ? Double.MAX_VALUE / 1e6 : b / c);
            if (b >= max) {
                break;
            }
        }
        return best;
    }

    /** Predicted time of one denoise step of the work alone. */
    public double stepMillis(Pending w) {
        return cost.predictMillis(w.model(), Stage.DENOISE, w.shape(), w.latentPerStep()) * mergeFactor(w);
    }

    private double mergeFactor(Pending w) {
        return mergeFactor(cost, w);
    }

    /** What one of the work's UNet samples costs against one without token merging (1 without it). */
    public static double mergeFactor(CostModel cost, Pending w) {
        return w.tokenMerging() > 0 ? cost.tokenMergingFactor(w.model(), w.shape(), w.tokenMerging()) : 1.0;
    }

    /** Slack in ms: time to the deadline minus the predicted remaining critical path under the current load. */
    public double slackMillis(Pending w, long now, Map<String, Profile> profiles) {
        return (w.deadlineNanos() - now) / 1e6 - ownRemainingMillis(w, profiles.get(w.bucket()));
    }

    /**
     * Least slack (ms) over admitted inference work not yet finished; +∞ when there is none; −∞ when best-effort
     * work (no deadline to measure against) is waiting, so background work never delays it either.
     *
     * <p>The slack is measured against the admission controller's finish prediction (requests served in deadline
     * order, each finishing after the work queued ahead of it, times the prediction safety factor), not against a
     * request's own remaining steps alone: near saturation the work ahead of a request, not its own steps, decides
     * when it ends, and a background step delays all of it.
     */
    public double minSlackMillis(List<? extends Pending> works, long now) {
        Map<String, Profile> load = null;
        Map<String, double[]> bucketInfo = new HashMap<>();
        List<LoadItem> items = new ArrayList<>();
        double min = Double.POSITIVE_INFINITY;
        for (Pending w : works) {
            if (w.finished()) {
                continue;
            }
            if (w.bestEffort()) {
                return Double.NEGATIVE_INFINITY;
            }
            if (load == null) {
                load = profiles(works);
            }
            min = Math.min(min, slackMillis(w, now, load));
            items.add(loadItem(w, load, bucketInfo));
        }
        if (!items.isEmpty()) {
            for (Map.Entry<LoadItem, Double> e : admission.predictFinish(items, now).entrySet()) {
                min = Math.min(min, (e.getKey().deadlineNanos() - e.getValue()) / 1e6);
            }
        }
        return min;
    }
}
