package dev.sdserve.cli;

import dev.sdserve.api.grpc.v1.Completed;
import dev.sdserve.api.grpc.v1.GenerateEvent;
import dev.sdserve.api.grpc.v1.GenerateRequest;
import dev.sdserve.api.grpc.v1.GenerationGrpc;
import dev.sdserve.api.grpc.v1.LoraRef;
import dev.sdserve.api.grpc.v1.PreviewFormat;
import dev.sdserve.api.grpc.v1.PreviewOptions;
import dev.sdserve.api.grpc.v1.Step;
import io.grpc.Context;
import io.grpc.StatusRuntimeException;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Locale;
import java.util.Set;

/**
 * {@code generate --server host:port}: one request to a running server over gRPC (the {@code Generate} stream),
 * with a progress bar and ETA on stderr. Cancelling (Ctrl-C) closes the call, which cancels the job on the server.
 */
public final class RemoteGenerate {
    /** The options this class reads (GenerateCommand's parser must accept them). */
    public static final Set<String> VALUED = Set.of("server", "prompt", "negative-prompt", "negative", "model", "lora",
            "width", "height", "steps", "sampler", "guidance", "cfg", "seed", "images", "clip-skip", "out", "preview",
            "preview-full", "deep-cache", "token-merging");
    public static final Set<String> FLAGS = Set.of("help", "no-progress", "quiet");

    private RemoteGenerate() {
    }

    /** Runs with progress on System.err. */
    public static int run(Args args, PrintStream out) throws IOException {
        return run(args, out, System.err);
    }

    public static int run(Args args, PrintStream out, PrintStream err) throws IOException {
        GenerateRequest request = request(args);
        Path outPath = Path.of(args.get("out", "out.png"));
        boolean progress = !args.has("no-progress") && !args.has("quiet");
        Context.CancellableContext ctx = Context.current().withCancellation();
        Thread hook = new Thread(() -> ctx.cancel(null), "sd-serve-cancel");
        try (GrpcTarget target = new GrpcTarget(args.get("server", GrpcTarget.DEFAULT))) {
            Runtime.getRuntime().addShutdownHook(hook);
            ProgressBar bar = new ProgressBar(err, progress);
            PreviewFile preview = PreviewFile.of(args);
            Completed done;
            try {
                done = ctx.call(() -> {
                    Iterator<GenerateEvent> events = GenerationGrpc.newBlockingStub(target.channel).generate(request);
                    Completed c = null;
                    while (events.hasNext()) {
                        GenerateEvent e = events.next();
                        switch (e.getEventCase()) {
                            case QUEUED -> bar.queued(e.getQueued().getPosition(), e.getQueued().getEstimatedStartMs());
                            case STARTED -> bar.started();
                            case STEP -> {
                                bar.step(e.getStep());
                                if (preview != null) {
                                    preview.write(e.getStep().getPreview().toByteArray());
                                }
                            }
                            case COMPLETED -> c = e.getCompleted();
                            default -> {
                            }
                        }
                    }
                    return c;
                });
            } catch (StatusRuntimeException e) {
                bar.clear();
                err.println("generate: " + target.describe(e));
                return 1;
            } catch (Exception e) {
                bar.clear();
                throw e instanceof IOException io ? io : new IOException(e.getMessage(), e);
            }
            bar.finish();
            if (done == null || done.getImagesCount() == 0) {
                err.println("generate: the server ended the stream without a result");
                return 1;
            }
            List<Path> written = write(done, outPath);
            for (int i = 0; i < written.size(); i++) {
                out.println("seed: " + done.getImages(i).getSeed());
                out.println("wrote: " + written.get(i));
            }
            Double total = done.getTimingsMsMap().get("total");
            if (total != null) {
                err.printf(Locale.ROOT, "done in %.1f s%n", total / 1000);
            }
            return 0;
        } finally {
            try {
                Runtime.getRuntime().removeShutdownHook(hook);
            } catch (IllegalStateException ignored) {
                // shutting down
            }
            ctx.close();
        }
    }

    static GenerateRequest request(Args a) {
        String prompt = a.get("prompt", null);
        if (prompt == null && !a.positionals().isEmpty()) {
            prompt = String.join(" ", a.positionals());
        }
        if (prompt == null || prompt.isBlank()) {
            throw new IllegalArgumentException("a prompt is required: --prompt \"a lighthouse at dusk\"");
        }
        GenerateRequest.Builder b = GenerateRequest.newBuilder().setPrompt(prompt)
                .setPreview(a.has("preview")
                        ? PreviewOptions.newBuilder().setEverySteps(1).setFormat(PreviewFormat.PREVIEW_FORMAT_PNG)
                                .setFullEvery(PreviewFile.fullEvery(a))
                                .setProjection(switch (PreviewFile.projection(a)) {
                                    case dev.sdserve.job.PreviewOptions.AFFINE -> dev.sdserve.api.grpc.v1.PreviewProjection.PREVIEW_PROJECTION_AFFINE;
                                    case dev.sdserve.job.PreviewOptions.DECODER -> dev.sdserve.api.grpc.v1.PreviewProjection.PREVIEW_PROJECTION_DECODER;
                                    default -> dev.sdserve.api.grpc.v1.PreviewProjection.PREVIEW_PROJECTION_AUTO;
                                })
                        : PreviewOptions.newBuilder().setOff(true));
        String neg = a.get("negative-prompt", a.get("negative", null));
        if (neg != null) {
            b.setNegativePrompt(neg);
        }
        if (a.has("model")) {
            b.setModel(a.get("model", ""));
        }
        for (String l : a.all("lora")) {
            b.addLoras(lora(l));
        }
        Integer w = a.integer("width", null);
        Integer h = a.integer("height", null);
        Integer steps = a.integer("steps", null);
        Integer images = a.integer("images", null);
        Integer clip = a.integer("clip-skip", null);
        for (String n : new String[]{"width", "height", "steps", "images", "clip-skip"}) {
            Integer v = a.integer(n, null);
            if (v != null && v < 1) {
                throw new IllegalArgumentException("--" + n + " must be at least 1, got " + v);
            }
        }
        if (w != null) {
            b.setWidth(w);
        }
        if (h != null) {
            b.setHeight(h);
        }
        if (steps != null) {
            b.setSteps(steps);
        }
        if (images != null) {
            b.setImages(images);
        }
        if (clip != null) {
            b.setClipSkip(clip);
        }
        if (a.has("sampler")) {
            b.setSampler(a.get("sampler", ""));
        }
        Double g = a.decimal("guidance", a.decimal("cfg", null));
        if (g != null) {
            b.setGuidanceScale(g);
        }
        Integer deepCache = a.integer("deep-cache", null);
        if (deepCache != null) {
            b.setDeepCacheInterval(deepCache);
        }
        Double tokenMerging = a.decimal("token-merging", null);
        if (tokenMerging != null) {
            b.setTokenMergingRatio(tokenMerging);
        }
        String seed = a.get("seed", null);
        if (seed != null && !seed.equals("-1") && !seed.equalsIgnoreCase("random")) {
            try {
                b.setSeed(Long.parseUnsignedLong(seed));
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException("--seed must be a non-negative integer (or -1 for random), got '" + seed + "'");
            }
        }
        return b.build();
    }

    /** {@code name:weight} or {@code name} (weight 1); the name may itself contain colons. */
    static LoraRef lora(String s) {
        String name = s;
        double weight = 1.0;
        int colon = s.lastIndexOf(':');
        if (colon >= 0) {
            try {
                weight = Double.parseDouble(s.substring(colon + 1));
                name = s.substring(0, colon);
            } catch (NumberFormatException ignored) {
                // no weight given: the whole string is the name
            }
        }
        if (name.isBlank()) {
            throw new IllegalArgumentException("--lora needs a name: --lora name:weight");
        }
        if (weight == 0) {
            throw new IllegalArgumentException("--lora " + s + ": a weight of 0 has no effect (and means 1.0 on the wire); leave the LoRA out");
        }
        return LoraRef.newBuilder().setName(name).setWeight(weight).build();
    }

    /** Writes the images: {@code out} for one, {@code out-1.png}, {@code out-2.png}, … for several. */
    static List<Path> write(Completed c, Path out) throws IOException {
        List<Path> paths = new ArrayList<>();
        Path dir = out.toAbsolutePath().getParent();
        if (dir != null) {
            Files.createDirectories(dir);
        }
        for (int i = 0; i < c.getImagesCount(); i++) {
            Path p = out;
            if (c.getImagesCount() > 1) {
                String f = out.getFileName().toString();
                int dot = f.lastIndexOf('.');
                String stem = dot > 0 ? f.substring(0, dot) : f;
                String ext = dot > 0 ? f.substring(dot) : ".png";
                p = out.resolveSibling(stem + "-" + (i + 1) + ext);
            }
            Files.write(p, c.getImages(i).getPng().toByteArray());
            paths.add(p);
        }
        return paths;
    }

    /** A one-line progress bar with step rate and ETA; plain lines when stderr is not a terminal. */
    static final class ProgressBar {
        private final PrintStream err;
        private final boolean enabled;
        private final boolean tty = System.console() != null;
        private long startedNanos = -1;
        private int lastPrintedTenth = -1;
        private boolean drawn;

        ProgressBar(PrintStream err, boolean enabled) {
            this.err = err;
            this.enabled = enabled;
        }

        void queued(int position, long estimatedStartMs) {
            if (!enabled) {
                return;
            }
            long inMs = estimatedStartMs - System.currentTimeMillis();
            String msg = "queued, position " + (position + 1)
                    + (estimatedStartMs > 0 && inMs > 0 ? String.format(Locale.ROOT, ", starts in ~%.1f s", inMs / 1000.0) : "");
            line(msg, true);
        }

        void started() {
            startedNanos = System.nanoTime();
        }

        void step(Step s) {
            if (startedNanos < 0) {
                startedNanos = System.nanoTime();
            }
            if (!enabled) {
                return;
            }
            double elapsed = (System.nanoTime() - startedNanos) / 1e9;
            int index = s.getIndex();
            int total = Math.max(1, s.getTotal());
            double rate = elapsed > 0 ? index / elapsed : 0;
            double eta = rate > 0 ? (total - index) / rate : 0;
            int width = 30;
            int filled = (int) Math.round(width * (double) index / total);
            String bar = String.format(Locale.ROOT, "[%s%s] %3d%% %d/%d  %.2f it/s  ETA %s",
                    "#".repeat(filled), "-".repeat(width - filled), 100 * index / total, index, total, rate, time(eta));
            int tenth = 10 * index / total;
            if (tty) {
                line(bar, true);
            } else if (tenth != lastPrintedTenth || index == total) {
                lastPrintedTenth = tenth;
                err.println(bar);
            }
        }

        private static String time(double s) {
            return s >= 60 ? String.format(Locale.ROOT, "%dm%02ds", (int) s / 60, (int) s % 60)
                    : String.format(Locale.ROOT, "%.1fs", s);
        }

        private void line(String s, boolean overwrite) {
            if (tty && overwrite) {
                err.print("\r\033[2K" + s);
                drawn = true;
            } else {
                err.println(s);
            }
            err.flush();
        }

        void clear() {
            if (drawn) {
                err.print("\r\033[2K");
                err.flush();
                drawn = false;
            }
        }

        void finish() {
            if (drawn) {
                err.println();
                drawn = false;
            }
        }
    }
}
