package dev.sdserve.cli;

import dev.sdserve.app.Assembly;
import dev.sdserve.engine.LoraWeight;
import dev.sdserve.job.GenerationRequest;
import dev.sdserve.job.Job;
import dev.sdserve.job.JobEvent;
import dev.sdserve.job.Mailbox;
import dev.sdserve.job.PreviewOptions;
import dev.sdserve.job.ServeException;

import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.TimeUnit;

/** {@code generate}: one image from a prompt, in-process (or on a server with --server), with a progress bar. */
public final class GenerateCommand implements CliCommand {
    static final Set<String> VALUED = Set.of("prompt", "negative", "model", "steps", "sampler", "guidance", "cfg",
            "seed", "width", "height", "out", "lora", "images", "clip-skip", "server", "engine", "threads", "models-dir",
            "preview", "preview-full", "preview-projection", "deep-cache", "token-merging");
    static final Set<String> FLAGS = Set.of("help", "quiet");

    @Override
    public String name() {
        return "generate";
    }

    @Override
    public String summary() {
        return "one image from a prompt (in-process, or on a server with --server); writes a PNG";
    }

    static final String HELP = """
            Usage: sd-serve generate [--prompt] TEXT [options]

              --prompt TEXT        what to draw (or give it as the first positional argument)
              --negative TEXT      negative prompt
              --model NAME|PATH    a checkpoint (.safetensors, civitai single file) or a name in --models-dir;
                                   default: sd-shapes, the built-in demonstration model (128×128, flat shapes
                                   and colours)
              --steps N            denoising steps (default: the model's recommendation, else 20)
              --sampler NAME       e.g. euler_a, euler, dpmpp_2m, dpmpp_2m_karras, ddim, pndm, unipc
                                   (default: the model's recommendation, else euler_a)
              --guidance G         classifier-free guidance scale (default: the model's recommendation, else 7.5;
                                   --cfg is an alias)
              --deep-cache N       DeepCache: a full UNet step every N steps, the shallow path between (0/1 = off)
              --token-merging R    token merging: the share of the full-resolution self-attention tokens merged
                                   (0 to 0.9 in steps of 0.05; 0 = off; pays from 512² up, see the README)
              --seed N             seed (default random; the seed used is printed)
              --width W --height H image size, multiples of 8 (default: the model's size)
              --lora NAME:WEIGHT   apply a LoRA (repeatable; needs a server or --models-dir with loras/)
              --images N           images from seeds seed, seed+1, … (default 1)
              --clip-skip N        1 = last text-encoder layer (default)
              --out FILE           PNG to write (default out.png; with several images out-1.png, …)
              --server HOST:PORT   run on a running server over gRPC instead of in-process
              --engine tf|fake     in-process engine (default tf)
              --threads N          TensorFlow threads (default: all cores)
              --models-dir DIR     where named models and LoRAs live (default models)
              --quiet              no progress bar
            """ + PreviewFile.HELP + """

            sd-shapes draws what its prompt says in this grammar (sd-shapes recommends dpmpp_2m, 20 steps,
            guidance 5, 128×128; `models --server …` lists every model's recommendations):
              a [small|big] COLOUR SHAPE [PLACE] [and a [small] COLOUR SHAPE [PLACE]] [, COLOUR background]
              COLOUR: red green blue yellow orange purple pink white black cyan gray brown
              SHAPE:  circle square triangle diamond ring
              PLACE:  on the left, on the right, at the top, at the bottom, in the center, at the top left, …
            e.g. generate "a big orange triangle in the center, purple background" --seed 1
                 → an orange triangle in the middle of a purple square
            """;

    @Override
    public int run(List<String> argv, PrintStream out) throws Exception {
        Args a;
        try {
            a = Args.parse(argv, VALUED, FLAGS);
        } catch (IllegalArgumentException e) {
            System.err.println("generate: " + e.getMessage() + "\n\n" + HELP);
            return 2;
        }
        if (a.has("help")) {
            out.print(HELP);
            return 0;
        }
        String prompt = a.get("prompt", a.positionals().isEmpty() ? null : String.join(" ", a.positionals()));
        if (prompt == null) {
            System.err.println("generate: a prompt is required\n\n" + HELP);
            return 2;
        }
        if (a.has("server")) {
            return RemoteGenerate.run(a, out);
        }
        Assembly.Settings s = new Assembly.Settings();
        s.engine = a.get("engine", "tf");
        s.threads = a.integer("threads", 0);
        s.modelsDir = Path.of(a.get("models-dir", "models"));
        String model = a.get("model", null);
        if (model != null && (model.endsWith(".safetensors") || model.contains("/"))) {
            Path p = Path.of(model);
            if (!Files.isRegularFile(p)) {
                System.err.println("generate: --model " + model + ": no such file");
                return 2;
            }
            String name = p.getFileName().toString().replaceFirst("\\.safetensors$", "");
            s.extraModels.put(name, p.toAbsolutePath());
            model = name;
        }
        GenerationRequest req = request(a, prompt, model);
        s.service.previewFitOnLoad = a.has("preview"); // no fit for a run without previews (the CPU is the image's)
        boolean quiet = a.has("quiet");
        long t0 = System.nanoTime();
        try (Assembly asm = Assembly.create(s)) {
            Job job;
            try {
                job = asm.service().submit(req, false);
            } catch (ServeException e) {
                System.err.println("generate: " + e.getMessage());
                return 2;
            }
            Mailbox mb = job.watch();
            Progress bar = new Progress(quiet ? null : System.err);
            PreviewFile preview = PreviewFile.of(a);
            while (true) {
                JobEvent e = mb.next().get(24, TimeUnit.HOURS);
                if (e instanceof JobEvent.Step st) {
                    bar.step(st.index(), st.total());
                    if (preview != null) {
                        preview.write(st.preview());
                    }
                } else if (e instanceof JobEvent.Completed c) {
                    bar.done();
                    List<Path> written = write(c, a.get("out", "out.png"));
                    for (int i = 0; i < written.size(); i++) {
                        out.printf("seed %d → %s%n", c.seeds().get(i), written.get(i));
                    }
                    out.printf(java.util.Locale.ROOT, "%dx%d, %d steps, %s, guidance %.1f, %.1f s%n", c.request().width(),
                            c.request().height(), c.request().steps(), c.request().sampler(), c.request().guidance(),
                            (System.nanoTime() - t0) / 1e9);
                    return 0;
                } else if (e instanceof JobEvent.Ended end) {
                    bar.done();
                    System.err.println("generate: " + (end.error() == null ? end.state().name().toLowerCase() : end.error().getMessage()));
                    return 1;
                }
            }
        }
    }

    static GenerationRequest request(Args a, String prompt, String model) {
        List<LoraWeight> loras = new ArrayList<>();
        for (String l : a.all("lora")) {
            int c = l.lastIndexOf(':');
            try {
                loras.add(c < 0 ? new LoraWeight(l, 1.0) : new LoraWeight(l.substring(0, c), Double.parseDouble(l.substring(c + 1))));
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException("--lora " + l + ": expected NAME:WEIGHT");
            }
        }
        String seed = a.get("seed", null);
        Long seedValue = null;
        if (seed != null) {
            try {
                seedValue = Long.parseLong(seed);
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException("--seed must be an integer, got '" + seed + "'");
            }
        }
        Double guidance = a.decimal("guidance", a.decimal("cfg", null));
        return new GenerationRequest(prompt, a.get("negative", ""), model, loras, a.integer("width", null),
                a.integer("height", null), a.integer("steps", null), a.get("sampler", null), guidance, seedValue,
                a.integer("clip-skip", null), a.integer("images", null),
                a.has("preview") ? new PreviewOptions(1, "png", 0, PreviewOptions.DENOISED, PreviewFile.fullEvery(a),
                        PreviewFile.projection(a))
                        : new PreviewOptions(0, "png", 0), null, null, null, "cli", true)
                .withDeepCacheInterval(a.integer("deep-cache", null))
                .withTokenMerging(a.decimal("token-merging", null));
    }

    static List<Path> write(JobEvent.Completed c, String out) throws java.io.IOException {
        List<Path> paths = new ArrayList<>();
        for (int i = 0; i < c.images().size(); i++) {
            Path p = Path.of(c.images().size() == 1 ? out : out.replaceFirst("(\\.png)?$", "-" + (i + 1) + ".png"));
            if (p.getParent() != null) {
                Files.createDirectories(p.getParent());
            }
            Files.write(p, c.images().get(i));
            paths.add(p);
        }
        return paths;
    }

    /** A one-line terminal progress bar with ETA. */
    static final class Progress {
        private final PrintStream err;
        private final long start = System.nanoTime();

        Progress(PrintStream err) {
            this.err = err;
        }

        void step(int index, int total) {
            if (err == null) {
                return;
            }
            double elapsed = (System.nanoTime() - start) / 1e9;
            double per = elapsed / Math.max(1, index);
            int width = 30;
            int filled = (int) Math.round(width * (double) index / total);
            err.printf("\r[%s%s] step %d/%d  %.2f s/step  ETA %.0f s ", "#".repeat(filled), ".".repeat(width - filled),
                    index, total, per, per * (total - index));
            err.flush();
        }

        void done() {
            if (err != null) {
                err.println();
            }
        }
    }
}
