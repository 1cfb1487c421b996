package dev.sdserve.tools.simulate;

import dev.sdserve.engine.fake.FakeEngine;
import dev.sdserve.job.GenerationRequest;
import dev.sdserve.job.Job;
import dev.sdserve.job.JobEvent;
import dev.sdserve.job.PreviewOptions;
import dev.sdserve.job.ServeException;
import dev.sdserve.scheduler.SchedulerService;
import dev.sdserve.scheduler.ServiceConfig;
import dev.sdserve.clock.SimClock;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import java.util.function.DoubleFunction;

/**
 * Serving policies on simulated time against GPU-measured engine costs.
 * <ul>
 *   <li>{@code sdserve}: the real {@link SchedulerService} (admission, step-level batching) on a {@link SimClock},
 *       over a {@link FakeEngine} that spends the table's cost of every call on that clock;</li>
 *   <li>{@code fcfs}: one request at a time, in arrival order (AUTOMATIC1111 / ComfyUI);</li>
 *   <li>{@code dynamic}: request-level dynamic batching (Triton): when the engine is free, wait until
 *       {@code maxBatch} requests are queued or the oldest has waited {@code window} ms, then run the batch to its
 *       end (the batch runs as many steps as its longest request; shorter ones leave the UNet batch when done, but
 *       every result is returned when the batch ends).</li>
 * </ul>
 * The baselines are event loops over the same cost table (they make no scheduling decisions worth simulating
 * through the service).
 */
public final class Simulator {

    /** One arrival: time (ms), steps, and its SLO (ms after arrival). */
    public record Arrival(double atMillis, int steps, double sloMillis) {
    }

    /** Outcome of one trace under one policy. */
    public record Result(int requests, int onTime, int rejected, double[] latencies, double meanBatch) {
        public double attainment() {
            return requests == 0 ? 1 : onTime / (double) requests;
        }

        public double percentile(double p) {
            if (latencies.length == 0) {
                return Double.NaN;
            }
            double[] s = latencies.clone();
            Arrays.sort(s);
            int i = (int) Math.ceil(p / 100.0 * s.length) - 1;
            return s[Math.max(0, Math.min(s.length - 1, i))];
        }
    }

    private final GpuCostTable costs;
    /**
     * Of the last {@link #runSdServe} run, per request: null if refused, else {admitted at ms, finished (or dropped)
     * at ms, ms late (≤ 0 on time; +∞ if dropped at its deadline)}.
     */
    public volatile double[][] lastAdmitted;
    /** Applied to every simulated request (a per-request option scenario, e.g. guidance truncation); none by default. */
    public java.util.function.UnaryOperator<GenerationRequest> requestOption = java.util.function.UnaryOperator.identity();
    /** Applied to the scheduler's configuration of every {@link #runSdServe} run (a server-setting scenario); none by default. */
    public java.util.function.Consumer<ServiceConfig> serviceOption = c -> {
    };
    /** Of the last {@link #runSdServe} run: the text-embedding cache's {hits, misses}. */
    public volatile long[] lastTextCache = {0, 0};
    private final int minSteps;
    private final int maxSteps;

    public Simulator(GpuCostTable costs, int minSteps, int maxSteps) {
        this.costs = costs;
        this.minSteps = minSteps;
        this.maxSteps = maxSteps;
    }

    public GpuCostTable costs() {
        return costs;
    }

    /**
     * A Poisson trace. The same seed gives the same unit-rate inter-arrival times and step counts at every rate
     * (common random numbers), so results vary smoothly with the rate.
     */
    public List<Arrival> trace(int n, double ratePerSecond, double sloFactor, long seed) {
        SplittableRandom rnd = new SplittableRandom(seed);
        List<Arrival> out = new ArrayList<>(n);
        double t = 0;
        for (int i = 0; i < n; i++) {
            t += -Math.log(1 - rnd.nextDouble()) / ratePerSecond * 1000.0;
            int steps = minSteps + rnd.nextInt(maxSteps - minSteps + 1);
            out.add(new Arrival(t, steps, sloFactor * costs.isolatedMillis(steps)));
        }
        return out;
    }

    // ------------------------------------------------------------------------------------------- sd-serve

    /** The real scheduler on simulated time. */
    public Result runSdServe(List<Arrival> trace) {
        return runSdServe(trace, new ServiceConfig());
    }

    public Result runSdServe(List<Arrival> trace, ServiceConfig cfg) {
        return runSdServe(trace, cfg, null);
    }

    /**
     * With background work (simulated LoRA training) given the run's clock; the run lasts until the trace is served
     * and the background work stops wanting steps.
     */
    public Result runSdServe(List<Arrival> trace, ServiceConfig cfg,
                             java.util.function.Function<SimClock, dev.sdserve.scheduler.BackgroundWork> background) {
        SimClock clock = new SimClock();
        FakeEngine engine = new FakeEngine(new FakeEngine.Config()
                .models(64, 512, "sd15") // 512² images on an 8×8 latent: timing comes from the table, not the maths
                .cost(costs).clock(clock).decodePixels(false));
        cfg.admission.defaultModel = "sd15";
        cfg.renderImages = false;
        cfg.publishExecutor = Runnable::run;
        cfg.costPrior = costs;
        cfg.stalledWatcherMillis = 0;
        cfg.retainFinishedJobs = trace.size() + 1;
        cfg.admission.maxQueue = Math.max(cfg.admission.maxQueue, 1024);
        cfg.randomSeed = () -> 1;
        serviceOption.accept(cfg);
        long epoch0 = clock.currentTimeMillis();
        int n = trace.size();
        Job[] jobs = new Job[n];
        long[] submitNanos = new long[n];
        int rejected = 0;
        try (SchedulerService svc = new SchedulerService(engine, cfg, clock)) {
            if (background != null) {
                svc.setBackgroundWork(background.apply(clock));
            }
            int next = 0;
            while (true) {
                long now = clock.nanoTime();
                while (next < n && trace.get(next).atMillis() * 1e6 <= now) {
                    Arrival a = trace.get(next);
                    long deadline = epoch0 + (long) Math.floor(a.atMillis() + a.sloMillis());
                    GenerationRequest r = GenerationRequest.ofPrompt("simulated request " + next)
                            .withSeed((long) next).withSteps(a.steps()).withSampler("euler").withGuidance(7.5)
                            .withPreview(PreviewOptions.OFF).withDeadline(null, deadline, false);
                    r = requestOption.apply(r);
                    submitNanos[next] = now;
                    try {
                        jobs[next] = svc.submit(r, true);
                    } catch (ServeException e) {
                        if (e.code() != ServeException.Code.RESOURCE_EXHAUSTED
                                && e.code() != ServeException.Code.DEADLINE_EXCEEDED) {
                            throw e;
                        }
                        rejected++;
                    }
                    next++;
                }
                if (!svc.runOnce()) {
                    if (next >= n) {
                        break;
                    }
                    clock.advanceTo((long) Math.ceil(trace.get(next).atMillis() * 1e6));
                }
            }
            List<Double> lat = new ArrayList<>();
            int onTime = 0;
            double[][] per = new double[n][];
            for (int i = 0; i < n; i++) {
                if (jobs[i] != null && !(jobs[i].terminalEvent() instanceof JobEvent.Completed)) {
                    // admitted, then dropped at its deadline: "late" by an unknown amount
                    per[i] = new double[]{submitNanos[i] / 1e6, trace.get(i).atMillis() + trace.get(i).sloMillis(),
                            Double.POSITIVE_INFINITY};
                }
                if (jobs[i] == null || !(jobs[i].terminalEvent() instanceof JobEvent.Completed c)) {
                    continue;
                }
                Arrival a = trace.get(i);
                double latency = (submitNanos[i] / 1e6 - a.atMillis()) + c.timingsMillis().get("total");
                lat.add(latency);
                per[i] = new double[]{submitNanos[i] / 1e6, a.atMillis() + latency, latency - a.sloMillis()};
                if (latency <= a.sloMillis() + 1e-6) {
                    onTime++;
                }
            }
            lastAdmitted = per;
            lastTextCache = new long[]{svc.stats().textCacheHits.get(), svc.stats().textCacheMisses.get()};
            return new Result(n, onTime, rejected, lat.stream().mapToDouble(Double::doubleValue).toArray(),
                    svc.stats().meanDenoiseJobs());
        }
    }

    // ------------------------------------------------------------------------------------------- baselines

    /** One request at a time, first come first served. */
    public Result runFcfs(List<Arrival> trace) {
        double t = 0;
        double[] lat = new double[trace.size()];
        int onTime = 0;
        for (int i = 0; i < trace.size(); i++) {
            Arrival a = trace.get(i);
            double start = Math.max(t, a.atMillis());
            t = start + costs.isolatedMillis(a.steps());
            lat[i] = t - a.atMillis();
            if (lat[i] <= a.sloMillis() + 1e-6) {
                onTime++;
            }
        }
        return new Result(trace.size(), onTime, 0, lat, 1.0);
    }

    /** Request-level dynamic batching with a queue-delay window. */
    public Result runDynamic(List<Arrival> trace, int maxBatch, double windowMillis) {
        int n = trace.size();
        double[] lat = new double[n];
        int onTime = 0;
        double free = 0;
        int next = 0;
        long unetCalls = 0;
        long unetImages = 0;
        ArrayDeque<Integer> queue = new ArrayDeque<>();
        while (next < n || !queue.isEmpty()) {
            if (queue.isEmpty()) {
                queue.add(next++);
            }
            double oldest = trace.get(queue.peekFirst()).atMillis();
            double ready = Math.max(free, oldest); // the engine must be free
            // The queue is full when the (maxBatch − queued)-th further arrival comes.
            double fullAt = Double.POSITIVE_INFINITY;
            int missing = maxBatch - queue.size();
            if (missing <= 0) {
                fullAt = oldest;
            } else if (next + missing - 1 < n) {
                fullAt = trace.get(next + missing - 1).atMillis();
            }
            double dispatch = Math.max(ready, Math.min(oldest + windowMillis, fullAt));
            while (next < n && trace.get(next).atMillis() <= dispatch) {
                queue.add(next++);
            }
            List<Integer> batch = new ArrayList<>();
            while (!queue.isEmpty() && batch.size() < maxBatch) {
                batch.add(queue.pollFirst());
            }
            int k = batch.size();
            int longest = 0;
            for (int i : batch) {
                longest = Math.max(longest, trace.get(i).steps());
            }
            double t = dispatch + costs.encodeMillis(2 * k);
            for (int s = 1; s <= longest; s++) {
                int active = 0;
                for (int i : batch) {
                    if (trace.get(i).steps() >= s) {
                        active++;
                    }
                }
                t += costs.unetMillis(2 * active);
                unetCalls++;
                unetImages += active;
            }
            t += costs.decodeMillis(k);
            for (int i : batch) {
                Arrival a = trace.get(i);
                lat[i] = t - a.atMillis();
                if (lat[i] <= a.sloMillis() + 1e-6) {
                    onTime++;
                }
            }
            free = t;
        }
        return new Result(n, onTime, 0, lat, unetCalls == 0 ? 0 : unetImages / (double) unetCalls);
    }

    // ------------------------------------------------------------------------------------------- goodput

    /** The highest rate (req/s) on a geometric grid with attainment ≥ target, and the result there. */
    public record Goodput(double rate, Result result, String config) {
    }

    /**
     * Searches the rate grid {@code lo·ratio^k ≤ hi} by bisection (attainment is taken as monotone in the rate).
     *
     * @param run runs the policy on a trace at a rate
     */
    public static Goodput goodput(DoubleFunction<Result> run, double target, double lo, double hi, double ratio) {
        int k = (int) Math.floor(Math.log(hi / lo) / Math.log(ratio));
        int good = -1;
        int bad = k + 1;
        Result best = null;
        while (bad - good > 1) {
            int mid = (good + bad) / 2;
            Result r = run.apply(lo * Math.pow(ratio, mid));
            if (r.attainment() >= target) {
                good = mid;
                best = r;
            } else {
                bad = mid;
            }
        }
        return good < 0 ? new Goodput(0, null, "") : new Goodput(lo * Math.pow(ratio, good), best, "");
    }
}
