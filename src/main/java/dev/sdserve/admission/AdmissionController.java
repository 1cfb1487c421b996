package dev.sdserve.admission;

import dev.sdserve.job.ServeException;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;

/**
 * The admission decision: bounded queue, then a deadline check under the current load.
 *
 * <p>Prediction: the scheduler runs least-slack-first with per-tenant weighted shares of each batch. A job {@code k}
 * finishes no earlier than its own critical path ({@code ownMillis}) and, as the machine is work-conserving, no
 * later than when all work with earlier deadlines is done ({@code Σ workMillis}, EDF) — or, thanks to the
 * tenant's guaranteed share {@code f}, when its own tenant's earlier work is done at that share
 * ({@code Σ_tenant workMillis / f}). Predicted finish = now + safety · max(own, min(EDF, share)).
 *
 * <p>A candidate is refused with RESOURCE_EXHAUSTED (and a retry-after hint: how late it would be) when it would
 * miss its deadline, or when admitting it would make an admitted job of a tenant within its fair share miss a
 * deadline it would otherwise meet. Best-effort candidates are admitted regardless (they are not protected).
 */
public final class AdmissionController {
    public enum Outcome { ADMIT, ADMIT_BEST_EFFORT }

    private final AdmissionConfig config;

    public AdmissionController(AdmissionConfig config) {
        this.config = config;
    }

    public AdmissionConfig config() {
        return config;
    }

    /**
     * Decides on a candidate.
     *
     * @param existing        admitted, unfinished jobs as predicted without the candidate
     * @param existingAfter   the same jobs (same order) as predicted with the candidate admitted
     * @param outstanding     their number (queued + running)
     * @param earliestFreeMs  predicted milliseconds until the first of them finishes (for the queue-full hint)
     * @throws ServeException RESOURCE_EXHAUSTED with a retry-after hint
     */
    public Outcome decide(List<LoadItem> existing, List<LoadItem> existingAfter, LoadItem candidate, long nowNanos,
                          int outstanding, double earliestFreeMs) {
        if (outstanding >= config.maxQueue) {
            long retry = Math.max(config.minRetryAfterMillis, (long) Math.ceil(earliestFreeMs));
            throw ServeException.exhausted("queue full: " + outstanding + " jobs admitted and unfinished (limit "
                    + config.maxQueue + "); retry in about " + retry + " ms", retry);
        }
        if (candidate.bestEffort() || !config.deadlineAdmission) {
            return candidate.bestEffort() ? Outcome.ADMIT_BEST_EFFORT : Outcome.ADMIT;
        }
        List<LoadItem> before = new ArrayList<>();
        List<LoadItem> after = new ArrayList<>();
        for (int k = 0; k < existing.size(); k++) {
            if (!existing.get(k).bestEffort()) {
                before.add(existing.get(k));
                after.add(existingAfter.get(k));
            }
        }
        after.add(candidate);
        Map<LoadItem, Double> finishBefore = predictFinish(before, nowNanos);
        Map<LoadItem, Double> finishAfter = predictFinish(after, nowNanos);

        double late = finishAfter.get(candidate) - candidate.deadlineNanos();
        if (late > 0) {
            long retry = Math.max(config.minRetryAfterMillis, (long) Math.ceil(late / 1e6));
            throw ServeException.exhausted("cannot finish before the deadline under the current load (predicted "
                    + Math.round(late / 1e6) + " ms late); retry in about " + retry + " ms or allow best effort",
                    retry);
        }
        Map<String, Double> overShare = overShareTenants(after);
        for (int k = 0; k < before.size(); k++) {
            LoadItem j = after.get(k);
            double fb = finishBefore.get(before.get(k));
            double fa = finishAfter.get(j);
            if (fb <= j.deadlineNanos() && fa > j.deadlineNanos()
                    && (j.tenant().equals(candidate.tenant()) || !overShare.containsKey(j.tenant()))) {
                long retry = Math.max(config.minRetryAfterMillis, (long) Math.ceil((fa - j.deadlineNanos()) / 1e6));
                throw ServeException.exhausted("admitting this job would make admitted work miss its deadline; "
                        + "retry in about " + retry + " ms or allow best effort", retry);
            }
        }
        return Outcome.ADMIT;
    }

    /** Predicted finish (scheduler-clock nanoseconds) of each item. */
    public Map<LoadItem, Double> predictFinish(List<LoadItem> items, long nowNanos) {
        List<LoadItem> sorted = new ArrayList<>(items);
        sorted.sort(Comparator.comparingLong(LoadItem::deadlineNanos));
        Map<String, Double> weights = new HashMap<>();
        for (LoadItem i : sorted) {
            weights.putIfAbsent(i.tenant(), i.weight());
        }
        double totalWeight = weights.values().stream().mapToDouble(Double::doubleValue).sum();
        Map<LoadItem, Double> out = new IdentityHashMap<>();
        Map<String, Double> tenantWork = new HashMap<>();
        double all = 0;
        for (LoadItem i : sorted) {
            all += i.workMillis();
            double mine = tenantWork.merge(i.tenant(), i.workMillis(), Double::sum);
            double share = weights.get(i.tenant()) / totalWeight;
            double queued = Math.min(all, mine / share);
            double ms = config.predictionSafety * Math.max(i.ownMillis(), queued);
            out.put(i, nowNanos + ms * 1e6);
        }
        return out;
    }

    /** Tenants whose share of the outstanding work exceeds their weighted share (value: excess fraction). */
    static Map<String, Double> overShareTenants(List<LoadItem> items) {
        Map<String, Double> work = new HashMap<>();
        Map<String, Double> weights = new HashMap<>();
        double total = 0;
        for (LoadItem i : items) {
            work.merge(i.tenant(), i.workMillis(), Double::sum);
            weights.putIfAbsent(i.tenant(), i.weight());
            total += i.workMillis();
        }
        double tw = weights.values().stream().mapToDouble(Double::doubleValue).sum();
        Map<String, Double> over = new HashMap<>();
        if (weights.size() < 2 || total <= 0) {
            return over;
        }
        for (Map.Entry<String, Double> e : work.entrySet()) {
            double frac = e.getValue() / total;
            double share = weights.get(e.getKey()) / tw;
            if (frac > share) {
                over.put(e.getKey(), frac - share);
            }
        }
        return over;
    }
}
