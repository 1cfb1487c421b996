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
                         [--ab-weights A,B] [--savings [--out DIR]]
                         [--tome-model FILE [--tome-sizes 256,512] [--tome-steps N] [--out DIR]]
                         [--profile] [--synthetic [--compare]] [--lora [--rank R]] [--first-step] [--golden DIR]
                         [--sdxl [--cases unet128,unet128b2,te1,te2,vae1024]]
              --dir D         where the random SD 1.5 fp16 checkpoint (~2 GB) is written, reused if present
                              (default: <java.io.tmpdir>/sd-serve-bench)
              --before        the engine with TF's native Conv2D, textbook GroupNorm and unchunked attention
                              (the state before the kernels; for before/after tables)
              --ab-weights A,B  load the checkpoint twice, weight storage A and B (all: fp16 tensors stay fp16,
                              cast per call; vae-te: UNet float32; none: all float32) and time each case on both,
                              alternated call by call; prints both, B/A and the bytes each holds
              --savings       the cheaper-step options (guidance truncation, ...) against the full computation
                              on the demo model over 8 fixed prompts/seeds: time, speed-up, MAE and PSNR;
                              --out DIR also writes every image
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
        String loraModel = null, abWeights = null;
        boolean savings = false;
        Path savingsOut = null;
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
                    case "--savings" -> savings = true;
                    case "--out" -> savingsOut = Path.of(args.get(++i));
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
        if (tomeModel != null) {
            int rc = dev.sdserve.tools.bench.TokenMergingBench.run(tomeModel, threads, reps, tomeSizes, tomeSteps,
                    savingsOut, tomeLatents, out);
            if (rc != 0 || !savings) {
                return rc;
            }
        }
        if (savings) {
            return dev.sdserve.tools.bench.SavingsBench.run(threads, savingsOut, out);
        }
        return Bench.run(new Bench.Options(dir, threads, interOp, chunk, reps, compare, synthetic, before, lora,
                firstStep, profile, rank, loraModel, cases, sdxl, abWeights), out);
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
