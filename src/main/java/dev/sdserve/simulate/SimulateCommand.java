package dev.sdserve.simulate;

import dev.sdserve.cli.CliCommand;
import dev.sdserve.engine.fake.FakeEngine;
import dev.sdserve.job.GenerationRequest;
import dev.sdserve.job.PreviewOptions;
import dev.sdserve.clock.Clock;
import dev.sdserve.engine.CostModel;
import dev.sdserve.scheduler.SchedulerService;
import dev.sdserve.scheduler.SchedulerStats;
import dev.sdserve.scheduler.ServiceConfig;
import dev.sdserve.engine.DenoiseBatch;
import dev.sdserve.engine.EncodeItem;
import dev.sdserve.engine.Engine;
import dev.sdserve.engine.EngineStats;
import dev.sdserve.engine.LatentShape;
import dev.sdserve.engine.ModelInfo;

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
 * {@code simulate}: the real scheduler on a simulated clock against GPU-measured costs, compared with FCFS and
 * request-level dynamic batching; {@code simulate --overhead}: scheduling cost per decision with a zero-cost engine.
 */
public final class SimulateCommand implements CliCommand {
    static final String DEFAULT_COSTS = "../shared/gpu/h200-sd15-step-costs.json";
    static final Map<String, String> TABLES = new LinkedHashMap<>();

    static {
        TABLES.put("eager", "eager_sdpa");
        TABLES.put("compiled", "torch_compile_cudagraphs");
    }

    @Override
    public String name() {
        return "simulate";
    }

    @Override
    public String summary() {
        return "simulate the scheduler against measured GPU costs (goodput vs FCFS and dynamic batching)";
    }

    private static void usage(PrintStream out) {
        out.println("""
                Usage: simulate [options]
                  Runs sd-serve's scheduler on a simulated clock with engine costs measured on an H200 (SD 1.5,
                  512x512, guidance 7.5), Poisson arrivals at a sweep of rates, steps uniform in [min, max], SLO =
                  factor x the request's isolated latency. Baselines in the same harness: FCFS one request at a
                  time (A1111/ComfyUI) and request-level dynamic batching (Triton; best of a grid of max batch and
                  queue-delay window). Prints per policy and SLO the goodput (highest rate with >= 99%% of requests
                  finished within their SLO; rejected requests count as misses), p50/p99 latency, mean batch and
                  rejections at that rate; the last line compares goodputs at SLO 3x on the eager table.

                Options:
                  --costs PATH      cost file (default %s, also found under /work/shared/gpu)
                  --table NAME      eager | compiled | both (default both)
                  --requests N      requests per trace (default 600)
                  --slo LIST        SLO factors (default 2,3,5)
                  --steps MIN-MAX   step range (default 20-50)
                  --seed S          trace seed (default 1)
                  --target F        SLO attainment for goodput (default 0.99)
                  --overhead        only the overhead benchmark (zero-cost engine, system clock)
                  --help            this text
                """.formatted(DEFAULT_COSTS));
    }

    @Override
    public int run(List<String> args, PrintStream out) throws Exception {
        String costs = null;
        String table = "both";
        int requests = 600;
        List<Double> slos = List.of(2.0, 3.0, 5.0);
        int minSteps = 20;
        int maxSteps = 50;
        long seed = 1;
        double target = 0.99;
        boolean overhead = false;
        try {
            for (int i = 0; i < args.size(); i++) {
                String a = args.get(i);
                switch (a) {
                    case "--help", "-h" -> {
                        usage(out);
                        return 0;
                    }
                    case "--costs" -> costs = args.get(++i);
                    case "--table" -> table = args.get(++i);
                    case "--requests" -> requests = Integer.parseInt(args.get(++i));
                    case "--slo" -> {
                        List<Double> l = new ArrayList<>();
                        for (String s : args.get(++i).split(",")) {
                            l.add(Double.parseDouble(s.trim().replace("x", "")));
                        }
                        slos = l;
                    }
                    case "--steps" -> {
                        String[] p = args.get(++i).split("-");
                        minSteps = Integer.parseInt(p[0]);
                        maxSteps = Integer.parseInt(p[p.length - 1]);
                    }
                    case "--seed" -> seed = Long.parseLong(args.get(++i));
                    case "--target" -> target = Double.parseDouble(args.get(++i));
                    case "--overhead" -> overhead = true;
                    default -> throw new IllegalArgumentException("unknown option " + a);
                }
            }
            if (!table.equals("both") && !TABLES.containsKey(table)) {
                throw new IllegalArgumentException("--table must be eager, compiled or both, not " + table);
            }
            if (requests < 10 || minSteps < 1 || maxSteps < minSteps || slos.isEmpty()) {
                throw new IllegalArgumentException("need --requests >= 10, 1 <= min steps <= max steps, some SLOs");
            }
        } catch (IndexOutOfBoundsException | IllegalArgumentException e) {
            System.err.println("simulate: " + (e instanceof IndexOutOfBoundsException ? "missing option value" : e.getMessage()));
            usage(System.err);
            return 2;
        }
        if (overhead) {
            overhead(out);
            return 0;
        }
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

    static Path resolveCosts(String given) {
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
    static void overhead(PrintStream out) {
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
