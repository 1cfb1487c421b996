package dev.sdserve.model;

import dev.sdserve.job.ServeException;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.BasicFileAttributes;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.function.Predicate;
import java.util.stream.Stream;

/**
 * The models directory: checkpoints ({@code *.safetensors}) at its top, LoRAs ({@code *.safetensors}, any depth)
 * under {@code loras/}. Each file is listed with its architecture (detected from the safetensors header only), size,
 * storage dtype and civitai's AutoV2 short hash (first 10 hex digits of the SHA-256 of the whole file).
 *
 * <p>Hashes read whole files, so they are computed lazily ({@link #shortHash(Path)}) and cached by
 * (path, size, mtime); a listing shows the hash once known. Header facts are cached the same way. Files added or
 * removed are picked up by {@link #rescan()}, which a periodic task also runs ({@link #startPeriodicRescan}).
 *
 * <p>Names resolve only inside the directory: a name must be relative, without {@code ..} segments, backslashes or
 * control characters, and the file's real path (symlinks followed) must lie inside the directory's real path.
 * Extra models (the embedded model, a CLI {@code --model} path) are registered by name and listed first.
 */
public final class ModelRegistry implements ModelCatalog, AutoCloseable {
    public static final String EXT = ".safetensors";
    public static final String LORA_DIR = "loras";

    /** Facts read from a file's header, cached by (path, size, mtime). */
    public record FileInfo(Path path, long size, long mtime, String architecture, String dtype, int rank, String error) {
    }

    private record Stamp(Path path, long size, long mtime) {
    }

    private final Path dir;
    private final Map<String, Path> extra;
    private final String defaultModel;
    private final Predicate<String> resident;
    private final Map<Stamp, String> hashes = new ConcurrentHashMap<>();
    private final Map<Stamp, FileInfo> infos = new ConcurrentHashMap<>();
    /** Sidecar cards by the sidecar's stamp; a checkpoint without a sidecar has none. */
    private final Map<Stamp, ModelDefaults.Card> cards = new ConcurrentHashMap<>();
    private volatile Map<String, Path> models = Map.of();
    private volatile Map<String, Path> loras = Map.of();
    private ScheduledExecutorService timer;

    /**
     * @param dir          the models directory (may not exist yet: then nothing is listed until it does)
     * @param extra        models outside the directory, by name (listed first, resolved as given)
     * @param defaultModel the default model's name (flagged in listings)
     * @param resident     whether a model is loaded (for listings), or null
     */
    public ModelRegistry(Path dir, Map<String, Path> extra, String defaultModel, Predicate<String> resident) {
        this.dir = dir.toAbsolutePath().normalize();
        this.extra = new LinkedHashMap<>(extra);
        this.defaultModel = defaultModel;
        this.resident = resident == null ? n -> false : resident;
        rescan();
    }

    public Path dir() {
        return dir;
    }

    /** Re-lists the directory; returns true if the set of files changed. */
    public synchronized boolean rescan() {
        Map<String, Path> m = new TreeMap<>();
        Map<String, Path> l = new TreeMap<>();
        if (Files.isDirectory(dir)) {
            try (Stream<Path> s = Files.list(dir)) {
                s.filter(p -> p.getFileName().toString().endsWith(EXT) && Files.isRegularFile(p))
                        .filter(this::inside)
                        .forEach(p -> m.put(stem(p.getFileName().toString()), p));
            } catch (IOException e) {
                throw new UncheckedIOException("cannot list models in " + dir + ": " + e.getMessage(), e);
            }
            Path ld = dir.resolve(LORA_DIR);
            if (Files.isDirectory(ld) && inside(ld)) {
                try (Stream<Path> s = Files.walk(ld, 8)) {
                    s.filter(p -> p.getFileName().toString().endsWith(EXT) && Files.isRegularFile(p))
                            .filter(this::inside)
                            .forEach(p -> l.put(stem(ld.relativize(p).toString().replace('\\', '/')), p));
                } catch (IOException e) {
                    throw new UncheckedIOException("cannot list LoRAs in " + ld + ": " + e.getMessage(), e);
                }
            }
        }
        boolean changed = !m.equals(models) || !l.equals(loras);
        models = java.util.Collections.unmodifiableMap(m);
        loras = java.util.Collections.unmodifiableMap(l);
        // forget cached facts of files that are gone or changed
        infos.keySet().removeIf(k -> !current(k));
        hashes.keySet().removeIf(k -> !current(k));
        cards.keySet().removeIf(k -> !current(k));
        return changed;
    }

    private boolean current(Stamp k) {
        try {
            return stamp(k.path()).equals(k);
        } catch (IOException e) {
            return false;
        }
    }

    /** Rescans every {@code seconds} on a daemon thread (and computes missing hashes in the background). */
    public synchronized void startPeriodicRescan(long seconds) {
        if (timer != null || seconds <= 0) {
            return;
        }
        timer = Executors.newSingleThreadScheduledExecutor(r -> {
            Thread t = new Thread(r, "sdserve-model-rescan");
            t.setDaemon(true);
            return t;
        });
        timer.scheduleWithFixedDelay(() -> {
            try {
                rescan();
                for (Path p : allFiles()) {
                    shortHash(p);
                }
            } catch (RuntimeException e) {
                System.getLogger(ModelRegistry.class.getName()).log(System.Logger.Level.WARNING, "model rescan failed: " + e);
            }
        }, seconds, seconds, TimeUnit.SECONDS);
    }

    private List<Path> allFiles() {
        List<Path> out = new ArrayList<>(extra.values());
        out.addAll(models.values());
        out.addAll(loras.values());
        return out;
    }

    // ------------------------------------------------------------------ resolution

    /** Checkpoint names → files (extra models first, then the directory's). */
    public Map<String, Path> modelFiles() {
        Map<String, Path> out = new LinkedHashMap<>(extra);
        models.forEach(out::putIfAbsent);
        return out;
    }

    /** LoRA names (relative to {@code loras/}, without extension) → files. */
    public Map<String, Path> loraFiles() {
        return loras;
    }

    /** The checkpoint of that name; NOT_FOUND if unknown, INVALID_ARGUMENT for a name that leaves the directory. */
    public Path resolveModel(String name) {
        Path p = extra.get(name);
        if (p != null) {
            return p;
        }
        return resolveIn(dir, name, "model", models.keySet());
    }

    /** The LoRA of that name (may contain '/' for subfolders of loras/). */
    public Path resolveLora(String name) {
        return resolveIn(dir.resolve(LORA_DIR), name, "lora", loras.keySet());
    }

    /** Whether a checkpoint of that name exists now (the disk is asked: a file added since the last scan counts). */
    public boolean hasModel(String name) {
        return exists(() -> resolveModel(name));
    }

    /** Whether a LoRA of that name exists now (the disk is asked). INVALID_ARGUMENT for a name that leaves the directory. */
    public boolean hasLora(String name) {
        return exists(() -> resolveLora(name));
    }

    /**
     * The architecture a LoRA's keys are for ("sdxl", "sd1/sd2" or "unknown", from its header), or null when its
     * header cannot be read (the engine then reports the problem).
     */
    public String loraArchitecture(String name) {
        FileInfo i = info(resolveLora(name), true);
        return i.error() == null ? i.architecture() : null;
    }

    private static boolean exists(java.util.function.Supplier<Path> resolve) {
        try {
            resolve.get();
            return true;
        } catch (ServeException e) {
            if (e.code() == ServeException.Code.NOT_FOUND) {
                return false;
            }
            throw e;
        }
    }

    private Path resolveIn(Path base, String name, String field, java.util.Collection<String> known) {
        checkName(name, field);
        String file = name.endsWith(EXT) ? name : name + EXT;
        Path p = base.resolve(file).normalize();
        if (!p.startsWith(base) || (field.equals("model") && !p.getParent().equals(dir))) {
            throw ServeException.invalid(field, "'" + name + "' is not inside the models directory");
        }
        if (!Files.isRegularFile(p)) {
            java.util.Collection<String> all = field.equals("model") ? modelFiles().keySet() : known;
            throw new ServeException(ServeException.Code.NOT_FOUND, field, "unknown " + field + " '" + name + "' (known: "
                    + limit(all) + ")", null);
        }
        if (!inside(p)) {
            throw ServeException.invalid(field, "'" + name + "' is a link to a file outside the models directory");
        }
        return p;
    }

    static void checkName(String name, String field) {
        if (name == null || name.isBlank()) {
            throw ServeException.invalid(field, "empty name");
        }
        for (int i = 0; i < name.length(); i++) {
            if (Character.isISOControl(name.charAt(i))) {
                throw ServeException.invalid(field, "'" + name.replaceAll("\\p{Cntrl}", "?") + "' contains control characters");
            }
        }
        if (name.startsWith("/") || name.contains("\\") || name.contains(":") || Path.of(name).isAbsolute()) {
            throw ServeException.invalid(field, "'" + name + "' must be a plain name inside the models directory, not a path");
        }
        for (String seg : name.split("/", -1)) {
            if (seg.isEmpty() || seg.equals(".") || seg.equals("..")) {
                throw ServeException.invalid(field, "'" + name + "' has an empty, '.' or '..' path segment");
            }
        }
    }

    /** The real path (symlinks followed) lies inside the directory's real path. */
    private boolean inside(Path p) {
        try {
            return p.toRealPath().startsWith(dir.toRealPath());
        } catch (IOException e) {
            return false;
        }
    }

    private static String stem(String n) {
        return n.substring(0, n.length() - EXT.length());
    }

    private static String limit(java.util.Collection<String> names) {
        List<String> l = new ArrayList<>(names);
        return l.size() <= 20 ? l.toString() : l.subList(0, 20) + " … (" + (l.size() - 20) + " more)";
    }

    // ------------------------------------------------------------------ facts

    private static Stamp stamp(Path p) throws IOException {
        BasicFileAttributes a = Files.readAttributes(p, BasicFileAttributes.class);
        return new Stamp(p, a.size(), a.lastModifiedTime().toMillis());
    }

    /** Header facts of a file (cheap: reads only the safetensors header). Errors are reported, not thrown. */
    public FileInfo info(Path p, boolean lora) {
        Stamp s;
        try {
            s = stamp(p);
        } catch (IOException e) {
            return new FileInfo(p, -1, 0, "", "", 0, "cannot read: " + e.getMessage());
        }
        return infos.computeIfAbsent(s, k -> readInfo(k, lora));
    }

    private static FileInfo readInfo(Stamp s, boolean lora) {
        try (SafeTensors st = SafeTensors.open(s.path())) {
            if (lora) {
                int rank = 0;
                boolean te = false, unet = false, sdxl = false;
                for (var e : st.tensors().entrySet()) {
                    String k = e.getKey();
                    if (k.endsWith(".lora_down.weight")) {
                        rank = Math.max(rank, (int) e.getValue().shape()[0]);
                    }
                    te |= k.startsWith("lora_te_");
                    sdxl |= k.startsWith("lora_te1_") || k.startsWith("lora_te2_");
                    unet |= k.startsWith("lora_unet_");
                }
                String arch = sdxl ? "sdxl" : (te || unet) ? "sd1/sd2" : "unknown";
                return new FileInfo(s.path(), s.size(), s.mtime(), arch, dominantDtype(st), rank, null);
            }
            try (Checkpoint c = Checkpoint.open(s.path())) {
                return new FileInfo(s.path(), s.size(), s.mtime(), c.config().family(), c.storageType().name(), 0, null);
            }
        } catch (IOException | RuntimeException e) {
            return new FileInfo(s.path(), s.size(), s.mtime(), "", "", 0, e.getMessage());
        }
    }

    private static String dominantDtype(SafeTensors st) {
        Map<DType, Long> bytes = new LinkedHashMap<>();
        st.tensors().values().forEach(t -> bytes.merge(t.dtype(), t.length(), Long::sum));
        return bytes.entrySet().stream().max(Map.Entry.comparingByValue()).map(e -> e.getKey().name()).orElse("");
    }

    /** The cached AutoV2 hash, or "" if not computed yet. */
    public String cachedShortHash(Path p) {
        try {
            return hashes.getOrDefault(stamp(p), "");
        } catch (IOException e) {
            return "";
        }
    }

    /** civitai AutoV2: the first 10 hex digits (upper case, as civitai shows them) of the file's SHA-256. */
    public String shortHash(Path p) {
        Stamp s;
        try {
            s = stamp(p);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read " + p + ": " + e.getMessage(), e);
        }
        return hashes.computeIfAbsent(s, k -> sha256(k.path()).substring(0, 10).toUpperCase(Locale.ROOT));
    }

    /** Full SHA-256 of a file, lower-case hex. */
    public static String sha256(Path p) {
        try (InputStream in = Files.newInputStream(p)) {
            MessageDigest md = MessageDigest.getInstance("SHA-256");
            byte[] buf = new byte[1 << 20];
            for (int n; (n = in.read(buf)) > 0; ) {
                md.update(buf, 0, n);
            }
            return HexFormat.of().formatHex(md.digest());
        } catch (IOException e) {
            throw new UncheckedIOException("cannot hash " + p + ": " + e.getMessage(), e);
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    // ------------------------------------------------------------------ cards (description, recommended defaults)

    /**
     * The description and recommended defaults of a checkpoint: from the JSON beside it ({@link ModelDefaults}),
     * cached by the JSON's size and mtime.
     *
     * @throws IllegalArgumentException naming the file and member when the sidecar cannot be read or is wrong
     */
    public ModelDefaults.Card card(Path checkpoint) {
        var file = ModelConfigs.configFileFor(checkpoint);
        if (file.isEmpty()) {
            return ModelDefaults.Card.NONE;
        }
        Stamp s;
        try {
            s = stamp(file.get());
        } catch (IOException e) {
            return ModelDefaults.Card.NONE; // removed since the lookup
        }
        return cards.computeIfAbsent(s, k -> {
            try {
                return ModelDefaults.cardOf(checkpoint);
            } catch (IOException e) {
                throw new IllegalArgumentException(e.getMessage(), e);
            }
        });
    }

    /** The card of a model by name. NOT_FOUND for an unknown model. */
    public ModelDefaults.Card cardOf(String name) {
        return card(resolveModel(name));
    }

    /**
     * The recommended defaults of a model for admission: NOT_FOUND for an unknown model, FAILED_PRECONDITION naming
     * the file and member for a sidecar with wrong values.
     */
    public ModelDefaults defaults(String name) {
        try {
            return cardOf(name).defaults();
        } catch (IllegalArgumentException e) {
            throw new ServeException(ServeException.Code.FAILED_PRECONDITION, "model '" + name
                    + "': its recommended defaults cannot be read: " + e.getMessage());
        }
    }

    // ------------------------------------------------------------------ ModelCatalog

    @Override
    public List<ModelEntry> models() {
        List<ModelEntry> out = new ArrayList<>();
        for (var e : modelFiles().entrySet()) {
            FileInfo i = info(e.getValue(), false);
            String arch = i.error() != null ? "unreadable: " + i.error() : i.architecture();
            ModelDefaults.Card card;
            try {
                card = card(e.getValue());
            } catch (IllegalArgumentException ex) {
                card = new ModelDefaults.Card("(its JSON cannot be read: " + ex.getMessage() + ")", ModelDefaults.NONE);
            }
            out.add(new ModelEntry(e.getKey(), arch, i.size(), i.dtype(), cachedShortHash(e.getValue()),
                    resident.test(e.getKey()), e.getKey().equals(defaultModel), card.description(), card.defaults()));
        }
        return out;
    }

    @Override
    public List<LoraEntry> loras() {
        List<LoraEntry> out = new ArrayList<>();
        for (var e : loras.entrySet()) {
            FileInfo i = info(e.getValue(), true);
            out.add(new LoraEntry(e.getKey(), i.size(), cachedShortHash(e.getValue()), i.rank()));
        }
        return out;
    }

    @Override
    public synchronized void close() {
        if (timer != null) {
            timer.shutdownNow();
            timer = null;
        }
    }
}
