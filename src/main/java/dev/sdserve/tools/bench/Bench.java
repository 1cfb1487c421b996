package dev.sdserve.tools.bench;

import dev.sdserve.engine.tf.SessionConfigs;
import dev.sdserve.model.ModelConfig;
import org.tensorflow.Operand;
import org.tensorflow.types.TFloat32;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.function.Function;

/**
 * The {@code bench} run: times the SD 1.5-architecture networks on the CPU with the configured threads and relates
 * them to the machine's FMA peak, measured back to back with every case (before and after; the case is reported
 * against their mean, and both are printed so a noisy neighbour shows). By default the engine on a full-size
 * random checkpoint ({@link EngineBench}); {@code synthetic}: the full-size synthetic stacks of {@link SyntheticSd}
 * (real layer sequence and shapes, random shape-pooled weights); {@code lora} / {@code firstStep}: {@link LoraBench}.
 */
public final class Bench {
    private Bench() {
    }

    /** What to run (the command line's options). */
    public record Options(Path dir, int threads, int interOp, int chunk, int reps, boolean compare, boolean synthetic,
                          boolean before, boolean lora, boolean firstStep, boolean profile, int rank, String loraModel,
                          List<String> cases, boolean sdxl, String abWeights, String abProps) {
        public Options(Path dir, int threads, int interOp, int chunk, int reps, boolean compare, boolean synthetic,
                       boolean before, boolean lora, boolean firstStep, boolean profile, int rank, String loraModel,
                       List<String> cases) {
            this(dir, threads, interOp, chunk, reps, compare, synthetic, before, lora, firstStep, profile, rank,
                    loraModel, cases, false, null, null);
        }
    }

    /** The cases, in table order. */
    public static final List<String> CASES = List.of("unet32", "unet32b2", "unet64", "unet64b2", "te", "te2", "vae256", "vae512");

    /** The cases of {@code --sdxl} (full-size SDXL base: 1024² images), in table order. */
    public static final List<String> SDXL_CASES = List.of("unet128", "unet128b2", "te1", "te2", "vae1024");

    record Case(String name, double flops, Function<SyntheticSd, Operand<TFloat32>> build) {
    }

    /** Runs the benchmark; returns the exit code. */
    public static int run(Options o, PrintStream out) throws Exception {
        Path dir = o.dir();
        int threads = o.threads(), interOp = o.interOp(), chunk = o.chunk(), reps = o.reps(), rank = o.rank();
        boolean compare = o.compare(), synthetic = o.synthetic(), before = o.before(), lora = o.lora(),
                firstStep = o.firstStep(), profile = o.profile();
        String loraModel = o.loraModel();
        List<String> cases = o.cases();
        ModelConfig m = Sd15.config();
        List<Case> all = List.of(
                new Case("unet32", FlopCounter.unet(m.unet(), 1, 32, 32, 77), s -> s.unet(m.unet(), 1, 32, 32, 77)),
                new Case("unet32b2", FlopCounter.unet(m.unet(), 2, 32, 32, 77), s -> s.unet(m.unet(), 2, 32, 32, 77)),
                new Case("unet64", FlopCounter.unet(m.unet(), 1, 64, 64, 77), s -> s.unet(m.unet(), 1, 64, 64, 77)),
                new Case("unet64b2", FlopCounter.unet(m.unet(), 2, 64, 64, 77), s -> s.unet(m.unet(), 2, 64, 64, 77)),
                new Case("te", FlopCounter.textEncoder(m.textEncoder(), 1, 77),
                        s -> s.textEncoder(m.textEncoder(), 1, 77)),
                new Case("te2", FlopCounter.textEncoder(m.textEncoder(), 2, 77),
                        s -> s.textEncoder(m.textEncoder(), 2, 77)),
                new Case("vae256", FlopCounter.vaeDecoder(m.vae(), 1, 32, 32), s -> s.vaeDecoder(m.vae(), 1, 32, 32)),
                new Case("vae512", FlopCounter.vaeDecoder(m.vae(), 1, 64, 64), s -> s.vaeDecoder(m.vae(), 1, 64, 64)));
        if (firstStep) {
            return LoraBench.firstStep(dir, threads, loraModel, out);
        }
        if (lora) {
            return LoraBench.run(dir, threads, reps, rank, loraModel, out);
        }
        if (!synthetic && o.abProps() != null) {
            String[] ab = o.abProps().split(";", -1);
            if (ab.length != 2) {
                throw new IllegalArgumentException("--ab-props takes 'A;B' (each k=v,k=v or -), got '" + o.abProps()
                        + "'");
            }
            return EngineBench.runAbProps(dir, threads, interOp, chunk, reps, ab[0], ab[1], cases, out);
        }
        if (!synthetic && abWeights(o) != null) {
            String[] ab = abWeights(o);
            return EngineBench.runAb(dir, threads, interOp, chunk, reps, ab[0], ab[1], cases, out);
        }
        if (!synthetic) {
            return EngineBench.run(dir, threads, interOp, chunk, reps, before, profile, o.sdxl(), cases, out);
        }
        out.printf("bench: SD 1.5 architecture, fp32, %d intra-op / %d inter-op threads, attention query chunk %d%n",
                threads, interOp, chunk);
        out.println("bench: networks = synthetic full-size stacks of the dev.sdserve.engine.tf kernels (random "
                + "shape-pooled weights); the engine-loaded checkpoint replaces them when TfEngine is merged");
        out.printf("%-10s %-7s %10s %9s %9s %7s %17s%n", "case", "kernels", "ms", "GFLOP", "GFLOP/s", "%peak",
                "peak before/after");
        double unet64Ms = Double.NaN, unet64Gflops = Double.NaN, unet64Peak = Double.NaN;
        for (Case c : all) {
            if (!cases.contains(c.name)) {
                continue;
            }
            List<SyntheticSd.Kernels> ks = compare && c.name.startsWith("unet")
                    ? List.of(SyntheticSd.Kernels.NATIVE, SyntheticSd.Kernels.FAST) : List.of(SyntheticSd.Kernels.FAST);
            for (SyntheticSd.Kernels k : ks) {
                double[] r = timeCase(c, k, threads, interOp, chunk, reps);
                double ms = r[0], peak = (r[1] + r[2]) / 2, gf = c.flops / ms / 1e6;
                out.printf("%-10s %-7s %10.1f %9.1f %9.1f %6.1f%% %8.1f/%-8.1f%n", c.name,
                        k.name().toLowerCase(), ms, c.flops / 1e9, gf, 100 * gf / peak, r[1], r[2]);
                if (c.name.equals("unet64") && k == SyntheticSd.Kernels.FAST) {
                    unet64Ms = ms;
                    unet64Gflops = gf;
                    unet64Peak = peak;
                }
            }
        }
        out.printf("bench: peak RSS (VmHWM) %s; checkpoint load time: n/a (synthetic networks)%n", vmHwm());
        out.printf("bench: unet64_ms=%.1f unet64_gflops=%.1f peak_gflops=%.1f efficiency=%.3f%n", unet64Ms,
                unet64Gflops, unet64Peak, unet64Gflops / unet64Peak);
        return 0;
    }

    private static String[] abWeights(Options o) {
        if (o.abWeights() == null) {
            return null;
        }
        String[] ab = o.abWeights().split(",");
        if (ab.length != 2) {
            throw new IllegalArgumentException("--ab-weights takes two policies A,B (all, vae-te, none), got '"
                    + o.abWeights() + "'");
        }
        return ab;
    }

    /** Returns {median ms, peak before, peak after}. */
    static double[] timeCase(Case c, SyntheticSd.Kernels k, int threads, int interOp, int chunk, int reps) {
        try (FedGraph g = new FedGraph(42)) {
            Operand<TFloat32> y = c.build.apply(new SyntheticSd(g, k, chunk));
            g.summary(y);
            g.open(SessionConfigs.cpu(threads, interOp));
            g.run(y); // warm-up (graph optimisation, allocations)
            double before = FmaPeak.measure(threads, 100).gflops();
            double ms = g.time(y, 0, reps)[0];
            double after = FmaPeak.measure(threads, 100).gflops();
            return new double[]{ms, before, after};
        }
    }

    static long vmHwmKb() {
        return statusKb("VmHWM:");
    }

    static String vmRss() {
        return String.format("%.2f GB", statusKb("VmRSS:") / 1e6 * 1.024);
    }

    /** Anonymous / file-backed / shared-memory parts of the RSS (/proc/self/status), for where memory goes. */
    static String rssParts() {
        return String.format("anon %.2f GB, file %.2f GB, heap used %.2f GB of %.2f GB committed",
                statusKb("RssAnon:") / 1e6 * 1.024, statusKb("RssFile:") / 1e6 * 1.024,
                (Runtime.getRuntime().totalMemory() - Runtime.getRuntime().freeMemory()) / 1e9,
                Runtime.getRuntime().totalMemory() / 1e9);
    }

    static long statusKb(String key) {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
                if (line.startsWith(key)) {
                    return Long.parseLong(line.substring(key.length()).trim().split("\\s+")[0]);
                }
            }
        } catch (IOException | NumberFormatException e) {
            return -1;
        }
        return -1;
    }

    static String vmHwm() {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
                if (line.startsWith("VmHWM:")) {
                    return line.substring(6).trim();
                }
            }
        } catch (IOException e) {
            return "unavailable (" + e.getMessage() + ")";
        }
        return "unavailable";
    }
}
