package dev.sdserve.train;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.sdserve.engine.tf.TfModel;
import dev.sdserve.job.ServeException;

import javax.imageio.ImageIO;
import java.awt.image.BufferedImage;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.Consumer;
import java.util.function.Function;
import java.util.function.Predicate;
import java.util.logging.Level;
import java.util.logging.Logger;
import java.util.stream.Stream;

/**
 * The fine-tune jobs of a server: validates requests, persists each job in the state directory, feeds the jobs'
 * steps to the {@link TrainingCoordinator} (which runs them in the scheduler's slack), publishes progress events,
 * and when a job succeeds has its LoRA written into the LoRA directory and announced ({@code onResult}, e.g. a
 * registry rescan) before the SUCCEEDED event goes out, so the LoRA is usable by name as soon as a watcher sees it.
 *
 * <p>Pause, resume and cancel take effect at step boundaries (a step in flight finishes first). At construction,
 * jobs found in the state directory come back: finished ones as history, the others queued (or paused) to resume
 * from their last checkpoint when they next get a step.
 *
 * <p>Files per job in the state directory: {@code <id>.json} (the spec), {@code <id>.status.json} (state, step, loss
 * curve; rewritten atomically at every checkpoint and state change), {@code <id>.ckpt.safetensors} (LoRA factors and
 * AdamW state) and {@code <id>.upload/} (uploaded images with their captions).
 */
public final class FineTuneManager {
    private static final Logger LOG = Logger.getLogger(FineTuneManager.class.getName());
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final SecureRandom IDS = new SecureRandom();
    static final String NAME_RE = "[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}";

    public enum State {
        QUEUED, PREPARING, RUNNING, PAUSED, SUCCEEDED, FAILED, CANCELLED;

        public boolean terminal() {
            return this == SUCCEEDED || this == FAILED || this == CANCELLED;
        }
    }

    /** An uploaded training image (PNG or JPEG bytes) and its caption. */
    public record Upload(byte[] image, String caption) {
    }

    /** What a client asks for; null (or 0 / empty where noted in the API) = the default. */
    public record Request(String name, String baseModel, String dataFolder, List<Upload> images, Integer rank,
                          Double alpha, List<String> targetModules, Integer steps, Double learningRate,
                          Integer batchSize, Long seed, Integer resolution) {
    }

    /** A progress event (also the job's current status). */
    public record Event(String id, String name, State state, long step, int totalSteps, float loss, long etaMillis,
                        String lora, String detail) {
    }

    /** A job's status with its spec and loss curve (step, loss pairs). */
    public record Info(Event status, FineTuneJob.Spec spec, List<Long> lossSteps, List<Float> losses,
                       long createdMillis) {
    }

    /** Settings. */
    public static final class Settings {
        public Path stateDir = Path.of("finetunes");
        public Path dataDir = Path.of("training-data");
        public Path loraDir = Path.of("models", "loras");
        public boolean enabled = true;
        public long maxUploadBytes = 32L << 20;
        public int maxImages = 1000;
        public int checkpointEvery = 50;
        public int maxActiveJobs = 16;
    }

    private final Settings settings;
    private final TrainingCoordinator coordinator;
    private final Function<String, TfModel> models;
    private final Consumer<String> checkModel;
    private final Predicate<String> loraExists;
    private final Consumer<Path> onResult;
    private final Map<String, Entry> jobs = new LinkedHashMap<>();
    /** Prepares jobs (model load, data encoding, graph build, warm-up) off the scheduler's thread. */
    private final java.util.concurrent.ExecutorService preparer = java.util.concurrent.Executors.newSingleThreadExecutor(r -> {
        Thread t = new Thread(r, "sdserve-finetune-prepare");
        t.setDaemon(true);
        return t;
    });

    /**
     * @param models     the loaded model of a base model name
     * @param checkModel throws a ServeException if a base model name is unknown or not allowed
     * @param loraExists whether a LoRA of that name is already served
     * @param onResult   called with a finished job's LoRA file (after the atomic write; e.g. registry rescan)
     */
    public FineTuneManager(Settings settings, TrainingCoordinator coordinator, Function<String, TfModel> models,
                           Consumer<String> checkModel, Predicate<String> loraExists, Consumer<Path> onResult) {
        this.settings = settings;
        this.coordinator = coordinator;
        this.models = models;
        this.checkModel = checkModel;
        this.loraExists = loraExists;
        this.onResult = onResult;
        if (settings.enabled) {
            recover();
        }
    }

    private volatile Consumer<Event> progressHook = e -> {
    };

    /** Called with every event of every job (e.g. metrics). */
    public void onProgress(Consumer<Event> hook) {
        progressHook = hook;
    }

    public boolean enabled() {
        return settings.enabled;
    }

    public TrainingCoordinator coordinator() {
        return coordinator;
    }

    // ------------------------------------------------------------------------------------------------- requests

    /** Validates, persists and queues a job; returns its initial status. */
    public Event submit(Request r) {
        requireEnabled();
        if (r == null) {
            throw ServeException.invalid("body", "missing request");
        }
        String name = r.name();
        if (name == null || name.isBlank()) {
            throw ServeException.invalid("name", "the output LoRA name is required");
        }
        if (!name.matches(NAME_RE)) {
            throw ServeException.invalid("name", "'" + clean(name) + "' must be 1-64 of [A-Za-z0-9_.-], not starting"
                    + " with '.' or '-' (it becomes loras/<name>.safetensors)");
        }
        String base = r.baseModel();
        if (base == null || base.isBlank()) {
            throw ServeException.invalid("base_model", "the base model is required");
        }
        try {
            checkModel.accept(base);
        } catch (ServeException e) {
            throw new ServeException(e.code(), "base_model", "base_model: " + e.getMessage(), null);
        }
        String folder = r.dataFolder() == null || r.dataFolder().isBlank() ? null : r.dataFolder();
        List<Upload> images = r.images() == null ? List.of() : r.images();
        if (folder == null && images.isEmpty()) {
            throw ServeException.invalid("data_folder", "give a data_folder inside the data directory or upload images");
        }
        if (folder != null) {
            checkFolder(folder);
        }
        if (images.size() > settings.maxImages) {
            throw ServeException.invalid("images", images.size() + " images, at most " + settings.maxImages);
        }
        long total = 0;
        for (int i = 0; i < images.size(); i++) {
            Upload u = images.get(i);
            if (u == null || u.image() == null || u.image().length == 0) {
                throw ServeException.invalid("images[" + i + "].image", "empty image");
            }
            total += u.image().length;
            if (total > settings.maxUploadBytes) {
                throw ServeException.invalid("images", "uploaded images exceed " + (settings.maxUploadBytes >> 10)
                        + " KiB (sdserve.train.max-upload-mb)");
            }
            if (u.caption() == null || u.caption().isBlank()) {
                throw ServeException.invalid("images[" + i + "].caption", "a caption is required");
            }
            if (u.caption().length() > 2000) {
                throw ServeException.invalid("images[" + i + "].caption", "longer than 2000 characters");
            }
        }
        List<BufferedImage> decoded = new ArrayList<>();
        for (int i = 0; i < images.size(); i++) {
            BufferedImage img;
            try {
                img = ImageIO.read(new ByteArrayInputStream(images.get(i).image()));
            } catch (IOException | RuntimeException e) {
                img = null;
            }
            if (img == null) {
                throw ServeException.invalid("images[" + i + "].image", "not a readable PNG or JPEG image");
            }
            decoded.add(img);
        }
        int rank = orDefault(r.rank(), 4);
        if (rank < 1 || rank > 128) {
            throw ServeException.invalid("rank", "must be in 1..128, got " + rank);
        }
        double alpha = r.alpha() == null || r.alpha() == 0 ? rank : r.alpha();
        if (!(alpha > 0) || alpha > 1024 || Double.isNaN(alpha)) {
            throw ServeException.invalid("alpha", "must be in (0, 1024], got " + alpha);
        }
        List<String> targets = r.targetModules() == null ? List.of() : r.targetModules();
        for (int i = 0; i < targets.size(); i++) {
            if (!LoraTrainer.TARGET_NAMES.contains(targets.get(i))) {
                throw ServeException.invalid("target_modules[" + i + "]", "unknown target '" + clean(targets.get(i))
                        + "' (known: " + String.join(", ", LoraTrainer.TARGET_NAMES)
                        + "; the text encoder is not trained)");
            }
        }
        int steps = orDefault(r.steps(), 500);
        if (steps < 1 || steps > 100_000) {
            throw ServeException.invalid("steps", "must be in 1..100000, got " + steps);
        }
        double lr = r.learningRate() == null || r.learningRate() == 0 ? 1e-4 : r.learningRate();
        if (!(lr > 0) || lr > 1) {
            throw ServeException.invalid("learning_rate", "must be in (0, 1], got " + lr);
        }
        int batch = orDefault(r.batchSize(), 1);
        if (batch < 1 || batch > 64) {
            throw ServeException.invalid("batch_size", "must be in 1..64, got " + batch);
        }
        int res = orDefault(r.resolution(), 512);
        if (res < 64 || res > 1024 || res % 64 != 0) {
            throw ServeException.invalid("resolution", "must be a multiple of 64 in 64..1024, got " + res);
        }
        long seed = r.seed() == null || r.seed() == 0 ? IDS.nextLong() & Long.MAX_VALUE : r.seed();
        String id;
        FineTuneJob.Spec spec;
        Entry e;
        synchronized (this) {
            if (loraExists.test(name)) {
                throw new ServeException(ServeException.Code.FAILED_PRECONDITION, "name",
                        "name: a LoRA named '" + name + "' already exists", null);
            }
            for (Entry o : jobs.values()) {
                if (o.spec.name().equals(name) && (o.state() == State.SUCCEEDED || !o.state().terminal())) {
                    throw new ServeException(ServeException.Code.FAILED_PRECONDITION, "name", "name: job " + o.spec.id()
                            + " already trains (or trained) a LoRA named '" + name + "'", null);
                }
            }
            long active = jobs.values().stream().filter(o -> !o.state().terminal()).count();
            if (active >= settings.maxActiveJobs) {
                throw ServeException.exhausted(active + " fine-tune jobs are queued or running (at most "
                        + settings.maxActiveJobs + ")", 60_000);
            }
            id = "ft-" + HexFormat.of().formatHex(randomBytes());
            spec = new FineTuneJob.Spec(id, name, base, folder, rank, alpha, steps, lr, batch, seed, res,
                    settings.checkpointEvery, targets, !images.isEmpty());
            try {
                Files.createDirectories(settings.stateDir);
                if (!images.isEmpty()) {
                    Path up = Files.createDirectories(settings.stateDir.resolve(FineTuneJob.uploadDirName(id)));
                    for (int i = 0; i < images.size(); i++) {
                        String stem = String.format(Locale.ROOT, "img%04d", i);
                        ImageIO.write(decoded.get(i), "png", up.resolve(stem + ".png").toFile());
                        Files.writeString(up.resolve(stem + ".txt"), images.get(i).caption().trim());
                    }
                }
                FineTuneJob.atomicWrite(settings.stateDir.resolve(id + ".json"), JSON.writeValueAsBytes(spec));
            } catch (IOException ex) {
                throw new UncheckedIOException("cannot persist fine-tune job " + id + " in " + settings.stateDir
                        + ": " + ex.getMessage(), ex);
            }
            e = new Entry(spec, System.currentTimeMillis());
            jobs.put(id, e);
            e.persist();
        }
        coordinator.submit(e);
        return e.status();
    }

    private static byte[] randomBytes() {
        byte[] b = new byte[6];
        IDS.nextBytes(b);
        return b;
    }

    private void checkFolder(String folder) {
        if (folder.length() > 500 || folder.chars().anyMatch(Character::isISOControl)) {
            throw ServeException.invalid("data_folder", "not a plain folder name");
        }
        if (folder.startsWith("/") || folder.contains("\\") || folder.contains(":") || Path.of(folder).isAbsolute()) {
            throw ServeException.invalid("data_folder", "'" + folder + "' must be a folder inside the data directory,"
                    + " not an absolute path");
        }
        for (String seg : folder.split("/", -1)) {
            if (seg.isEmpty() || seg.equals(".") || seg.equals("..")) {
                throw ServeException.invalid("data_folder", "'" + folder + "' has an empty, '.' or '..' path segment");
            }
        }
        Path root = settings.dataDir.toAbsolutePath().normalize();
        Path dir = root.resolve(folder).normalize();
        if (!dir.startsWith(root) || !Files.isDirectory(dir)) {
            throw ServeException.notFound("data_folder: no folder '" + folder + "' in the data directory");
        }
        try {
            if (!dir.toRealPath().startsWith(root.toRealPath())) {
                throw ServeException.invalid("data_folder", "'" + folder + "' is a link outside the data directory");
            }
            try (Stream<Path> s = Files.list(dir)) {
                if (s.noneMatch(p -> p.getFileName().toString().toLowerCase(Locale.ROOT).matches(".*\\.(png|jpe?g)"))) {
                    throw ServeException.invalid("data_folder", "'" + folder + "' has no .png/.jpg images");
                }
            }
        } catch (IOException ex) {
            throw ServeException.invalid("data_folder", "'" + folder + "' cannot be read: " + ex.getMessage());
        }
    }

    private static int orDefault(Integer v, int d) {
        return v == null || v == 0 ? d : v;
    }

    private static String clean(String s) {
        String c = s.replaceAll("\\p{Cntrl}", "?");
        return c.length() > 80 ? c.substring(0, 80) + "…" : c;
    }

    private void requireEnabled() {
        if (!settings.enabled) {
            throw new ServeException(ServeException.Code.UNAVAILABLE, "fine-tuning is disabled on this server "
                    + "(sdserve.train.enabled=false)");
        }
    }

    private synchronized Entry find(String id) {
        requireEnabled();
        Entry e = id == null ? null : jobs.get(id);
        if (e == null) {
            throw ServeException.notFound("no fine-tune job with id '" + (id == null ? "" : clean(id)) + "'");
        }
        return e;
    }

    public Info get(String id) {
        return find(id).info();
    }

    public synchronized List<Info> list() {
        requireEnabled();
        return jobs.values().stream().map(Entry::info).sorted(Comparator.comparingLong(Info::createdMillis)).toList();
    }

    /** Cancels at the next step boundary (at once if no step is in flight); the checkpoint is kept. */
    public Event cancel(String id) {
        Entry e = find(id);
        e.cancel();
        return e.status();
    }

    public Event pause(String id) {
        Entry e = find(id);
        e.setPaused(true);
        return e.status();
    }

    public Event resume(String id) {
        Entry e = find(id);
        e.setPaused(false);
        return e.status();
    }

    /**
     * Watches a job: {@code sink} gets the current status at once, then every event until the terminal one (after
     * which nothing more comes). Close the returned handle to stop early.
     */
    public AutoCloseable watch(String id, Consumer<Event> sink) {
        return find(id).watch(sink);
    }

    public Optional<Event> status(String id) {
        Entry e;
        synchronized (this) {
            e = jobs.get(id);
        }
        return Optional.ofNullable(e).map(Entry::status);
    }

    /** Releases the jobs' training graphs (a job still running resumes from its checkpoint after a restart). */
    public synchronized void close() {
        preparer.shutdownNow();
        for (Entry e : jobs.values()) {
            e.closeJob();
        }
    }

    // ------------------------------------------------------------------------------------------------- recovery

    record Persisted(String state, long step, float loss, String detail, String lora, boolean paused,
                             long created, List<Long> lossSteps, List<Float> losses) {
    }

    private void recover() {
        Path dir = settings.stateDir;
        if (!Files.isDirectory(dir)) {
            return;
        }
        List<Path> specs;
        try (Stream<Path> s = Files.list(dir)) {
            specs = s.filter(p -> {
                String n = p.getFileName().toString();
                return n.endsWith(".json") && !n.endsWith(".status.json");
            }).sorted().toList();
        } catch (IOException e) {
            throw new UncheckedIOException("cannot list fine-tune jobs in " + dir + ": " + e.getMessage(), e);
        }
        List<Entry> found = new ArrayList<>();
        for (Path p : specs) {
            String id = p.getFileName().toString().replaceFirst("\\.json$", "");
            try {
                FineTuneJob.Spec spec = FineTuneJob.readSpec(dir, id);
                Path sf = dir.resolve(id + ".status.json");
                Persisted st = Files.exists(sf) ? JSON.readValue(sf.toFile(), Persisted.class) : null;
                Entry e = new Entry(spec, st == null ? Files.getLastModifiedTime(p).toMillis() : st.created());
                if (st != null) {
                    e.restore(st);
                }
                found.add(e);
            } catch (IOException | RuntimeException ex) {
                LOG.log(Level.WARNING, "fine-tune job " + id + " in " + dir + " cannot be recovered: " + ex);
            }
        }
        found.sort(Comparator.comparingLong(e -> e.created));
        for (Entry e : found) {
            jobs.put(e.spec.id(), e);
            if (!e.state().terminal()) {
                LOG.info("fine-tune job " + e.spec.id() + " (" + e.spec.name() + ") resumes from step " + e.step
                        + (e.paused ? " (paused)" : ""));
                coordinator.submit(e);
            }
        }
    }

    // ------------------------------------------------------------------------------------------------- a job

    /** One job: its state machine, the coordinator's trainee, and its watchers. */
    private final class Entry implements TrainingCoordinator.Trainee {
        final FineTuneJob.Spec spec;
        final long created;
        private final ReentrantLock stepLock = new ReentrantLock();
        private final List<Consumer<Event>> watchers = new CopyOnWriteArrayList<>();
        private final List<Long> lossSteps = new ArrayList<>();
        private final List<Float> losses = new ArrayList<>();
        private volatile State state = State.QUEUED;
        private volatile boolean paused;
        private volatile boolean cancelRequested;
        private volatile long step;
        private volatile float loss = Float.NaN;
        private volatile long etaMillis = -1;
        private volatile String detail;
        private volatile String lora;
        private volatile FineTuneJob job;
        private volatile boolean preparing;

        Entry(FineTuneJob.Spec spec, long created) {
            this.spec = spec;
            this.created = created;
        }

        State state() {
            return state;
        }

        synchronized void restore(Persisted p) {
            State s = State.valueOf(p.state());
            paused = p.paused();
            if (s.terminal()) {
                state = s;
                step = p.step();
            } else {
                state = paused ? State.PAUSED : State.QUEUED;
                step = checkpointStep();
            }
            loss = p.loss();
            detail = p.detail();
            lora = p.lora();
            if (p.lossSteps() != null && p.losses() != null) {
                for (int i = 0; i < Math.min(p.lossSteps().size(), p.losses().size()); i++) {
                    if (s.terminal() || p.lossSteps().get(i) <= step) {
                        lossSteps.add(p.lossSteps().get(i));
                        losses.add(p.losses().get(i));
                    }
                }
            }
        }

        private long checkpointStep() {
            Path ck = settings.stateDir.resolve(spec.id() + ".ckpt.safetensors");
            try {
                return Files.exists(ck) ? Long.parseLong(TrainCheckpoint.metadata(ck).getOrDefault("sdserve.step", "0")) : 0;
            } catch (IOException | RuntimeException e) {
                return 0;
            }
        }

        synchronized Event status() {
            return new Event(spec.id(), spec.name(), state, step, spec.steps(), loss, etaMillis, lora, detail);
        }

        synchronized Info info() {
            return new Info(status(), spec, List.copyOf(lossSteps), List.copyOf(losses), created);
        }

        AutoCloseable watch(Consumer<Event> sink) {
            Event now;
            synchronized (this) {
                now = status();
                if (!now.state().terminal()) {
                    watchers.add(sink);
                }
            }
            sink.accept(now);
            return () -> watchers.remove(sink);
        }

        private void publish() {
            Event ev;
            synchronized (this) {
                ev = status();
            }
            try {
                progressHook.accept(ev);
            } catch (RuntimeException ex) {
                LOG.log(Level.FINE, "progress hook failed", ex);
            }
            for (Consumer<Event> w : watchers) {
                try {
                    w.accept(ev);
                } catch (RuntimeException ex) {
                    LOG.log(Level.FINE, "a fine-tune watcher failed", ex);
                    watchers.remove(w);
                }
            }
            if (ev.state().terminal()) {
                watchers.clear();
            }
        }

        void persist() {
            Persisted p;
            synchronized (this) {
                p = new Persisted(state.name(), step, loss, detail, lora, paused, created,
                        List.copyOf(lossSteps), List.copyOf(losses));
            }
            try {
                FineTuneJob.atomicWrite(settings.stateDir.resolve(spec.id() + ".status.json"), JSON.writeValueAsBytes(p));
            } catch (IOException e) {
                LOG.log(Level.WARNING, "cannot persist the status of fine-tune job " + spec.id(), e);
            }
        }

        void setPaused(boolean p) {
            synchronized (this) {
                if (state.terminal()) {
                    throw new ServeException(ServeException.Code.FAILED_PRECONDITION, "fine-tune job " + spec.id()
                            + " has ended (" + state + ")");
                }
                paused = p;
                if (p) {
                    state = State.PAUSED;
                } else if (state == State.PAUSED) {
                    state = job == null ? State.QUEUED : State.RUNNING;
                }
            }
            persist();
            publish();
        }

        void cancel() {
            synchronized (this) {
                if (state.terminal()) {
                    return;
                }
                cancelRequested = true;
            }
            if (stepLock.tryLock()) { // no step in flight: end now
                try {
                    finishCancel();
                } finally {
                    stepLock.unlock();
                }
            } // else the step in flight ends it
        }

        /** Under stepLock. */
        private void finishCancel() {
            if (state.terminal()) {
                return;
            }
            try {
                if (job != null) {
                    job.cancel();
                    job.runStep(); // checkpoints and marks it cancelled
                }
            } catch (IOException | RuntimeException e) {
                LOG.log(Level.WARNING, "checkpoint at cancel of " + spec.id() + " failed", e);
            }
            end(State.CANCELLED, "cancelled at step " + step);
        }

        private void end(State s, String why) {
            synchronized (this) {
                state = s;
                detail = why;
                etaMillis = 0;
            }
            closeJob();
            persist();
            publish();
        }

        synchronized void closeJob() {
            if (job != null) {
                job.close();
                job = null;
            }
        }

        // ------------------------------------------------------------- Trainee (on the scheduler thread)

        @Override
        public boolean runnable() {
            State s = state;
            if (s.terminal() || preparing) {
                return false;
            }
            if (job == null && !cancelRequested) {
                startPreparing();
                return false;
            }
            return !paused || cancelRequested;
        }

        /** Hands the preparation to the preparer thread; the job becomes runnable when it is done. */
        private synchronized void startPreparing() {
            if (preparing || job != null || state.terminal()) {
                return;
            }
            preparing = true;
            try {
                preparer.execute(() -> {
                    stepLock.lock();
                    try {
                        if (!state.terminal() && !cancelRequested) {
                            prepare();
                        }
                    } finally {
                        preparing = false;
                        stepLock.unlock();
                    }
                });
            } catch (java.util.concurrent.RejectedExecutionException e) {
                preparing = false; // closing
            }
        }

        @Override
        public boolean finished() {
            return state.terminal();
        }

        @Override
        public double predictedStepMillis() {
            FineTuneJob j = job;
            return j == null ? Double.NaN : j.secondsPerStep() * 1000;
        }

        @Override
        public boolean runStep() {
            stepLock.lock();
            try {
                if (state.terminal()) {
                    return false;
                }
                if (cancelRequested) {
                    finishCancel();
                    return false;
                }
                if (paused) {
                    return true;
                }
                if (job == null) {
                    return true; // being prepared (runnable() hands that to the preparer thread)
                }
                boolean more;
                try {
                    more = job.runStep();
                } catch (IOException | RuntimeException e) {
                    LOG.log(Level.WARNING, "fine-tune job " + spec.id() + " failed at step " + step, e);
                    end(State.FAILED, "step " + (step + 1) + " failed: " + e.getMessage());
                    return false;
                }
                if (cancelRequested && !state.terminal()) {
                    finishCancel();
                    return false;
                }
                return more;
            } finally {
                stepLock.unlock();
            }
        }

        /** Loads the model, encodes the data and builds the graph (resuming from a checkpoint if there is one). */
        private boolean prepare() {
            synchronized (this) {
                state = State.PREPARING;
            }
            publish();
            FineTuneJob j;
            try {
                TfModel m = models.apply(spec.baseModel());
                j = FineTuneJob.open(spec, m, settings.dataDir, settings.loraDir, settings.stateDir);
                j.warmUp(2);
            } catch (IOException | RuntimeException | LinkageError e) {
                LOG.log(Level.WARNING, "fine-tune job " + spec.id() + " cannot start", e);
                end(State.FAILED, "cannot start: " + e.getMessage());
                return false;
            }
            j.addListener(this::onProgress);
            synchronized (this) {
                job = j;
                step = j.stepsDone();
                state = paused ? State.PAUSED : State.RUNNING;
            }
            persist();
            publish();
            return true;
        }

        private void onProgress(FineTuneJob.Progress p) {
            switch (p.status()) {
                case RUNNING -> {
                    synchronized (this) {
                        step = p.step();
                        loss = p.loss();
                        etaMillis = Double.isNaN(p.etaSeconds()) ? -1 : Math.round(p.etaSeconds() * 1000);
                        lossSteps.add(p.step());
                        losses.add(p.loss());
                    }
                    if (p.step() % spec.checkpointEvery() == 0) {
                        persist();
                    }
                    publish();
                }
                case SUCCEEDED -> {
                    Path file = job.resultFile();
                    try {
                        onResult.accept(file);
                    } catch (RuntimeException e) {
                        LOG.log(Level.WARNING, "announcing LoRA " + file + " failed", e);
                    }
                    synchronized (this) {
                        lora = spec.name();
                    }
                    end(State.SUCCEEDED, "LoRA '" + spec.name() + "' written to " + file.getFileName());
                }
                case FAILED -> {
                    // reported by runStep's catch
                }
                case CANCELLED -> {
                    // finishCancel ends it
                }
            }
        }
    }
}
