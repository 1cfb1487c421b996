package dev.sdserve.tools.simulate;

import dev.sdserve.clock.Clock;
import dev.sdserve.engine.CostModel;
import dev.sdserve.engine.DenoiseBatch;
import dev.sdserve.engine.EncodeItem;
import dev.sdserve.engine.Engine;
import dev.sdserve.engine.EngineStats;
import dev.sdserve.engine.LatentShape;
import dev.sdserve.engine.ModelInfo;
import dev.sdserve.engine.fake.FakeEngine;
import dev.sdserve.job.GenerationRequest;
import dev.sdserve.job.PreviewOptions;
import dev.sdserve.scheduler.SchedulerService;
import dev.sdserve.scheduler.SchedulerStats;
import dev.sdserve.scheduler.ServiceConfig;

import java.io.PrintStream;
import java.lang.management.ManagementFactory;
import java.lang.management.ThreadMXBean;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * The {@code simulate} report: the real scheduler on a simulated clock against GPU-measured costs, compared with
 * FCFS and request-level dynamic batching ({@link Simulator}), as goodput per policy and SLO; and the overhead
 * benchmark (scheduling cost per decision with a zero-cost engine).
 */
public final class SimulationReport {
    public static final String DEFAULT_COSTS = "../shared/gpu/h200-sd15-step-costs.json";
    /** Cost tables by option name → name in the cost file. */
    public static final Map<String, String> TABLES = new LinkedHashMap<>();

    static {
        TABLES.put("eager", "eager_sdpa");
        TABLES.put("compiled", "torch_compile_cudagraphs");
    }

    private SimulationReport() {
    }

    /**
     * What to simulate (the command line's options).
     *
     * @param costs cost file, or null for the default places
     * @param table eager, compiled or both
     */
    public record Options(String costs, String table, int requests, List<Double> slos, int minSteps, int maxSteps,
                          long seed, double target) {
    }

    /** Prints the report; returns the exit code (2: no cost file). */
    public static int run(Options o, PrintStream out) throws Exception {
        String costs = o.costs();
        String table = o.table();
        int requests = o.requests();
        List<Double> slos = o.slos();
        int minSteps = o.minSteps();
        int maxSteps = o.maxSteps();
        long seed = o.seed();
        double target = o.target();
        Path file = resolveCosts(costs);
        if (file == null) {
            System.err.println("simulate: cost file not found: " + (costs != null ? costs : DEFAULT_COSTS)
                    + " (give --costs PATH)");
            return 2;
        }
        long t0 = System.nanoTime();
        Map<String, Double> ratiosFcfs = new LinkedHashMap<>();
        Map<String, Double> ratiosDyn = new LinkedHashMap<>();
        for (Map.Entry<String, String> t : TABLES.entrySet()) {
            if (!table.equals("both") && !table.equals(t.getKey())) {
                continue;
            }
            GpuCostTable ct = GpuCostTable.load(file, t.getValue());
            Simulator sim = new Simulator(ct, minSteps, maxSteps);
            out.printf(Locale.ROOT, "%n== %s table (%s): UNet ms by latent batch %s; isolated latency %.0f ms (%d steps) .. %.0f ms (%d steps)%n",
                    t.getKey(), t.getValue(), ct.unetTable(), ct.isolatedMillis(minSteps), minSteps,
                    ct.isolatedMillis(maxSteps), maxSteps);
            out.printf(Locale.ROOT, "%-8s %4s %10s %9s %9s %7s %9s %8s  %s%n", "policy", "slo", "goodput/s", "p50_ms",
                    "p99_ms", "batch", "rejected", "attain", "notes");
            for (double f : slos) {
                final int n = requests;
                final long sd = seed;
                Simulator.Goodput ours = Simulator.goodput(r -> sim.runSdServe(sim.trace(n, r, f, sd)), target, 0.01, 100, 1.04);
                Simulator.Goodput fcfs = Simulator.goodput(r -> sim.runFcfs(sim.trace(n, r, f, sd)), target, 0.01, 100, 1.04);
                Simulator.Goodput dyn = null;
                String dynCfg = "";
                for (int mb : new int[]{2, 4, 8, 16, 32}) {
                    for (double w : new double[]{0, 50, 200, 800}) {
                        Simulator.Goodput g = Simulator.goodput(r -> sim.runDynamic(sim.trace(n, r, f, sd), mb, w), target, 0.01, 100, 1.04);
                        if (dyn == null || g.rate() > dyn.rate()) {
                            dyn = g;
                            dynCfg = "max_batch=" + mb + " window=" + (int) w + "ms";
                        }
                    }
                }
                print(out, "sdserve", f, ours, "step-level batching, least slack, admission");
                print(out, "fcfs", f, fcfs, "one request at a time");
                print(out, "dynamic", f, dyn, "best of grid: " + dynCfg);
                String key = t.getKey() + "@" + fmt(f);
                ratiosFcfs.put(key, fcfs.rate() > 0 ? ours.rate() / fcfs.rate() : Double.POSITIVE_INFINITY);
                ratiosDyn.put(key, dyn.rate() > 0 ? ours.rate() / dyn.rate() : Double.POSITIVE_INFINITY);
                out.printf(Locale.ROOT, "         goodput ratio at slo %sx: vs fcfs %.2f, vs dynamic %.2f%n", fmt(f),
                        ratiosFcfs.get(key), ratiosDyn.get(key));
            }
        }
        cheaperSteps(out, file, table, requests, slos, minSteps, maxSteps, seed, target);
        out.printf(Locale.ROOT, "%n(%d requests per trace, seed %d, %.1f s wall)%n", requests, seed, (System.nanoTime() - t0) / 1e9);
        String key = (table.equals("compiled") ? "compiled" : "eager") + "@3";
        Double vf = ratiosFcfs.get(key);
        Double vd = ratiosDyn.get(key);
        if (vf == null) {
            // no SLO 3x in the list: compare at the first SLO
            key = ratiosFcfs.keySet().iterator().next();
            vf = ratiosFcfs.get(key);
            vd = ratiosDyn.get(key);
        }
        out.printf(Locale.ROOT, "simulate: goodput_vs_fcfs=%.2f goodput_vs_dynamic=%.2f%n", vf, vd);
        return 0;
    }

    /**
     * The cheaper-step options as a scenario: sdserve's goodput when every request carries the option, on one table
     * at one SLO (3x when listed, else the first). A truncated step costs the unguided batch in the cost table, as on
     * the engine; a DeepCache shallow step costs the full step's batch times the ratio measured on the engine
     * ({@link dev.sdserve.engine.DeepCache#SHALLOW_COST_PRIOR}, {@code bench --deepcache}: the GPU table has no
     * shallow column); a token-merged step the table's cost times the merged cost factor measured on the CPU engine
     * ({@link dev.sdserve.engine.TokenMerging#costFactor}); the options' image difference is measured on the engine
     * ({@code bench --savings}).
     */
    private static void cheaperSteps(PrintStream out, Path file, String table, int requests, List<Double> slos,
                                     int minSteps, int maxSteps, long seed, double target) throws Exception {
        String t = table.equals("compiled") ? "compiled" : "eager";
        double f = slos.contains(3.0) ? 3.0 : slos.get(0);
        Simulator sim = new Simulator(GpuCostTable.load(file, TABLES.get(t)), minSteps, maxSteps);
        out.printf(Locale.ROOT, "%n== cheaper steps (%s table, slo %sx): sdserve with the option on every request%n", t,
                fmt(f));
        out.printf(Locale.ROOT, "%-28s %10s %9s %9s %7s %8s%n", "option", "goodput/s", "p50_ms", "p99_ms", "batch",
                "vs none");
        double base = Double.NaN;
        Map<String, java.util.function.UnaryOperator<GenerationRequest>> options = new LinkedHashMap<>();
        options.put("none", r -> r);
        options.put("guidance_cutoff=0.7", r -> r.withGuidanceCutoff(0.7));
        options.put("guidance_cutoff=0.5", r -> r.withGuidanceCutoff(0.5));
        options.put("deep_cache_interval=2", r -> r.withDeepCacheInterval(2));
        options.put("deep_cache_interval=3", r -> r.withDeepCacheInterval(3));
        // token merging: a merged UNet call costs the table's call times the factor measured on this CPU
        // (TokenMerging.costFactor at the table's latent size)
        options.put("token_merging_ratio=0.3", r -> r.withTokenMerging(0.3));
        options.put("token_merging_ratio=0.5", r -> r.withTokenMerging(0.5));
        for (Map.Entry<String, java.util.function.UnaryOperator<GenerationRequest>> o : options.entrySet()) {
            sim.requestOption = o.getValue();
            Simulator.Goodput g = Simulator.goodput(r -> sim.runSdServe(sim.trace(requests, r, f, seed)), target,
                    0.01, 100, 1.04);
            if (Double.isNaN(base)) {
                base = g.rate();
            }
            Simulator.Result res = g.result();
            out.printf(Locale.ROOT, "%-28s %10.2f %9.0f %9.0f %7.2f %7.2fx%n", o.getKey(), g.rate(),
                    res == null ? Double.NaN : res.percentile(50), res == null ? Double.NaN : res.percentile(99),
                    res == null ? Double.NaN : res.meanBatch(), base > 0 ? g.rate() / base : Double.NaN);
        }
        textCache(out, file, t, f, requests, minSteps, maxSteps, seed, target);
        textCache(out, file, t, f, requests, 4, 8, seed, target);
    }

    /**
     * The text-embedding cache (a server setting) on prompts that repeat as a public service's do
     * ({@link TextCacheScenario}), off and on, with requests of {@code minSteps}..{@code maxSteps} steps.
     */
    private static void textCache(PrintStream out, Path file, String t, double f, int requests, int minSteps,
                                  int maxSteps, long seed, double target) throws Exception {
        Simulator sim = new Simulator(GpuCostTable.load(file, TABLES.get(t)), minSteps, maxSteps);
        sim.requestOption = TextCacheScenario::prompts;
        double base = Double.NaN;
        for (boolean on : new boolean[]{false, true}) {
            sim.serviceOption = c -> c.textCacheBytes = on ? 64L << 20 : 0;
            Simulator.Goodput g = Simulator.goodput(r -> sim.runSdServe(sim.trace(requests, r, f, seed)), target,
                    0.01, 100, 1.04);
            if (!on) {
                base = g.rate();
            }
            Simulator.Result res = g.result();
            long[] hm = sim.lastTextCache;
            String name = on ? String.format(Locale.ROOT, "  + text_cache (%.0f%% hit)",
                    100.0 * hm[0] / Math.max(1, hm[0] + hm[1])) : "repeated prompts " + minSteps + "-" + maxSteps + " st";
            out.printf(Locale.ROOT, "%-28s %10.2f %9.0f %9.0f %7.2f %7.2fx%n", name, g.rate(),
                    res == null ? Double.NaN : res.percentile(50), res == null ? Double.NaN : res.percentile(99),
                    res == null ? Double.NaN : res.meanBatch(), base > 0 ? g.rate() / base : Double.NaN);
        }
    }

    private static String fmt(double f) {
        return f == Math.rint(f) ? String.valueOf((int) f) : String.valueOf(f);
    }

    private static void print(PrintStream out, String policy, double slo, Simulator.Goodput g, String notes) {
        Simulator.Result r = g.result();
        if (r == null) {
            out.printf(Locale.ROOT, "%-8s %3sx %10s %9s %9s %7s %9s %8s  %s%n", policy, fmt(slo), "<0.01", "-", "-", "-", "-", "-", notes);
            return;
        }
        out.printf(Locale.ROOT, "%-8s %3sx %10.2f %9.0f %9.0f %7.2f %9d %7.1f%%  %s%n", policy, fmt(slo), g.rate(),
                r.percentile(50), r.percentile(99), r.meanBatch(), r.rejected(), 100 * r.attainment(), notes);
    }

    public static Path resolveCosts(String given) {
        List<Path> candidates = new ArrayList<>();
        if (given != null) {
            candidates.add(Paths.get(given));
        } else {
            candidates.add(Paths.get(DEFAULT_COSTS));
            candidates.add(Paths.get("shared/gpu/h200-sd15-step-costs.json"));
            String env = System.getenv("SDSERVE_SHARED");
            if (env != null) {
                candidates.add(Paths.get(env, "gpu/h200-sd15-step-costs.json"));
            }
            candidates.add(Paths.get("/work/shared/gpu/h200-sd15-step-costs.json"));
        }
        for (Path p : candidates) {
            if (Files.isRegularFile(p)) {
                return p;
            }
        }
        return null;
    }

    // ------------------------------------------------------------------------------------------- overhead

    /**
     * Zero-cost engine on the system clock, realistic latent size (SD 1.x 512²: 4×64×64), N concurrent guided jobs
     * of 50 steps. Measured in CPU time of the scheduler thread (the machine may be shared): the thread's CPU time
     * minus the CPU time spent inside engine calls = the scheduler's own cost (planning, sampler updates, events).
     */
    public static void overhead(PrintStream out) {
        ThreadMXBean mx = ManagementFactory.getThreadMXBean();
        for (int concurrent : new int[]{1, 8, 32}) {
            FakeEngine fake = new FakeEngine(new FakeEngine.Config().models(8, 512, "sd15").cost(CostModel.ZERO)
                    .decodePixels(false));
            CpuTimedEngine engine = new CpuTimedEngine(fake, mx);
            ServiceConfig cfg = new ServiceConfig();
            cfg.admission.defaultModel = "sd15";
            cfg.renderImages = false;
            cfg.publishExecutor = Runnable::run;
            cfg.costPrior = CostModel.ZERO;
            cfg.maxLatentBatch = 2 * concurrent;
            cfg.stalledWatcherMillis = 0;
            cfg.statsTimer = mx::getCurrentThreadCpuTime;
            try (SchedulerService svc = new SchedulerService(engine, cfg, Clock.system())) {
                runRound(svc, concurrent, 50); // warm-up
                SchedulerStats s = svc.stats();
                long it0 = s.iterations.get();
                long samp0 = s.samplerNanos.get();
                long plan0 = s.planningNanos.get();
                long dn0 = s.denoiseCalls.get();
                long eng0 = engine.cpuNanos;
                long cpu0 = mx.getCurrentThreadCpuTime();
                int rounds = concurrent == 1 ? 20 : 4;
                for (int r = 0; r < rounds; r++) {
                    runRound(svc, concurrent, 50);
                }
                long cpu = mx.getCurrentThreadCpuTime() - cpu0;
                long iters = s.iterations.get() - it0;
                long steps = s.denoiseCalls.get() - dn0;
                long inEngine = engine.cpuNanos - eng0;
                long sampler = s.samplerNanos.get() - samp0;
                long planning = s.planningNanos.get() - plan0;
                long own = cpu - inEngine - sampler;
                double perIterUs = own / 1e3 / iters;
                double perStepUs = own / 1e3 / steps;
                double samplerPerStepUs = sampler / 1e3 / steps;
                out.printf(Locale.ROOT, "overhead: %2d concurrent guided jobs x 50 steps, latent 4x64x64: %d iterations "
                                + "(%d UNet steps), scheduler thread CPU %.0f ms of which engine (fake maths) %.0f ms%n",
                        concurrent, iters, steps, cpu / 1e6, inEngine / 1e6);
                out.printf(Locale.ROOT, "overhead: %2d concurrent: %.0f scheduling decisions/s; scheduling %.1f us per iteration "
                                + "(planning %.1f us); %.1f us per batched denoise step = %.3f%% of a 40 ms step%n",
                        concurrent, iters / (own / 1e9), perIterUs, planning / 1e3 / iters, perStepUs, perStepUs / 400.0);
                out.printf(Locale.ROOT, "overhead: %2d concurrent: sampler maths on the scheduler thread (noise, model inputs, "
                                + "updates of %d images of 4x64x64) %.1f us per step = %.3f%% of a 40 ms step%n",
                        concurrent, concurrent, samplerPerStepUs, samplerPerStepUs / 400.0);
            }
        }
    }

    /** Delegates to an engine and sums the calling thread's CPU time inside its calls. */
    private static final class CpuTimedEngine implements Engine {
        private final Engine inner;
        private final ThreadMXBean mx;
        long cpuNanos;

        CpuTimedEngine(Engine inner, ThreadMXBean mx) {
            this.inner = inner;
            this.mx = mx;
        }

        private <T> T timed(java.util.function.Supplier<T> call) {
            long t0 = mx.getCurrentThreadCpuTime();
            try {
                return call.get();
            } finally {
                cpuNanos += mx.getCurrentThreadCpuTime() - t0;
            }
        }

        @Override
        public ModelInfo describe(String model) {
            return inner.describe(model);
        }

        @Override
        public float[][] encode(String model, List<EncodeItem> items) {
            return timed(() -> inner.encode(model, items));
        }

        @Override
        public float[][] denoise(DenoiseBatch batch) {
            return timed(() -> inner.denoise(batch));
        }

        @Override
        public float[][] decode(String model, LatentShape shape, List<float[]> latents) {
            return timed(() -> inner.decode(model, shape, latents));
        }

        @Override
        public EngineStats stats() {
            return inner.stats();
        }
    }

    private static void runRound(SchedulerService svc, int concurrent, int steps) {
        for (int i = 0; i < concurrent; i++) {
            svc.submit(GenerationRequest.ofPrompt("overhead " + i).withSeed((long) i).withSteps(steps)
                    .withSampler(i % 2 == 0 ? "euler" : "euler_a").withPreview(PreviewOptions.OFF), true);
        }
        while (svc.runOnce()) {
            // run to the end
        }
    }
}
