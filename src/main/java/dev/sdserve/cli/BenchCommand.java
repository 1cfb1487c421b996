package dev.sdserve.cli;

import dev.sdserve.tools.bench.Bench;

import java.io.PrintStream;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/** {@code bench}: parses the options and runs {@link Bench} (the tools room's engine benchmark). */
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
                         [--cases unet32,unet32b2,unet64,unet64b2,te,te2,vae256,vae512] [--before]
                         [--ab-weights A,B] [--ab-props 'A;B'] [--savings [--model FILE [--size N] [--steps N]] [--out DIR]]
                         [--tome-model FILE [--tome-sizes 256,512] [--tome-steps N] [--tome-latents 16,32,64] [--out DIR]]
                         [--profile] [--synthetic [--compare]] [--lora [--rank R]] [--first-step] [--golden DIR]
                         [--sdxl [--cases unet128,unet128b2,te1,te2,vae1024]]
              --dir D         where the random SD 1.5 fp16 checkpoint (~2 GB) is written, reused if present
                              (default: <java.io.tmpdir>/sd-serve-bench)
              --before        the engine with TF's native Conv2D, textbook GroupNorm and unchunked attention
                              (the state before the kernels; for before/after tables)
              --ab-weights A,B  load the checkpoint twice, weight storage A and B (all: fp16 tensors stay fp16,
                              cast per call; vae-te: UNet float32; none: all float32) and time each case on both,
                              alternated call by call; prints both, B/A and the bytes each holds
              --ab-props 'A;B'  load the checkpoint once, build each case's graphs twice, with the system properties
                              of A and of B (k=v,k=v or -; e.g. sdserve.interOpThreads=2, sdserve.winograd2MinPixels=
                              1024) and time them alternated call by call: wall and CPU-time % of peak, B/A
              --savings       the cheaper-step options (guidance truncation, DeepCache, ...) against the full computation
                              on the demo model over 8 fixed prompts/seeds: time, speed-up, MAE and PSNR;
                              --out DIR also writes every image; --model FILE: that checkpoint instead, its first
                              3 prompts at --size N (256) and --steps N (10); then the text-embedding cache's table;
                              --savings-prompts N: only the first N prompts; --savings-option NAME: only that
                              option's rows (e.g. DeepCache); --savings-model/-size/-steps are --model/--size/--steps
              --deepcache F[,F]  DeepCache's plain, full and shallow step times on each checkpoint (latents 32², 64²)
              --tome-model F  token merging on a full-size SD 1.5 file F: UNet calls at 16/32/64 latents with
                              ratios 0, 0.3, 0.5 (time, speed-up, output difference), then whole requests at
                              --tome-sizes (default 256; none: 0) with --tome-steps (default 8) steps: time, MAE, PSNR;
                              --tome-latents 16,32,64: which UNet latent sides to time
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
              --sdxl          a full-size SDXL base checkpoint with random weights (fp16, 6.9 GB, written into --dir
                              once; about 10 GB of memory once loaded): UNet at 128x128 latents (1024² images)
                              batch 1 and 2, both text encoders, VAE decode 1024²
            """;

    @Override
    public int run(List<String> args, PrintStream out) throws Exception {
        int threads = Runtime.getRuntime().availableProcessors(), interOp = 1, chunk = 1024, reps = 3;
        boolean compare = false, synthetic = false, before = false, lora = false, firstStep = false, profile = false;
        boolean sdxl = false, casesGiven = false;
        int rank = 16;
        String loraModel = null, abWeights = null, abProps = null;
        boolean savings = false;
        Path savingsOut = null;
        String deepCache = null;
        Path savingsModel = null;
        int savingsSize = 256, savingsSteps = 10, savingsPrompts = 0;
        String savingsOption = null;
        Path tomeModel = null;
        List<Integer> tomeSizes = new ArrayList<>(List.of(256));
        int tomeSteps = 8;
        List<Integer> tomeLatents = List.of(16, 32, 64);
        Path dir = Path.of(System.getProperty("java.io.tmpdir"), "sd-serve-bench");
        List<String> cases = new ArrayList<>(Bench.CASES);
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
                    case "--ab-weights" -> abWeights = args.get(++i);
                    case "--ab-props" -> {
                        abProps = args.get(++i);
                        if (abProps.split(";", -1).length != 2) {
                            throw new IllegalArgumentException("--ab-props takes 'A;B' (each k=v,k=v or -), got '"
                                    + abProps + "'");
                        }
                    }
                    case "--savings" -> savings = true;
                    case "--deepcache" -> deepCache = args.get(++i);
                    case "--savings-model" -> savingsModel = Path.of(args.get(++i));
                    case "--savings-size" -> savingsSize = positive(args.get(++i), "--savings-size");
                    case "--savings-steps" -> savingsSteps = positive(args.get(++i), "--savings-steps");
                    case "--savings-prompts" -> savingsPrompts = positive(args.get(++i), "--savings-prompts");
                    case "--savings-option" -> savingsOption = args.get(++i);
                    case "--out" -> savingsOut = Path.of(args.get(++i));
                    case "--model" -> savingsModel = Path.of(args.get(++i));
                    case "--size" -> savingsSize = positive(args.get(++i), "--size");
                    case "--steps" -> savingsSteps = positive(args.get(++i), "--steps");
                    case "--tome-model" -> tomeModel = Path.of(args.get(++i));
                    case "--tome-steps" -> tomeSteps = positive(args.get(++i), "--tome-steps");
                    case "--tome-latents" -> tomeLatents = java.util.Arrays.stream(args.get(++i).split(","))
                            .map(v -> positive(v, "--tome-latents")).toList();
                    case "--tome-sizes" -> {
                        tomeSizes = new ArrayList<>();
                        for (String v : args.get(++i).split(",")) {
                            if (!v.equals("0")) {
                                tomeSizes.add(positive(v, "--tome-sizes"));
                            }
                        }
                    }
                    case "--dir" -> dir = Path.of(args.get(++i));
                    case "--cases" -> {
                        cases = new ArrayList<>(List.of(args.get(++i).split(",")));
                        casesGiven = true;
                    }
                    case "--sdxl" -> sdxl = true;
                    default -> throw new IllegalArgumentException("unknown option " + args.get(i));
                }
            }
        } catch (IndexOutOfBoundsException | IllegalArgumentException e) {
            System.err.println("bench: " + (e instanceof IndexOutOfBoundsException ? "missing value" : e.getMessage()));
            System.err.print(USAGE);
            return 2;
        }
        if (sdxl && !casesGiven && !cases.isEmpty()) {
            cases = new ArrayList<>(Bench.SDXL_CASES);
        }
        for (String c : cases) {
            if (!(sdxl ? Bench.SDXL_CASES : Bench.CASES).contains(c)) {
                System.err.println("bench: unknown case " + c);
                System.err.print(USAGE);
                return 2;
            }
        }
        if (deepCache != null) {
            return dev.sdserve.tools.bench.DeepCacheBench.run(
                    java.util.Arrays.stream(deepCache.split(",")).map(Path::of).toList(), reps, out);
        }
        if (tomeModel != null) {
            int rc = dev.sdserve.tools.bench.TokenMergingBench.run(tomeModel, threads, reps, tomeSizes, tomeSteps,
                    savingsOut, tomeLatents, out);
            if (rc != 0 || !savings) {
                return rc;
            }
        }
        if (savings) {
            return dev.sdserve.tools.bench.SavingsBench.run(savingsModel, savingsSize, savingsSteps, savingsPrompts,
                    savingsOption, threads, savingsOut, out);
        }
        return Bench.run(new Bench.Options(dir, threads, interOp, chunk, reps, compare, synthetic, before, lora,
                firstStep, profile, rank, loraModel, cases, sdxl, abWeights, abProps), out);
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
