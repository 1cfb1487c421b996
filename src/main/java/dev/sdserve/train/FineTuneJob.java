package dev.sdserve.train;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.sdserve.engine.tf.TfModel;
import dev.sdserve.model.ClipTokenizer;
import dev.sdserve.model.DType;

import javax.imageio.ImageIO;
import java.awt.Graphics2D;
import java.awt.RenderingHints;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.stream.Stream;

/**
 * One LoRA fine-tune job: images with captions from a folder inside the data directory (each {@code x.png/.jpg}
 * with its caption in {@code x.txt}, else the file name), VAE- and text-encoded once; then {@link #runStep()} is called
 * (by the training coordinator in the scheduler's gaps, or in a loop) until done. Progress (step, loss, ETA)
 * goes to listeners; {@link #cancel()} stops at the next step boundary.
 *
 * <p>Durability: the spec is written to {@code <stateDir>/<id>.json} at creation, the LoRA factors and AdamW state
 * to {@code <stateDir>/<id>.ckpt.safetensors} every {@code checkpointEvery} steps (both atomically);
 * {@link #open} of an existing id resumes from the last checkpoint. The result is written atomically as
 * {@code <loraDir>/<name>.safetensors} (kohya format, fp16).
 */
public final class FineTuneJob implements AutoCloseable {
    private static final ObjectMapper JSON = new ObjectMapper();

    /**
     * @param dataFolder a folder inside the data directory, or null/empty when only uploaded images are used
     * @param targets    attention projections to train ({@link LoraTrainer#TARGET_NAMES}); null or empty = all
     * @param uploaded   whether images were uploaded with the request (kept in {@code <stateDir>/<id>.upload/})
     */
    public record Spec(String id, String name, String baseModel, String dataFolder, int rank, double alpha, int steps,
                       double learningRate, int batchSize, long seed, int resolution, int checkpointEvery,
                       List<String> targets, boolean uploaded) {
        public Spec(String id, String name, String baseModel, String dataFolder, int rank, double alpha, int steps,
                    double learningRate, int batchSize, long seed, int resolution, int checkpointEvery) {
            this(id, name, baseModel, dataFolder, rank, alpha, steps, learningRate, batchSize, seed, resolution,
                    checkpointEvery, List.of(), false);
        }

        public Spec {
            targets = targets == null ? List.of() : List.copyOf(targets);
            if ((dataFolder == null || dataFolder.isEmpty()) && !uploaded) {
                throw new IllegalArgumentException("a job needs a data folder or uploaded images");
            }
            if (id == null || !id.matches("[A-Za-z0-9_.-]{1,64}") || id.startsWith(".")) {
                throw new IllegalArgumentException("job id must be 1-64 of [A-Za-z0-9_.-], got '" + id + "'");
            }
            if (name == null || !name.matches("[A-Za-z0-9_.-]{1,64}") || name.startsWith(".")) {
                throw new IllegalArgumentException("LoRA name must be 1-64 of [A-Za-z0-9_.-], got '" + name + "'");
            }
            if (steps < 1) {
                throw new IllegalArgumentException("steps must be >= 1, got " + steps);
            }
            if (resolution < 8 || resolution % 64 != 0) {
                throw new IllegalArgumentException("resolution must be a positive multiple of 64, got " + resolution);
            }
            if (checkpointEvery < 1) {
                throw new IllegalArgumentException("checkpointEvery must be >= 1, got " + checkpointEvery);
            }
        }
    }

    public enum Status { RUNNING, SUCCEEDED, FAILED, CANCELLED }

    public record Progress(String id, long step, int steps, float loss, double etaSeconds, Status status,
                           String detail) {
    }

    public interface Listener {
        void onProgress(Progress p);
    }

    private final Spec spec;
    private final TfModel model;
    private final Path loraDir;
    private final Path stateDir;
    private final List<LoraTrainer.Example> data;
    private final LoraTrainer trainer;
    private final List<Listener> listeners = new CopyOnWriteArrayList<>();
    private volatile boolean cancelled;
    private volatile Status status = Status.RUNNING;
    private double secondsPerStep = Double.NaN;
    private float lastLoss = Float.NaN;

    private FineTuneJob(Spec spec, TfModel model, Path dataDir, Path loraDir, Path stateDir) throws IOException {
        if (!dev.sdserve.model.ModelConfig.SD1.equals(model.config().family())) {
            throw dev.sdserve.job.ServeException.invalid("base_model", "LoRA fine-tuning supports SD 1.x base models; '"
                    + spec.baseModel() + "' is " + model.config().familyName());
        }
        this.spec = spec;
        this.model = model;
        this.loraDir = loraDir;
        this.stateDir = stateDir;
        List<Captioned> images = new ArrayList<>();
        if (spec.dataFolder() != null && !spec.dataFolder().isEmpty()) {
            images.addAll(loadImages(dataDir, spec.dataFolder(), spec.resolution()));
        }
        if (spec.uploaded()) {
            images.addAll(loadImages(stateDir, uploadDirName(spec.id()), spec.resolution()));
        }
        this.data = encode(model, images, spec.resolution());
        int latent = spec.resolution() / 8;
        var cfg = model.config();
        this.trainer = new LoraTrainer(model.weights(), cfg.unet(), latent, latent, ClipTokenizer.CONTEXT,
                cfg.unet().crossAttentionDim(), LoraTrainer.Config.of(spec.rank(), spec.alpha(), spec.learningRate(),
                spec.batchSize(), spec.seed()), spec.targets());
    }

    /** Creates a job, or resumes it from its last checkpoint if {@code stateDir} already holds that id. */
    public static FineTuneJob open(Spec spec, TfModel model, Path dataDir, Path loraDir, Path stateDir)
            throws IOException {
        Files.createDirectories(stateDir);
        Path specFile = stateDir.resolve(spec.id() + ".json");
        if (Files.exists(specFile)) {
            Spec saved = JSON.readValue(specFile.toFile(), Spec.class);
            if (!saved.equals(spec)) {
                throw new IllegalArgumentException("job " + spec.id() + " exists with another spec: " + saved);
            }
        } else {
            atomicWrite(specFile, JSON.writeValueAsBytes(spec));
        }
        FineTuneJob job = new FineTuneJob(spec, model, dataDir, loraDir, stateDir);
        Path ckpt = job.checkpointFile();
        if (Files.exists(ckpt)) {
            job.trainer.setState(TrainCheckpoint.load(ckpt, job.trainer.modules()));
        }
        return job;
    }

    /** The folder (inside the state directory) holding a job's uploaded images. */
    public static String uploadDirName(String id) {
        return id + ".upload";
    }

    /** The persisted spec of a job id in {@code stateDir}. */
    public static Spec readSpec(Path stateDir, String id) throws IOException {
        return JSON.readValue(stateDir.resolve(id + ".json").toFile(), Spec.class);
    }

    /** Resumes a job from its persisted spec (after a restart). */
    public static FineTuneJob resume(String id, TfModel model, Path dataDir, Path loraDir, Path stateDir)
            throws IOException {
        Spec spec = JSON.readValue(stateDir.resolve(id + ".json").toFile(), Spec.class);
        return open(spec, model, dataDir, loraDir, stateDir);
    }

    public Spec spec() {
        return spec;
    }

    public Status status() {
        return status;
    }

    /** Steps completed. */
    public long stepsDone() {
        return trainer.step();
    }

    public LoraTrainer trainer() {
        return trainer;
    }

    public void addListener(Listener l) {
        listeners.add(l);
    }

    public void cancel() {
        cancelled = true;
    }

    public boolean done() {
        return status != Status.RUNNING;
    }

    public Path checkpointFile() {
        return stateDir.resolve(spec.id() + ".ckpt.safetensors");
    }

    public Path resultFile() {
        return loraDir.resolve(spec.name() + ".safetensors");
    }

    /**
     * Runs one training step (or finishes the job: cancel, or writing the result after the last step). Returns
     * false once the job is done.
     */
    public boolean runStep() throws IOException {
        if (done()) {
            return false;
        }
        if (cancelled) {
            checkpoint();
            finish(Status.CANCELLED, "cancelled at step " + trainer.step());
            return false;
        }
        if (trainer.step() >= spec.steps()) {
            writeResult();
            finish(Status.SUCCEEDED, resultFile().toString());
            return false;
        }
        long t0 = System.nanoTime();
        try {
            lastLoss = trainer.step(data);
        } catch (RuntimeException e) {
            finish(Status.FAILED, e.toString());
            throw e;
        }
        double s = (System.nanoTime() - t0) / 1e9;
        secondsPerStep = Double.isNaN(secondsPerStep) ? s : 0.8 * secondsPerStep + 0.2 * s;
        if (trainer.step() % spec.checkpointEvery() == 0 || trainer.step() == spec.steps()) {
            checkpoint();
        }
        publish(Status.RUNNING, null);
        if (trainer.step() >= spec.steps()) {
            writeResult();
            finish(Status.SUCCEEDED, resultFile().toString());
            return false;
        }
        return true;
    }

    /**
     * Runs {@code n} training steps and undoes them (restores the LoRA factors, moments and step), so TensorFlow
     * optimises the training graph and the step time is measured before the job's first real step: off the
     * scheduler's thread, the first step's one-off cost does not stall inference, and the coordinator starts with a
     * measured prediction. The run afterwards is the same as without it (a step depends only on the state and
     * (seed, step)).
     */
    public void warmUp(int n) {
        if (done() || trainer.step() >= spec.steps()) {
            return;
        }
        LoraTrainer.State before = trainer.state();
        for (int i = 0; i < n; i++) {
            long t0 = System.nanoTime();
            trainer.step(data);
            secondsPerStep = (System.nanoTime() - t0) / 1e9; // the last (optimised) run
        }
        trainer.setState(before);
    }

    /** Predicted seconds of the next step (exponential average of measured steps; NaN before the first). */
    public double secondsPerStep() {
        return secondsPerStep;
    }

    private void checkpoint() throws IOException {
        TrainCheckpoint.save(checkpointFile(), trainer.state(), trainer.modules(), spec.rank(),
                Map.of("sdserve.job", spec.id()));
    }

    private void writeResult() throws IOException {
        Files.createDirectories(loraDir);
        LoraTrainer.State st = trainer.state();
        LoraExport.write(resultFile(), model.config(), trainer.modules(), spec.rank(), spec.alpha(), st.down(),
                st.up(), DType.F16, Map.of("sdserve.base_model", spec.baseModel(), "sdserve.steps",
                        Long.toString(st.step()), "sdserve.job", spec.id()));
    }

    private void finish(Status s, String detail) {
        status = s;
        publish(s, detail);
    }

    private void publish(Status s, String detail) {
        double eta = Double.isNaN(secondsPerStep) ? Double.NaN : secondsPerStep * (spec.steps() - trainer.step());
        Progress p = new Progress(spec.id(), trainer.step(), spec.steps(), lastLoss, eta, s, detail);
        for (Listener l : listeners) {
            l.onProgress(p);
        }
    }

    // ---------------------------------------------------------------- data

    record Captioned(float[] image, String caption) {
    }

    /** Images (resized to res × res, NCHW in [-1, 1]) with captions from {@code dataDir/folder}. */
    static List<Captioned> loadImages(Path dataDir, String folder, int res) throws IOException {
        Path root = dataDir.toAbsolutePath().normalize();
        Path dir = root.resolve(folder).normalize();
        if (!dir.startsWith(root)) {
            throw new IllegalArgumentException("training folder '" + folder + "' is outside the data directory");
        }
        if (!Files.isDirectory(dir)) {
            throw new IllegalArgumentException("training folder " + dir + " does not exist");
        }
        Path realRoot = root.toRealPath();
        if (!dir.toRealPath().startsWith(realRoot)) {
            throw new IllegalArgumentException("training folder '" + folder + "' links outside the data directory");
        }
        List<Path> files;
        try (Stream<Path> s = Files.list(dir)) {
            files = s.filter(p -> p.getFileName().toString().toLowerCase(Locale.ROOT).matches(".*\\.(png|jpe?g)"))
                    .sorted().toList();
        }
        if (files.isEmpty()) {
            throw new IllegalArgumentException("training folder " + dir + " has no .png/.jpg images");
        }
        List<Captioned> out = new ArrayList<>();
        for (Path f : files) {
            if (!f.toRealPath().startsWith(realRoot)) {
                throw new IllegalArgumentException("training image " + f.getFileName() + " links outside the data directory");
            }
            BufferedImage img = ImageIO.read(f.toFile());
            if (img == null) {
                throw new IOException(f + ": not a readable image");
            }
            String base = f.getFileName().toString().replaceFirst("\\.[^.]+$", "");
            Path txt = f.resolveSibling(base + ".txt");
            String caption = Files.exists(txt) ? Files.readString(txt).trim() : base.replace('_', ' ');
            out.add(new Captioned(toNchw(img, res), caption));
        }
        return out;
    }

    static float[] toNchw(BufferedImage src, int res) {
        BufferedImage img = new BufferedImage(res, res, BufferedImage.TYPE_INT_RGB);
        Graphics2D g = img.createGraphics();
        g.setRenderingHint(RenderingHints.KEY_INTERPOLATION, RenderingHints.VALUE_INTERPOLATION_BILINEAR);
        g.drawImage(src, 0, 0, res, res, null);
        g.dispose();
        float[] out = new float[3 * res * res];
        for (int y = 0; y < res; y++) {
            for (int x = 0; x < res; x++) {
                int rgb = img.getRGB(x, y);
                for (int c = 0; c < 3; c++) {
                    int v = (rgb >> (16 - 8 * c)) & 0xff;
                    out[(c * res + y) * res + x] = v / 127.5f - 1f;
                }
            }
        }
        return out;
    }

    static List<LoraTrainer.Example> encode(TfModel m, List<Captioned> items, int res) {
        List<float[]> imgs = items.stream().map(Captioned::image).toList();
        int[][] ids = new int[items.size()][];
        for (int i = 0; i < ids.length; i++) {
            ids[i] = ClipTokenizer.get().tokenize(items.get(i).caption(), m.config().textEncoder());
        }
        float[][] lat = m.encodeImages(imgs, res, res);
        float[][] ctx = m.encodeTokens(ids, 1);
        List<LoraTrainer.Example> out = new ArrayList<>();
        for (int i = 0; i < ids.length; i++) {
            out.add(new LoraTrainer.Example(lat[i], ctx[i]));
        }
        return out;
    }

    static void atomicWrite(Path target, byte[] bytes) throws IOException {
        Path tmp = target.resolveSibling(target.getFileName() + ".tmp" + ProcessHandle.current().pid());
        Files.write(tmp, bytes);
        Files.move(tmp, target, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
    }

    @Override
    public void close() {
        trainer.close();
    }
}
