package dev.sdserve.admission;

/**
 * One admitted (or candidate) job as the admission decision sees it.
 *
 * @param tenant        fairness tenant
 * @param weight        the tenant's weight
 * @param bestEffort    best-effort work yields to everything else and is not protected
 * @param deadlineNanos deadline on the scheduler clock's nanosecond scale
 * @param ownMillis     predicted latency of its remaining work if it had the machine's batches to itself at the
 *                      current batch size (its critical path: remaining steps × step time + encode + decode)
 * @param workMillis    its share of machine time: remaining work at the best batched throughput
 */
public record LoadItem(String tenant, double weight, boolean bestEffort, long deadlineNanos, double ownMillis,
                       double workMillis) {
}
