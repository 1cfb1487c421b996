package dev.sdserve.tools.bench;

import dev.sdserve.engine.DenoiseBatch;
import dev.sdserve.engine.DenoiseItem;
import dev.sdserve.engine.LatentShape;
import dev.sdserve.engine.LoraWeight;
import dev.sdserve.engine.tf.LoraLibrary;
import dev.sdserve.engine.tf.TfEngine;
import dev.sdserve.model.CheckpointLayout;
import dev.sdserve.model.DType;
import dev.sdserve.model.ModelConfig;
import dev.sdserve.model.ModelConfigs;
import dev.sdserve.model.RandomCheckpoint;
import dev.sdserve.model.SafeTensorsWriter;
import dev.sdserve.train.LoraExport;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * {@code bench --lora}: the cost of LoRA per UNet call on the full-size random SD 1.5 checkpoint, through
 * {@link TfEngine#denoise} (the scheduler's call): no LoRA, the merged path (an overlay W + scale·up·down of the
 * touched weights, built on the first call and cached) and the unmerged low-rank path (x·downᵀ·upᵀ·scale per sample),
 * at 32×32 latents, batch 1 and 2, side by side in one run; batch 2 also mixed (one sample without LoRA, one with:
 * what the low-rank path is for). The LoRA is a random kohya file for the full-size layout, rank R on every
 * attention projection (to_q/k/v/out of attn1 and attn2), written once into the bench directory. Also prints the
 * load time and the resident weight bytes of the model.
 */
final class LoraBench {
    private LoraBench() {
    }

    static int run(Path dir, int threads, int reps, int rank, String goldenDir, PrintStream out) throws IOException {
        System.setProperty("sdserve.threads", Integer.toString(threads));
        ModelConfig cfg;
        Path file;
        String tag;
        if (goldenDir != null) { // e.g. the tiny golden model
            try (dev.sdserve.model.GoldenSet g = dev.sdserve.model.GoldenSet.open(Path.of(goldenDir))) {
                cfg = g.config();
                file = g.modelFile();
            }
            tag = Path.of(goldenDir).getFileName().toString();
        } else {
            cfg = ModelConfigs.sd15();
            file = dir.resolve("sd15-random-fp16.safetensors");
            RandomCheckpoint.ensure(file, cfg, DType.F16, 1234);
            tag = "sd15";
        }
        out.printf("bench: model %s%n", file);
        int ch = cfg.unet().inChannels(), tokens = cfg.textEncoder().maxPositions(), dim = cfg.unet().crossAttentionDim();
        Path lora = dir.resolve(tag + "-random-lora-attn-r" + rank + ".safetensors");
        if (!Files.exists(lora)) {
            long t0 = System.nanoTime();
            int n = writeRandomLora(lora, cfg, rank, 77);
            out.printf("bench: wrote %s (%d attention modules, rank %d, %.1f MB) in %.1f s%n", lora, n, rank,
                    Files.size(lora) / 1e6, (System.nanoTime() - t0) / 1e9);
        }
        TfEngine e = new TfEngine(name -> file, p -> cfg, null, new LoraLibrary.Source() {
            @Override
            public Path resolve(String name) {
                return lora;
            }

            @Override
            public String hash(Path f) {
                return "bench-r" + rank;
            }
        });
        try (e) {
            long l0 = System.nanoTime();
            e.ensureLoaded("sd15");
            out.printf("bench: model load %.2f s; resident weights %.2f GB (fp32; file %.2f GB); RSS %s%n",
                    (System.nanoTime() - l0) / 1e9, e.residentBytes("sd15") / 1e9, Files.size(file) / 1e9,
                    Bench.vmRss());
            out.printf("bench: LoRA %s, rank %d on the attention projections, weight 0.8; UNet 32x32, %d threads, "
                    + "median of %d after a warm-up%n", lora.getFileName(), rank, threads, reps);
            out.printf("%-9s %-22s %10s %9s %14s%n", "batch", "case", "ms", "x none", "first call ms");
            SplittableRandom rnd = new SplittableRandom(5);
            List<LoraWeight> withLora = List.of(new LoraWeight("bench", 0.8));
            for (int b : new int[]{1, 2}) {
                List<float[]> x = new ArrayList<>();
                List<float[]> ctx = new ArrayList<>();
                for (int i = 0; i < b; i++) {
                    x.add(gauss(rnd, ch * 32 * 32));
                    ctx.add(gauss(rnd, tokens * dim));
                }
                double none = Double.NaN;
                record Variant(String name, TfEngine.LoraPath path, boolean[] lora) {
                }
                List<Variant> vs = new ArrayList<>(List.of(
                        new Variant("none", TfEngine.LoraPath.AUTO, new boolean[b]),
                        new Variant("merged", TfEngine.LoraPath.MERGED, filled(b, true)),
                        new Variant("unmerged (low-rank)", TfEngine.LoraPath.LOW_RANK, filled(b, true))));
                if (b == 2) {
                    vs.add(new Variant("mixed: merged x2 calls", TfEngine.LoraPath.MERGED, new boolean[]{false, true}));
                    vs.add(new Variant("mixed: low-rank", TfEngine.LoraPath.AUTO, new boolean[]{false, true}));
                }
                for (Variant v : vs) {
                    List<DenoiseItem> items = new ArrayList<>();
                    for (int i = 0; i < b; i++) {
                        items.add(new DenoiseItem(x.get(i), 999 - 400 * i, ctx.get(i), null, 1.0,
                                v.lora[i] ? withLora : List.of()));
                    }
                    DenoiseBatch batch = new DenoiseBatch("sd15", new LatentShape(ch, 32, 32), items);
                    e.loraPath(v.path);
                    long f0 = System.nanoTime();
                    float[][] first = e.denoise(batch); // graph build / merge on the first call
                    double firstMs = (System.nanoTime() - f0) / 1e6;
                    for (float f : first[b - 1]) {
                        if (!Float.isFinite(f)) {
                            throw new IllegalStateException(v.name + " produced a non-finite value");
                        }
                    }
                    double[] ts = new double[reps];
                    for (int r = 0; r < reps; r++) {
                        long s = System.nanoTime();
                        e.denoise(batch);
                        ts[r] = (System.nanoTime() - s) / 1e6;
                    }
                    Arrays.sort(ts);
                    double ms = ts[reps / 2];
                    if (v.name.equals("none")) {
                        none = ms;
                    }
                    out.printf("%-9d %-22s %10.1f %9.2f %14.1f%n", b, v.name, ms, ms / none, firstMs);
                }
            }
            long[] calls = e.loraCalls();
            out.printf("bench: LoRA graph runs: %d low-rank, %d merged; RSS %s%n", calls[0], calls[1], Bench.vmRss());
        }
        return 0;
    }

    /**
     * {@code bench --first-step}: time from submission to the first denoising step through the scheduler, for a
     * request whose model is not resident (the load runs on the loader thread, then graphs are built) and then for
     * the same request with the model resident; 32×32 latents, 2 steps, no guidance.
     */
    static int firstStep(Path dir, int threads, String goldenDir, PrintStream out) throws Exception {
        System.setProperty("sdserve.threads", Integer.toString(threads));
        ModelConfig cfg;
        Path file;
        if (goldenDir != null) {
            try (dev.sdserve.model.GoldenSet g = dev.sdserve.model.GoldenSet.open(Path.of(goldenDir))) {
                cfg = g.config();
                file = g.modelFile();
            }
        } else {
            cfg = ModelConfigs.sd15();
            file = dir.resolve("sd15-random-fp16.safetensors");
            RandomCheckpoint.ensure(file, cfg, DType.F16, 1234);
        }
        int px = 32 * cfg.vae().downscale();
        TfEngine e = new TfEngine(name -> file, p -> cfg, null, null);
        dev.sdserve.scheduler.ServiceConfig sc = new dev.sdserve.scheduler.ServiceConfig();
        sc.admission.defaultModel = "m";
        sc.renderImages = false;
        try (e; dev.sdserve.scheduler.SchedulerService svc = new dev.sdserve.scheduler.SchedulerService(e, sc)) {
            svc.start();
            out.printf("bench: time to first step, %s, %dx%d px (32x32 latents), 2 steps, guidance 1, %d threads%n",
                    file.getFileName(), px, px, threads);
            for (String label : new String[]{"not resident (load + graphs + step)", "resident (step)", "resident again"}) {
                dev.sdserve.job.GenerationRequest r = dev.sdserve.job.GenerationRequest.ofPrompt("a lighthouse")
                        .withModel("m").withSteps(2).withSize(px, px).withGuidance(1.0).withSeed(1L)
                        .withPreview(dev.sdserve.job.PreviewOptions.OFF)
                        .withDeadline(dev.sdserve.job.SloClass.BATCH, null, true);
                long t0 = System.nanoTime();
                dev.sdserve.job.Job j = svc.submit(r, true);
                while (j.lastStep() == null && j.terminalEvent() == null) {
                    Thread.sleep(1);
                }
                double firstMs = (System.nanoTime() - t0) / 1e6;
                while (j.terminalEvent() == null) {
                    Thread.sleep(1);
                }
                if (!(j.terminalEvent() instanceof dev.sdserve.job.JobEvent.Completed)) {
                    throw new IllegalStateException("request ended with " + j.terminalEvent());
                }
                var st = svc.loader().status("m");
                out.printf("  %-38s first step after %9.1f ms%s%n", label, firstMs,
                        label.startsWith("not") ? String.format(" (of which the load %.1f ms)", st.lastLoadMillis()) : "");
            }
            out.printf("bench: resident weights %.3f GB; RSS %s%n", e.residentBytes("m") / 1e9, Bench.vmRss());
        }
        return 0;
    }

    private static boolean[] filled(int n, boolean v) {
        boolean[] a = new boolean[n];
        Arrays.fill(a, v);
        return a;
    }

    /**
     * A random kohya LoRA for the layout of {@code cfg}: rank {@code rank} on every attention projection of the
     * UNet (to_q, to_k, to_v, to_out.0 of attn1 and attn2), fp16, alpha = rank. Returns the number of modules.
     */
    static int writeRandomLora(Path target, ModelConfig cfg, int rank, long seed) throws IOException {
        Map<String, String> kohya = LoraExport.kohyaNames(cfg);
        SplittableRandom r = new SplittableRandom(seed);
        SafeTensorsWriter w = new SafeTensorsWriter();
        w.metadata("ss_network_module", "networks.lora");
        w.metadata("ss_network_dim", Integer.toString(rank));
        w.metadata("ss_network_alpha", Integer.toString(rank));
        int n = 0;
        for (CheckpointLayout.Entry en : CheckpointLayout.unet(cfg.unet(), DType.F32)) {
            String k = en.name();
            if (!k.matches(".*\\.attn[12]\\.(to_q|to_k|to_v|to_out\\.0)\\.weight") || en.shape().length != 2) {
                continue;
            }
            String name = kohya.get(k);
            if (name == null) {
                throw new IllegalStateException("no kohya name for " + k);
            }
            int out = (int) en.shape()[0], in = (int) en.shape()[1];
            float[] down = new float[rank * in];
            float[] up = new float[out * rank];
            double sd = 1 / Math.sqrt(in);
            for (int i = 0; i < down.length; i++) {
                down[i] = (float) ((r.nextDouble() * 2 - 1) * sd);
            }
            for (int i = 0; i < up.length; i++) {
                up[i] = (float) ((r.nextDouble() * 2 - 1) * 0.02);
            }
            w.add(name + ".lora_down.weight", DType.F16, new long[]{rank, in}, down);
            w.add(name + ".lora_up.weight", DType.F16, new long[]{out, rank}, up);
            w.add(name + ".alpha", DType.F16, new long[]{}, new float[]{rank});
            n++;
        }
        Files.createDirectories(target.toAbsolutePath().getParent());
        w.write(target);
        return n;
    }

    private static float[] gauss(SplittableRandom r, int n) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            double u1 = 1 - r.nextDouble(), u2 = r.nextDouble();
            v[i] = (float) (Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2));
        }
        return v;
    }
}
