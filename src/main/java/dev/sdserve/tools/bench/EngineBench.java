package dev.sdserve.tools.bench;

import java.io.IOException;
import java.io.InputStream;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.function.Supplier;

import dev.sdserve.engine.tf.TfModel;
import dev.sdserve.ops.HugePages;
import dev.sdserve.model.DType;
import dev.sdserve.model.ModelConfig;
import dev.sdserve.model.ModelConfigs;
import dev.sdserve.model.RandomCheckpoint;

/**
 * The engine half of {@code bench}: a random SD 1.5 checkpoint in the civitai layout (fp16, written once and
 * reused), loaded with {@link TfModel}, and each network timed through the engine's own graphs, with the FMA peak
 * measured just before and just after every case.
 */
final class EngineBench {
    private EngineBench() {
    }

    static int run(Path dir, int threads, int interOp, int chunk, int reps, boolean before, List<String> cases,
                   PrintStream out) throws IOException {
        return run(dir, threads, interOp, chunk, reps, before, false, cases, out);
    }

    static int run(Path dir, int threads, int interOp, int chunk, int reps, boolean before, boolean profile,
                   List<String> cases, PrintStream out) throws IOException {
        return run(dir, threads, interOp, chunk, reps, before, profile, false, cases, out);
    }

    /**
     * @param sdxl a full-size SDXL base checkpoint (random weights in the layout of {@code sdxl-full-layout.txt},
     *             fp16, 6.9 GB) instead of SD 1.5's; cases unet128[b2] (1024² images), te1 / te2 (CLIP-L and
     *             OpenCLIP-bigG as SDXL uses them: penultimate states, the second with its pooled projection) and
     *             vae1024
     */
    static int run(Path dir, int threads, int interOp, int chunk, int reps, boolean before, boolean profile,
                   boolean sdxl, List<String> cases, PrintStream out) throws IOException {
        // The engine reads these when it first builds a graph (class init of Nn / TfGraph).
        System.setProperty("sdserve.threads", Integer.toString(threads));
        System.setProperty("sdserve.interOpThreads", Integer.toString(interOp));
        System.setProperty("sdserve.attnChunk", Integer.toString(before ? 0 : chunk));
        if (before) {
            System.setProperty("sdserve.conv3x3", "NATIVE");
            System.setProperty("sdserve.groupNorm", "plain");
        }
        ModelConfig cfg = sdxl ? ModelConfigs.sdxlBase() : ModelConfigs.sd15();
        String arch = sdxl ? "SDXL base" : "SD 1.5";
        String modelName = sdxl ? "sdxl-random" : "sd15-random";
        Path file = dir.resolve(sdxl ? "sdxl-random-fp16.safetensors" : "sd15-random-fp16.safetensors");
        boolean existed = Files.exists(file);
        long t0 = System.nanoTime();
        RandomCheckpoint.ensure(file, cfg, DType.F16, 1234);
        double ensureS = (System.nanoTime() - t0) / 1e9;
        long size = Files.size(file);
        out.printf("bench: checkpoint %s (%.2f GB fp16, %s in %.1f s)%n", file, size / 1e9,
                existed ? "validated existing" : "written", ensureS);
        // Read and load times, each from a cold page cache (the file's pages evicted with dd's nocache flag, which
        // drops only this file) and from a warm one (read again right after): a server start is usually cold.
        boolean evicts = evict(file);
        long rc0 = processCpuNanos();
        double coldReadS = readFile(file);
        long rc1 = processCpuNanos();
        double warmReadS = readFile(file);
        long rc2 = processCpuNanos();
        out.printf("bench: plain read of the file: %s %.2f s (cpu %.2f s), warm (page cache) %.2f s (cpu %.2f s)%n",
                evicts ? "cold (evicted)" : "first (could not evict: no dd)", coldReadS, (rc1 - rc0) / 1e9,
                warmReadS, (rc2 - rc1) / 1e9);
        out.printf("bench: " + arch + " architecture via TfEngine graphs, fp32, %d intra-op / %d inter-op threads, %s%n",
                threads, interOp, before ? "BEFORE: native Conv2D, textbook GroupNorm, unchunked attention"
                        : "kernels: 3x3 convs Winograd F(4,3) from 32x32 px, F(2,3) at 16x16, im2col below, "
                        + "GroupNorm statistics as MatMuls, attention query chunk " + chunk);
        long availKb = memAvailableKb();
        if (availKb > 0 && availKb * 1024.0 < 1.4 * size) {
            // weights stay fp16 in memory (about the file's size) plus the graphs' activations: on a shared machine
            // a load that cannot fit would push the kernel's OOM killer onto other processes
            out.printf("bench: NOT loading: MemAvailable %.1f GB < 1.4 x the %.2f GB file needed for the weights and "
                    + "activations; free memory and rerun (the file is kept)%n", availKb / 1e6 * 1.024, size / 1e9);
            return 3;
        }
        double coldLoadS = Double.NaN, coldLoadCpu = Double.NaN;
        if (evicts) {
            evict(file);
            long c0 = System.nanoTime(), cc0 = processCpuNanos();
            try (TfModel m = TfModel.load(modelName, file, cfg)) {
                coldLoadS = (System.nanoTime() - c0) / 1e9;
                coldLoadCpu = (processCpuNanos() - cc0) / 1e9;
            }
        }
        long l0 = System.nanoTime(), lc0 = processCpuNanos();
        try (TfModel m = TfModel.load(modelName, file, cfg)) {
            double loadS = (System.nanoTime() - l0) / 1e9, loadCpu = (processCpuNanos() - lc0) / 1e9;
            long loadHwmKb = Bench.vmHwmKb();
            out.printf("bench: %s%n", m.weights());
            out.printf("bench: load cold %.2f s (cpu %.2f s) = %.2f x the cold read; warm %.2f s (cpu %.2f s) = %.2f x "
                    + "the warm read%n", coldLoadS, coldLoadCpu, coldLoadS / coldReadS, loadS, loadCpu, loadS / warmReadS);
            out.printf("bench: peak RSS after load (VmHWM) %.2f GB = %.2f x the fp16 file; RSS now %s (%s)%n",
                    loadHwmKb / 1e6 * 1.024, loadHwmKb * 1024.0 / size, Bench.vmRss(), Bench.rssParts());
            double readS = warmReadS;
            out.printf("%-10s %10s %9s %9s %7s %17s %8s %9s %9s%n", "case", "ms", "GFLOP", "GFLOP/s", "%peak",
                    "peak before/after", "cpu-s", "%peak-cpu", "VmHWM GB");
            SplittableRandom rnd = new SplittableRandom(5);
            double u64ms = Double.NaN, u64gf = Double.NaN, u64peak = Double.NaN, u64cpuEff = Double.NaN;
            double u64core = Double.NaN;
            java.util.Map<String, Double> effs = new java.util.LinkedHashMap<>();
            for (String c : cases) {
                Call cl = sdxl ? sdxlCall(c, m, cfg, rnd) : call(c, m, cfg, rnd);
                double flops = cl.flops();
                Supplier<float[][]> call = cl.run();
                float[][] first = call.get(); // builds the graph; warm-up
                for (float v : first[0]) {
                    if (!Float.isFinite(v)) {
                        throw new IllegalStateException(c + " produced a non-finite value");
                    }
                }
                FmaPeak.Peak peakBefore = FmaPeak.measure(threads, 100);
                double[] ts = new double[reps];
                long cpu0 = processCpuNanos();
                for (int i = 0; i < reps; i++) {
                    long s = System.nanoTime();
                    call.get();
                    ts[i] = (System.nanoTime() - s) / 1e6;
                }
                double cpuS = (processCpuNanos() - cpu0) / 1e9 / reps;
                FmaPeak.Peak after = FmaPeak.measure(threads, 100);
                double pb = peakBefore.gflops(), pa = after.gflops();
                Arrays.sort(ts);
                double ms = ts[reps / 2], peak = (pb + pa) / 2, gf = flops / ms / 1e6;
                // CPU-time view: FLOP per CPU-second of the process against one core's FLOP per CPU-second. It
                // is not inflated by other processes on the cores; TF's spinning worker threads count against us.
                double core = Math.max(peakBefore.perCoreCpuGflops(), after.perCoreCpuGflops());
                double effCpu = flops / cpuS / 1e9 / core;
                out.printf("%-10s %10.1f %9.1f %9.1f %6.1f%% %8.1f/%-8.1f %8.1f %8.1f%% %9.2f%n", c, ms, flops / 1e9, gf,
                        100 * gf / peak, pb, pa, cpuS, 100 * effCpu, Bench.vmHwmKb() / 1e6 * 1.024);
                if (profile) {
                    java.util.Map<String, Double> byOp = new java.util.LinkedHashMap<>();
                    dev.sdserve.engine.tf.TfGraph.traceNextRun(byOp::putAll);
                    call.get();
                    Double span = byOp.remove(dev.sdserve.engine.tf.TfGraph.SPAN);
                    Double busy = byOp.remove(dev.sdserve.engine.tf.TfGraph.BUSY);
                    double total = byOp.values().stream().mapToDouble(Double::doubleValue).sum();
                    out.printf("  %s, one traced call, ms per op type (both threads' nodes summed, %.0f ms): %s%n", c,
                            total, byOp.entrySet().stream().limit(10).map(e -> String.format("%s %.0f (%.0f%%)",
                                    e.getKey(), e.getValue(), 100 * e.getValue() / total))
                                    .collect(java.util.stream.Collectors.joining(", ")));
                    if (span != null && busy != null) {
                        out.printf("  %s: ops ran during %.0f of the traced call's %.0f ms; no op running for %.0f ms "
                                + "(%.1f%%: idle between ops)%n", c, busy, span, span - busy, 100 * (span - busy) / span);
                    }
                }
                effs.put(effKey(c), gf / peak);
                if (c.equals("unet64")) {
                    u64cpuEff = effCpu;
                    u64core = core;
                }
                if (c.equals("unet64")) {
                    u64ms = ms;
                    u64gf = gf;
                    u64peak = peak;
                }
            }
            long hwmKb = Bench.vmHwmKb();
            out.printf("bench: peak RSS over the bench (VmHWM) %.2f GB = %.2f x the fp16 file; after load %.2f x; "
                            + "load warm %.2f s = %.2f x the warm read, cold %.2f s = %.2f x the cold read%n",
                    hwmKb / 1e6 * 1.024, hwmKb * 1024.0 / size, loadHwmKb * 1024.0 / size, loadS, loadS / readS,
                    coldLoadS, coldLoadS / coldReadS);
            out.println("bench: " + hugePagesLine());
            long transposed = m.weights().transposedWeightBytes();
            out.printf("bench: Winograd kernel transforms held: %.2f GB (sdserve.winograd.kernelCacheMb); linear "
                            + "weights held transposed: %.2f GB (sdserve.linearTransposeCacheMb, textTransposeCacheMb)%n",
                    (m.weights().transformBytes() - transposed) / 1e9, transposed / 1e9);
            out.printf("bench: unet64 by CPU time: %.1f%% of %d x %.1f GFLOP per core-second (quiet-machine peak %.1f)%n",
                    100 * u64cpuEff, threads, u64core, threads * u64core);
            out.printf("bench: unet64_ms=%.1f unet64_gflops=%.1f peak_gflops=%.1f efficiency=%.3f%n", u64ms, u64gf,
                    u64peak, u64gf / u64peak);
            out.println(effLine(effs));
        }
        return 0;
    }

    /** How much of the resident anonymous memory is on huge pages, and why ({@link HugePages}). */
    static String hugePagesLine() {
        String why = HugePages.tunable(System.getenv()).map(v -> HugePages.TUNABLE + "=" + v
                        + (System.getenv(HugePages.RELAUNCHED) != null ? ", relaunched" : ", from the environment"))
                .orElse("no " + HugePages.TUNABLE + (HugePages.thpMode().map(m -> ", THP mode " + m).orElse("")));
        return HugePages.anonymousResident()
                .map(r -> String.format("native memory on 2 MiB pages: %.2f of %.2f GB resident anonymous (%s)",
                        r[1] / 1e9, r[0] / 1e9, why))
                .orElse("native memory on 2 MiB pages: unknown, no /proc/self/smaps_rollup (" + why + ")");
    }

    /**
     * {@code bench --ab-weights A,B}: the same checkpoint loaded twice, with weight storage policy A
     * ({@code -Dsdserve.weights.half=A}) and B, and every case timed on both, alternated call by call (A B, B A, ...)
     * so a noisy neighbour weighs on both alike; prints both tables side by side, the ratio and the bytes each holds.
     */
    static int runAb(Path dir, int threads, int interOp, int chunk, int reps, String policyA, String policyB,
                     List<String> cases, PrintStream out) throws IOException {
        ModelConfig cfg = ModelConfigs.sd15();
        Path file = abCheckpoint(dir, threads, interOp, chunk, cfg);
        String saved = System.getProperty("sdserve.weights.half");
        TfModel a = null, b = null;
        try {
            System.setProperty("sdserve.weights.half", policyA);
            long r0 = Bench.statusKb("VmRSS:");
            a = TfModel.load("A", file, cfg);
            long r1 = Bench.statusKb("VmRSS:");
            System.setProperty("sdserve.weights.half", policyB);
            b = TfModel.load("B", file, cfg);
            long r2 = Bench.statusKb("VmRSS:");
            out.printf("bench: A/B on %s, %d intra-op / %d inter-op threads, attention chunk %d, %d alternated reps%n",
                    file, threads, interOp, chunk, reps);
            out.printf("bench: A = weights.half=%s: %.2f GB of weights (RSS +%.2f GB); B = weights.half=%s: %.2f GB "
                            + "(RSS +%.2f GB)%n", policyA, a.weights().bytes() / 1e9, (r1 - r0) * 1024 / 1e9, policyB,
                    b.weights().bytes() / 1e9, (r2 - r1) * 1024 / 1e9);
            alternate(a, b, Map.of(), Map.of(), cfg, threads, reps, cases, out);
            out.printf("bench: peak RSS over the run (VmHWM, both models resident) %.2f GB%n",
                    Bench.vmHwmKb() / 1e6 * 1.024);
        } finally {
            if (saved == null) {
                System.clearProperty("sdserve.weights.half");
            } else {
                System.setProperty("sdserve.weights.half", saved);
            }
            if (a != null) {
                a.close();
            }
            if (b != null) {
                b.close();
            }
        }
        return 0;
    }

    /**
     * {@code bench --ab-props A;B}: the checkpoint loaded once and seen through two models sharing its weights, whose
     * graphs are built with the system properties of A and of B ({@code key=value,key=value}: e.g.
     * {@code sdserve.interOpThreads=2} or {@code sdserve.winograd2MinPixels=1024}, anything the engine reads when it
     * builds a graph); every case timed on both, alternated call by call, wall and CPU time.
     */
    static int runAbProps(Path dir, int threads, int interOp, int chunk, int reps, String propsA, String propsB,
                          List<String> cases, PrintStream out) throws IOException {
        ModelConfig cfg = ModelConfigs.sd15();
        Path file = abCheckpoint(dir, threads, interOp, chunk, cfg);
        Map<String, String> pa = props(propsA), pb = props(propsB);
        try (TfModel a = TfModel.load("A", file, cfg);
             TfModel b = new TfModel("B", cfg, a.weights(), a.loadNanos(), a.compute())) {
            out.printf("bench: A/B on %s (weights loaded once, %.2f GB), %d intra-op / %d inter-op threads, attention "
                    + "chunk %d, %d alternated reps; graphs built with A = %s, B = %s%n", file,
                    a.weights().bytes() / 1e9, threads, interOp, chunk, reps, pa, pb);
            alternate(a, b, pa, pb, cfg, threads, reps, cases, out);
        }
        return 0;
    }

    /** The A/B runs' engine settings and the random SD 1.5 checkpoint (written once). */
    private static Path abCheckpoint(Path dir, int threads, int interOp, int chunk, ModelConfig cfg) throws IOException {
        System.setProperty("sdserve.threads", Integer.toString(threads));
        System.setProperty("sdserve.interOpThreads", Integer.toString(interOp));
        System.setProperty("sdserve.attnChunk", Integer.toString(chunk));
        Path file = dir.resolve("sd15-random-fp16.safetensors");
        RandomCheckpoint.ensure(file, cfg, DType.F16, 1234);
        return file;
    }

    /** {@code k=v,k=v} (empty or "-": none). */
    static Map<String, String> props(String spec) {
        Map<String, String> m = new java.util.LinkedHashMap<>();
        for (String kv : spec.split(",")) {
            if (kv.isBlank() || kv.equals("-")) {
                continue;
            }
            int eq = kv.indexOf('=');
            if (eq <= 0) {
                throw new IllegalArgumentException("--ab-props: '" + kv + "' is not key=value");
            }
            m.put(kv.substring(0, eq).trim(), kv.substring(eq + 1).trim());
        }
        return m;
    }

    /** Runs {@code r} with the system properties {@code props} set, restoring the previous values after. */
    static <T> T withProps(Map<String, String> props, Supplier<T> r) {
        Map<String, String> saved = new java.util.HashMap<>();
        for (var e : props.entrySet()) {
            saved.put(e.getKey(), System.getProperty(e.getKey()));
            System.setProperty(e.getKey(), e.getValue());
        }
        try {
            return r.get();
        } finally {
            for (var e : saved.entrySet()) {
                if (e.getValue() == null) {
                    System.clearProperty(e.getKey());
                } else {
                    System.setProperty(e.getKey(), e.getValue());
                }
            }
        }
    }

    /**
     * The A/B table: each case built on {@code a} (under {@code propsA}) and {@code b} (under {@code propsB}),
     * then timed alternately (A B, B A, ...); medians of wall and CPU time, % of the FMA peak measured around the
     * case and by CPU time (FLOP per process CPU-second against one core's), and the summary lines of both.
     */
    private static void alternate(TfModel a, TfModel b, Map<String, String> propsA, Map<String, String> propsB,
                                  ModelConfig cfg, int threads, int reps, List<String> cases, PrintStream out) {
        out.printf("%-9s %9s %9s %7s %7s %7s %8s %8s %8s %17s%n", "case", "A ms", "B ms", "B/A", "A %pk", "B %pk",
                "A %cpu", "B %cpu", "GFLOP", "peak before/after");
        Map<String, Double> effA = new java.util.LinkedHashMap<>(), effB = new java.util.LinkedHashMap<>();
        for (String c : cases) {
            Call ra = call(c, a, cfg, new SplittableRandom(5)), rb = call(c, b, cfg, new SplittableRandom(5));
            // every call under its side's properties (some are read per call, e.g. sdserve.lanes)
            Call ca = new Call(ra.flops(), () -> withProps(propsA, ra.run()));
            Call cb = new Call(rb.flops(), () -> withProps(propsB, rb.run()));
            ca.run().get(); // graph build, warm-up
            cb.run().get();
            FmaPeak.Peak before = FmaPeak.measure(threads, 100);
            double[] ta = new double[reps], tb = new double[reps], ua = new double[reps], ub = new double[reps];
            for (int i = 0; i < reps; i++) {
                boolean aFirst = i % 2 == 0;
                double[] t1 = timeOnceCpu(aFirst ? ca : cb), t2 = timeOnceCpu(aFirst ? cb : ca);
                ta[i] = aFirst ? t1[0] : t2[0];
                tb[i] = aFirst ? t2[0] : t1[0];
                ua[i] = aFirst ? t1[1] : t2[1];
                ub[i] = aFirst ? t2[1] : t1[1];
            }
            FmaPeak.Peak after = FmaPeak.measure(threads, 100);
            double pb = before.gflops(), pa = after.gflops(), peak = (pb + pa) / 2;
            double core = Math.max(before.perCoreCpuGflops(), after.perCoreCpuGflops());
            double ma = median(ta), mb = median(tb);
            double ea = ca.flops() / ma / 1e6 / peak, eb = cb.flops() / mb / 1e6 / peak;
            double cpuA = ca.flops() / median(ua) / 1e9 / core, cpuB = cb.flops() / median(ub) / 1e9 / core;
            effA.put(effKey(c), ea);
            effB.put(effKey(c), eb);
            out.printf("%-9s %9.1f %9.1f %7.3f %6.1f%% %6.1f%% %7.1f%% %7.1f%% %8.1f %8.1f/%-8.1f%n", c, ma, mb,
                    mb / ma, 100 * ea, 100 * eb, 100 * cpuA, 100 * cpuB, ca.flops() / 1e9, pb, pa);
        }
        out.println(effLine(effA).replace("bench:", "bench: A"));
        out.println(effLine(effB).replace("bench:", "bench: B"));
    }

    private static double median(double[] v) {
        double[] s = v.clone();
        Arrays.sort(s);
        return s[s.length / 2];
    }

    /** {wall ms, process CPU seconds} of one call. */
    private static double[] timeOnceCpu(Call c) {
        long s = System.nanoTime(), cpu = processCpuNanos();
        c.run().get();
        return new double[]{(System.nanoTime() - s) / 1e6, (processCpuNanos() - cpu) / 1e9};
    }

    /** One case on one model: its dense FLOP count and the call. */
    record Call(double flops, Supplier<float[][]> run) {
    }

    /** The case {@code c} on model {@code m} (random inputs from {@code rnd}). */
    static Call call(String c, TfModel m, ModelConfig cfg, SplittableRandom rnd) {
        switch (c) {
            case "unet32", "unet32b2", "unet64", "unet64b2" -> {
                int side = c.startsWith("unet32") ? 32 : 64, b = c.endsWith("b2") ? 2 : 1;
                List<float[]> x = new ArrayList<>(), ctx = new ArrayList<>();
                float[] t = new float[b];
                for (int i = 0; i < b; i++) {
                    x.add(gauss(rnd, 4 * side * side));
                    ctx.add(gauss(rnd, 77 * 768));
                    t[i] = 999 - 400 * i;
                }
                return new Call(FlopCounter.unet(cfg.unet(), b, side, side, 77), () -> m.unet(x, t, ctx, side, side));
            }
            case "te", "te2" -> {
                // te: one prompt; te2: prompt and negative in one call (how a guided request is encoded)
                int b = c.equals("te2") ? 2 : 1;
                int[][] ids = new int[b][77];
                for (int r = 0; r < b; r++) {
                    Arrays.fill(ids[r], 49407);
                    ids[r][0] = 49406;
                    for (int i = 1; i < (r == 0 ? 10 : 4); i++) {
                        ids[r][i] = 320 + i * 37 + r;
                    }
                }
                return new Call(FlopCounter.textEncoder(cfg.textEncoder(), b, 77), () -> m.encodeTokens(ids, 1));
            }
            case "vae256", "vae512" -> {
                int side = c.equals("vae256") ? 32 : 64;
                List<float[]> z = List.of(gauss(rnd, 4 * side * side));
                return new Call(FlopCounter.vaeDecoder(cfg.vae(), 1, side, side), () -> m.decodeRaw(z, side, side));
            }
            default -> throw new IllegalArgumentException("unknown case " + c);
        }
    }

    /** A case of {@code --sdxl} (full-size SDXL base): unet128[b2], te1 / te2 (the two towers), vae1024. */
    static Call sdxlCall(String c, TfModel m, ModelConfig cfg, SplittableRandom rnd) {
        switch (c.startsWith("unet") ? "unet" : c.startsWith("vae") ? "vae" : c) {
            case "unet" -> {
                String[] sb = c.substring(4).split("b");
                int side = Integer.parseInt(sb[0]), b = sb.length > 1 ? Integer.parseInt(sb[1]) : 1;
                int width = cfg.unet().crossAttentionDim();
                List<float[]> x = new ArrayList<>(), ctx = new ArrayList<>();
                List<dev.sdserve.engine.AddedConditioning> added = new ArrayList<>();
                float[] t = new float[b];
                for (int i = 0; i < b; i++) {
                    x.add(gauss(rnd, 4 * side * side));
                    ctx.add(gauss(rnd, 77 * width));
                    t[i] = 999 - 400 * i;
                    if (cfg.unet().hasAddedConditioning()) {
                        int px = side * cfg.vae().downscale();
                        added.add(new dev.sdserve.engine.AddedConditioning(gauss(rnd, cfg.unet().pooledDim()),
                                dev.sdserve.engine.SizeConditioning.of(px, px)));
                    }
                }
                double flops = FlopCounter.unet(cfg.unet(), b, side, side, 77);
                return new Call(flops, added.isEmpty() ? () -> m.unet(x, t, ctx, side, side)
                        : () -> m.unet(x, t, ctx, added, side, side, java.util.Map.of(), null));
            }
            case "te1", "te2" -> {
                int tower = c.equals("te1") ? 0 : 1;
                int[][] ids = ids(cfg.textEncoders().get(tower).padToken());
                double flops = FlopCounter.textEncoder(cfg.textEncoders().get(tower), 1, 77);
                // SDXL's use: the penultimate layer without the final norm; the second tower also pooled
                var req = new dev.sdserve.engine.tf.ClipTextNet.Request(2, false, tower == 1);
                return new Call(flops, () -> m.encodeTower(tower, ids, req, java.util.Map.of(), null).hidden());
            }
            case "te" -> {
                int[][] ids = ids(49407);
                double flops = FlopCounter.textEncoder(cfg.textEncoder(), 1, 77);
                return new Call(flops, () -> m.encodeTokens(ids, 1));
            }
            case "vae" -> {
                int side = Integer.parseInt(c.substring(3)) / cfg.vae().downscale();
                List<float[]> z = List.of(gauss(rnd, 4 * side * side));
                double flops = FlopCounter.vaeDecoder(cfg.vae(), 1, side, side);
                return new Call(flops, () -> m.decodeRaw(z, side, side));
            }
            default -> throw new IllegalArgumentException("unknown case " + c);
        }
    }

    /** The summary line's key for a case ({@code unet32b1_eff}, {@code te2_eff}, {@code vae_eff} for vae512...). */
    static String effKey(String c) {
        return switch (c) {
            case "unet32", "unet64" -> c + "b1_eff";
            case "vae512" -> "vae_eff";
            default -> c + "_eff";
        };
    }

    /** The one-line summary: {@code bench: unet32b2_eff=0.631 ...} (fractions of the measured FMA peak). */
    static String effLine(java.util.Map<String, Double> effs) {
        StringBuilder b = new StringBuilder("bench:");
        for (String k : List.of("unet32b2_eff", "unet32b1_eff", "unet64b2_eff", "unet64b1_eff", "te2_eff", "te_eff",
                "vae_eff", "vae256_eff")) {
            if (effs.containsKey(k)) {
                b.append(' ').append(k).append('=').append(String.format("%.3f", effs.get(k)));
            }
        }
        return b.toString();
    }

    static long processCpuNanos() {
        java.lang.management.OperatingSystemMXBean os = java.lang.management.ManagementFactory
                .getOperatingSystemMXBean();
        if (os instanceof com.sun.management.OperatingSystemMXBean sun) {
            return sun.getProcessCpuTime();
        }
        return -1;
    }

    /** MemAvailable of /proc/meminfo in kB, 0 when unknown. */
    static long memAvailableKb() {
        try {
            for (String l : Files.readAllLines(Path.of("/proc/meminfo"))) {
                if (l.startsWith("MemAvailable:")) {
                    return Long.parseLong(l.replaceAll("[^0-9]", ""));
                }
            }
        } catch (IOException | RuntimeException e) {
            return 0;
        }
        return 0;
    }

    /** One prompt of 9 tokens between start and end of text, padded with {@code pad}. */
    private static int[][] ids(int pad) {
        int[][] ids = new int[1][77];
        Arrays.fill(ids[0], pad);
        ids[0][0] = 49406;
        for (int i = 1; i < 10; i++) {
            ids[0][i] = 320 + i * 37;
        }
        ids[0][10] = 49407;
        return ids;
    }

    static float[] gauss(SplittableRandom r, int n) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            // Box-Muller
            double u1 = 1 - r.nextDouble(), u2 = r.nextDouble();
            v[i] = (float) (Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2));
        }
        return v;
    }

    /**
     * Drops the file's pages from the page cache ({@code dd iflag=nocache count=0}, i.e. posix_fadvise DONTNEED on
     * this file only). False when dd is missing or fails.
     */
    static boolean evict(Path file) {
        try {
            Process p = new ProcessBuilder("dd", "if=" + file, "iflag=nocache", "count=0", "status=none")
                    .redirectErrorStream(true).start();
            p.getInputStream().readAllBytes();
            return p.waitFor() == 0;
        } catch (IOException e) {
            return false;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return false;
        }
    }

    /** Seconds to read the whole file sequentially (from the page cache if it is there, as the load does). */
    static double readFile(Path file) throws IOException {
        byte[] buf = new byte[8 << 20];
        long t0 = System.nanoTime();
        try (InputStream in = Files.newInputStream(file)) {
            while (in.read(buf) >= 0) {
                // discard
            }
        }
        return (System.nanoTime() - t0) / 1e9;
    }
}
