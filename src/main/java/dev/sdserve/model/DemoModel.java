package dev.sdserve.model;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.net.URISyntaxException;
import java.net.URL;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.security.DigestInputStream;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The embedded default model, {@value #NAME}: a small SD 1.x-architecture model trained on captioned pictures of
 * flat shapes (UNet 32/64/128/128, CLIP text encoder width 128, VAE 32/64/128/128; 42 MB of fp16; 128×128 images),
 * shipped inside the artifact as a resource. It draws what its prompt says in the grammar
 * {@code a [small|big] <colour> <shape> [place] [and a … <shape> [place]] [, <colour> background]}.
 *
 * <p>TensorFlow loads weights from a file, so inside a jar the resource is copied, once, into the cache directory
 * ({@link EmbeddedModel#cacheDir()}) as {@code sd-shapes-<first 10 hex of its SHA-256>.safetensors}, with its JSON
 * (architecture facts the shapes cannot tell, description, recommended defaults) beside it. The copy's SHA-256 is
 * checked against {@link #SHA256} while writing and a cached copy is re-checked at first use in each process (about
 * 0.1 s); a mismatch rewrites it. Run from a build directory (tests, {@code quarkus:dev}), the resource file is used
 * where it lies. No download is involved.
 */
public final class DemoModel {
    public static final String NAME = "sd-shapes";
    /** SHA-256 of the shipped file (shared/demo/README.md gives the same). */
    public static final String SHA256 = "79a2abcfdecc444ff5d5b29604c5b56e0e4d1c98d7bae79ee2c102d4861f6b5e";
    public static final long SIZE = 42_022_878L;
    static final String RESOURCE = "/dev/sdserve/model/sd-shapes.safetensors";
    static final String JSON_RESOURCE = "/dev/sdserve/model/sd-shapes.json";
    /** The 12 colours and 5 shapes of its caption grammar (shared/demo/README.md). */
    public static final java.util.List<String> COLOURS = java.util.List.of("red", "green", "blue", "yellow", "orange",
            "purple", "pink", "white", "black", "cyan", "gray", "brown");
    public static final java.util.List<String> SHAPES = java.util.List.of("circle", "square", "triangle", "diamond", "ring");

    private static final Map<Path, Path> VERIFIED = new ConcurrentHashMap<>();

    private DemoModel() {
    }

    /** The checkpoint file (in the default cache directory when it must be copied out of the jar). */
    public static Path path() throws IOException {
        return path(EmbeddedModel.cacheDir());
    }

    /** The checkpoint file; when the resource lies in a jar it is copied into {@code cacheDir} once. */
    public static synchronized Path path(Path cacheDir) throws IOException {
        URL url = DemoModel.class.getResource(RESOURCE);
        if (url == null) {
            throw new IOException("the embedded model " + RESOURCE + " is missing from the build");
        }
        if ("file".equals(url.getProtocol())) {
            Path p;
            try {
                p = Path.of(url.toURI());
            } catch (URISyntaxException e) {
                throw new IOException("bad resource URL " + url, e);
            }
            if (VERIFIED.putIfAbsent(p, p) == null) {
                String sha = ModelRegistry.sha256(p);
                if (!sha.equals(SHA256)) {
                    VERIFIED.remove(p);
                    throw new IOException(p + " has SHA-256 " + sha + ", expected " + SHA256
                            + " (a damaged checkout? `git lfs` is not used: the file is committed as is)");
                }
            }
            return p;
        }
        return unpack(cacheDir, () -> resource(RESOURCE));
    }

    /** Opens the bytes to copy (the resource; tests pass others). */
    interface Source {
        InputStream open() throws IOException;
    }

    /**
     * The cached copy in {@code cacheDir}: written from {@code source} (checked against {@link #SHA256}) unless a
     * copy with that hash is already there. Safe against concurrent callers in this and other processes.
     */
    static synchronized Path unpack(Path cacheDir, Source source) throws IOException {
        Path dir = cacheDir.toAbsolutePath().normalize();
        Path target = dir.resolve(NAME + "-" + SHA256.substring(0, 10) + ".safetensors");
        if (VERIFIED.containsKey(target) && Files.size(target) == SIZE) {
            return target;
        }
        Files.createDirectories(dir);
        try (FileChannel ch = FileChannel.open(dir.resolve(target.getFileName() + ".lock"),
                StandardOpenOption.CREATE, StandardOpenOption.WRITE);
             FileLock ignored = ch.lock()) {
            writeJson(RandomCheckpoint.configPath(target));
            if (!(Files.isRegularFile(target) && Files.size(target) == SIZE && ModelRegistry.sha256(target).equals(SHA256))) {
                copyChecked(target, source);
            }
        }
        VERIFIED.put(target, target);
        return target;
    }

    /** Copies the resource to a temporary file beside {@code target}, checks its SHA-256, then moves it in place. */
    private static void copyChecked(Path target, Source source) throws IOException {
        Path tmp = target.resolveSibling(target.getFileName() + ".tmp" + ProcessHandle.current().pid());
        MessageDigest md;
        try {
            md = MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
        try (InputStream in = new DigestInputStream(source.open(), md);
             OutputStream out = Files.newOutputStream(tmp)) {
            in.transferTo(out);
        } catch (IOException e) {
            Files.deleteIfExists(tmp);
            throw new IOException("cannot write the embedded model to " + tmp + ": " + e.getMessage(), e);
        }
        String sha = HexFormat.of().formatHex(md.digest());
        if (!sha.equals(SHA256)) {
            Files.deleteIfExists(tmp);
            throw new IOException("the embedded model in the jar has SHA-256 " + sha + ", expected " + SHA256
                    + ": the artifact is damaged");
        }
        Files.move(tmp, target, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
    }

    private static void writeJson(Path json) throws IOException {
        byte[] bytes;
        try (InputStream in = resource(JSON_RESOURCE)) {
            bytes = in.readAllBytes();
        }
        if (Files.isRegularFile(json) && Arrays.equals(Files.readAllBytes(json), bytes)) {
            return;
        }
        Path tmp = json.resolveSibling(json.getFileName() + ".tmp" + ProcessHandle.current().pid());
        Files.write(tmp, bytes);
        Files.move(tmp, json, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
    }

    private static InputStream resource(String name) throws IOException {
        InputStream in = DemoModel.class.getResourceAsStream(name);
        if (in == null) {
            throw new IOException("the embedded model resource " + name + " is missing from the build");
        }
        return in;
    }

    /** Its description and recommended defaults (from the JSON shipped beside it). */
    public static ModelDefaults.Card card() {
        try (InputStream in = resource(JSON_RESOURCE)) {
            return ModelDefaults.cardFromJson(new com.fasterxml.jackson.databind.ObjectMapper().readTree(in));
        } catch (IOException e) {
            throw new UncheckedIOException(e.getMessage(), e);
        }
    }
}
