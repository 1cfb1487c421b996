package dev.sdserve.bench;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Function;

import org.tensorflow.Operand;
import org.tensorflow.types.TFloat32;

import dev.sdserve.cli.CliCommand;
import dev.sdserve.engine.tf.SessionConfigs;
import dev.sdserve.model.ModelConfig;

/**
 * {@code bench}: times the SD 1.5-architecture networks on the CPU with the configured threads and relates them to
 * the machine's FMA peak, measured back to back with every case (before and after; the case is reported against
 * their mean, and both are printed so a noisy neighbour shows). Until the engine ({@code TfEngine}) and the random
 * checkpoint writer are merged, the networks are the full-size synthetic stacks of {@link SyntheticSd} (real
 * layer sequence and shapes, random shape-pooled weights); the output says so.
 */
public final class BenchCommand implements CliCommand {
    @Override
    public String name() {
        return "bench";
    }

    @Override
    public String summary() {
        return "time UNet/VAE/text encoder at SD 1.5 size against the measured FMA peak";
    }

    private static final String USAGE = """
            usage: bench [--dir D] [--threads N] [--inter-op N] [--attn-chunk N] [--reps N] [--quick] [--load-only]
                         [--cases unet32,unet32b2,unet64,unet64b2,te,vae256,vae512] [--before]
                         [--profile] [--synthetic [--compare]] [--lora [--rank R]] [--first-step] [--golden DIR]
              --dir D         where the random SD 1.5 fp16 checkpoint (~2 GB) is written, reused if present
                              (default: <java.io.tmpdir>/sd-serve-bench)
              --before        the engine with TF's native Conv2D, textbook GroupNorm and unchunked attention
                              (the state before the kernels; for before/after tables)
              --synthetic     time the synthetic full-size stacks of the kernels instead of the engine
              --threads N     intra-op threads and FMA-peak threads (default: available processors)
              --inter-op N    inter-op threads (default 1)
              --attn-chunk N  query chunk of the self-attention (default 1024; 0 = whole)
              --reps N        timed runs per case after one warm-up (default 3); the median is reported
              --quick         only unet32 and unet64 (batch 1)
              --load-only     only the read and load times and the peak RSS after load
              --compare       (synthetic) also time the UNet cases with TF's native Conv2D/plain ops
              --profile       after each case, one traced call: milliseconds per TF op type
              --first-step    time to the first step of a request whose model is not resident, then resident
              --lora          UNet 32x32, batch 1 and 2: no LoRA vs merged vs unmerged (low-rank) LoRA path, with
                              a random kohya LoRA of rank R (default 16) on the attention projections, written
                              into --dir once; --golden DIR: the golden set's model instead (e.g. sd15-tiny)
            """;

    record Case(String name, double flops, Function<SyntheticSd, Operand<TFloat32>> build) {
    }

    @Override
    public int run(List<String> args, PrintStream out) throws Exception {
        int threads = Runtime.getRuntime().availableProcessors(), interOp = 1, chunk = 1024, reps = 3;
        boolean compare = false, synthetic = false, before = false, lora = false, firstStep = false, profile = false;
        int rank = 16;
        String loraModel = null;
        Path dir = Path.of(System.getProperty("java.io.tmpdir"), "sd-serve-bench");
        List<String> cases = new ArrayList<>(List.of("unet32", "unet32b2", "unet64", "unet64b2", "te", "vae256",
                "vae512"));
        try {
            for (int i = 0; i < args.size(); i++) {
                switch (args.get(i)) {
                    case "--help", "-h" -> {
                        out.print(USAGE);
                        return 0;
                    }
                    case "--threads" -> threads = positive(args.get(++i), "--threads");
                    case "--inter-op" -> interOp = positive(args.get(++i), "--inter-op");
                    case "--attn-chunk" -> chunk = Integer.parseInt(args.get(++i));
                    case "--reps" -> reps = positive(args.get(++i), "--reps");
                    case "--quick" -> cases = new ArrayList<>(List.of("unet32", "unet64"));
                    case "--load-only" -> cases = new ArrayList<>();
                    case "--compare" -> compare = true;
                    case "--synthetic" -> synthetic = true;
                    case "--before" -> before = true;
                    case "--lora" -> lora = true;
                    case "--first-step" -> firstStep = true;
                    case "--profile" -> profile = true;
                    case "--rank" -> rank = positive(args.get(++i), "--rank");
                    case "--golden" -> loraModel = args.get(++i);
                    case "--dir" -> dir = Path.of(args.get(++i));
                    case "--cases" -> cases = new ArrayList<>(List.of(args.get(++i).split(",")));
                    default -> throw new IllegalArgumentException("unknown option " + args.get(i));
                }
            }
        } catch (IndexOutOfBoundsException | IllegalArgumentException e) {
            System.err.println("bench: " + (e instanceof IndexOutOfBoundsException ? "missing value" : e.getMessage()));
            System.err.print(USAGE);
            return 2;
        }
        ModelConfig m = Sd15.config();
        List<Case> all = List.of(
                new Case("unet32", FlopCounter.unet(m.unet(), 1, 32, 32, 77), s -> s.unet(m.unet(), 1, 32, 32, 77)),
                new Case("unet32b2", FlopCounter.unet(m.unet(), 2, 32, 32, 77), s -> s.unet(m.unet(), 2, 32, 32, 77)),
                new Case("unet64", FlopCounter.unet(m.unet(), 1, 64, 64, 77), s -> s.unet(m.unet(), 1, 64, 64, 77)),
                new Case("unet64b2", FlopCounter.unet(m.unet(), 2, 64, 64, 77), s -> s.unet(m.unet(), 2, 64, 64, 77)),
                new Case("te", FlopCounter.textEncoder(m.textEncoder(), 1, 77),
                        s -> s.textEncoder(m.textEncoder(), 1, 77)),
                new Case("vae256", FlopCounter.vaeDecoder(m.vae(), 1, 32, 32), s -> s.vaeDecoder(m.vae(), 1, 32, 32)),
                new Case("vae512", FlopCounter.vaeDecoder(m.vae(), 1, 64, 64), s -> s.vaeDecoder(m.vae(), 1, 64, 64)));
        for (String c : cases) {
            if (all.stream().noneMatch(a -> a.name.equals(c))) {
                System.err.println("bench: unknown case " + c);
                System.err.print(USAGE);
                return 2;
            }
        }
        if (firstStep) {
            return LoraBench.firstStep(dir, threads, loraModel, out);
        }
        if (lora) {
            return LoraBench.run(dir, threads, reps, rank, loraModel, out);
        }
        if (!synthetic) {
            return EngineBench.run(dir, threads, interOp, chunk, reps, before, profile, cases, out);
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

    private static long statusKb(String key) {
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

    private static int positive(String v, String opt) {
        int n = Integer.parseInt(v);
        if (n < 1) {
            throw new IllegalArgumentException(opt + " must be >= 1, got " + v);
        }
        return n;
    }

    public static void main(String[] args) throws Exception {
        System.exit(new BenchCommand().run(List.of(args), System.out));
    }
}
