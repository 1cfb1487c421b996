package dev.sdserve.ops;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Native memory (TensorFlow's tensors, the weights, oneDNN's buffers) on 2 MiB transparent huge pages.
 *
 * <p>TensorFlow allocates through glibc's malloc, which by default asks for 4 KiB pages; where the kernel's THP mode is
 * {@code madvise} (the usual default), no huge page is used. A UNet call streams its 3.4 GB of weights and walks tens
 * of MB of activations, so TLB misses add up, and more so in a virtual machine. glibc ≥ 2.35 has the tunable
 * {@code glibc.malloc.hugetlb=1}: malloc then advises the kernel to back its heaps and large blocks with huge pages.
 * A tunable is read when the process starts, so it must be in the environment ({@code GLIBC_TUNABLES}) before the JVM
 * starts. The one-shot commands that run the engine in-process relaunch themselves with it
 * ({@link #relaunchEnvironment}); the server does not (a second JVM would stand between the process supervisor and
 * the server), it says at start-up how to set it ({@link #serverNote}) and the Kubernetes manifests set it.
 * {@code -Dsdserve.hugePages=off} keeps 4 KiB pages (for A/B runs).
 */
public final class HugePages {
    /** glibc's tunable; 1 = {@code madvise(MADV_HUGEPAGE)} on malloc's memory. */
    public static final String TUNABLE = "glibc.malloc.hugetlb";
    /** The variable a relaunched child finds set, holding the launching process's pid. */
    public static final String RELAUNCHED = "SDSERVE_RELAUNCHED";
    private static final String THP_ENABLED = "/sys/kernel/mm/transparent_hugepage/enabled";
    private static final Pattern SELECTED = Pattern.compile("\\[(\\w+)]");

    private HugePages() {
    }

    /**
     * The kernel's THP mode from the contents of {@code transparent_hugepage/enabled} ({@code always [madvise] never}
     * → {@code madvise}); empty when the file is missing or unreadable.
     */
    public static Optional<String> thpMode(String enabledFile) {
        if (enabledFile == null) {
            return Optional.empty();
        }
        Matcher m = SELECTED.matcher(enabledFile);
        return m.find() ? Optional.of(m.group(1)) : Optional.empty();
    }

    /** The value the environment gives the tunable ({@code GLIBC_TUNABLES=a=1:glibc.malloc.hugetlb=1}), if any. */
    public static Optional<String> tunable(Map<String, String> env) {
        String t = env.get("GLIBC_TUNABLES");
        if (t == null) {
            return Optional.empty();
        }
        for (String part : t.split(":")) {
            int eq = part.indexOf('=');
            if (eq > 0 && part.substring(0, eq).trim().equals(TUNABLE)) {
                return Optional.of(part.substring(eq + 1).trim());
            }
        }
        return Optional.empty();
    }

    /**
     * The variables to add for a child process that uses huge pages, or empty when this process should run as it is:
     * this process is itself a relaunched child, or huge pages are not {@link #missing} here.
     */
    public static Optional<Map<String, String>> relaunchEnvironment(Map<String, String> env, Optional<String> thpMode,
                                                                    String setting, long pid) {
        if (env.containsKey(RELAUNCHED) || !missing(env, thpMode, setting)) {
            return Optional.empty();
        }
        String existing = env.get("GLIBC_TUNABLES");
        Map<String, String> add = new LinkedHashMap<>();
        add.put("GLIBC_TUNABLES", (existing == null || existing.isBlank() ? "" : existing + ":") + TUNABLE + "=1");
        add.put(RELAUNCHED, Long.toString(pid));
        return Optional.of(add);
    }

    /**
     * Whether huge pages would help and are not there: the setting is {@code auto} (or unset), the environment does
     * not name the tunable (whatever its value: the user's choice) and the THP mode is {@code madvise}
     * ({@code always} already backs large mappings with huge pages, {@code never} has none to give; no mode: not
     * Linux). A setting other than {@code auto} or {@code off} is refused, naming {@code sdserve.hugePages}.
     */
    private static boolean missing(Map<String, String> env, Optional<String> thpMode, String setting) {
        if (setting != null && !setting.isBlank() && !setting.equals("auto")) {
            if (setting.equals("off")) {
                return false;
            }
            throw new IllegalArgumentException("sdserve.hugePages must be auto or off, not '" + setting + "'");
        }
        return tunable(env).isEmpty() && thpMode.equals(Optional.of("madvise"));
    }

    /** This machine's THP mode (empty off Linux). */
    public static Optional<String> thpMode() {
        try {
            return thpMode(Files.readString(Path.of(THP_ENABLED)));
        } catch (IOException | RuntimeException e) {
            return Optional.empty();
        }
    }

    /**
     * Relaunches this JVM (same executable, same arguments) with {@code add} in its environment, its standard streams
     * inherited, and returns the child's exit status. A signal that ends this process (Ctrl-C, SIGTERM) is passed on
     * to the child, which is waited for, and this process exits with the child's status. Empty when this JVM's command
     * line cannot be read (the caller then runs in-process).
     */
    public static Optional<Integer> relaunch(Map<String, String> add) throws IOException, InterruptedException {
        ProcessHandle.Info info = ProcessHandle.current().info();
        if (info.command().isEmpty() || info.arguments().isEmpty()) {
            return Optional.empty();
        }
        List<String> cmd = new ArrayList<>();
        cmd.add(info.command().get());
        cmd.addAll(List.of(info.arguments().get()));
        return Optional.of(run(cmd, add));
    }

    /** Runs {@code cmd} with {@code add} in its environment as {@link #relaunch} does; returns its exit status. */
    public static int run(List<String> cmd, Map<String, String> add) throws IOException, InterruptedException {
        ProcessBuilder pb = new ProcessBuilder(cmd).inheritIO();
        pb.environment().putAll(add);
        Process child = pb.start();
        Thread passOn = new Thread(() -> {
            if (child.isAlive()) { // this JVM is ending before the child: a signal
                child.destroy();
                try {
                    child.waitFor();
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
                Runtime.getRuntime().halt(child.isAlive() ? 143 : child.exitValue());
            }
        }, "sdserve-relaunch-signal");
        Runtime.getRuntime().addShutdownHook(passOn);
        int code = child.waitFor();
        try {
            Runtime.getRuntime().removeShutdownHook(passOn);
        } catch (IllegalStateException shuttingDown) {
            // the hook is already running; it returns at once, the child has ended
        }
        return code;
    }

    /** In a relaunched child: end when the launching process ends (killed outright, it cannot pass a signal on). */
    public static void followLauncher(Map<String, String> env) {
        String pid = env.get(RELAUNCHED);
        if (pid == null) {
            return;
        }
        try {
            ProcessHandle.of(Long.parseLong(pid.trim())).ifPresentOrElse(
                    p -> p.onExit().thenRun(() -> Runtime.getRuntime().halt(143)),
                    () -> Runtime.getRuntime().halt(143));
        } catch (NumberFormatException e) {
            // not ours; nothing to follow
        }
    }

    /**
     * For the server's start-up log: how to get huge pages when they are {@link #missing}; empty otherwise.
     */
    public static Optional<String> serverNote(Map<String, String> env, Optional<String> thpMode, String setting) {
        // the server never relaunches, so any setting but off only asks for the note
        if (!missing(env, thpMode, "off".equals(setting) ? "off" : null)) {
            return Optional.empty();
        }
        return Optional.of("native memory is on 4 KiB pages: start the server with GLIBC_TUNABLES=" + TUNABLE
                + "=1 in its environment (2 MiB pages for TensorFlow's memory; README, \"Huge pages\")");
    }

    /**
     * Resident anonymous memory and the part of it on huge pages, in bytes, from {@code /proc/self/smaps_rollup}
     * ({@code Anonymous}, {@code AnonHugePages}); empty where that file does not exist.
     */
    public static Optional<long[]> anonymousResident() {
        try {
            return parseRollup(Files.readString(Path.of("/proc/self/smaps_rollup")));
        } catch (IOException | RuntimeException e) {
            return Optional.empty();
        }
    }

    static Optional<long[]> parseRollup(String rollup) {
        long anon = -1, huge = -1;
        for (String line : rollup.split("\n")) {
            String[] f = line.trim().split("\\s+");
            if (f.length >= 2 && f[0].equals("Anonymous:")) {
                anon = Long.parseLong(f[1]) << 10;
            } else if (f.length >= 2 && f[0].equals("AnonHugePages:")) {
                huge = Long.parseLong(f[1]) << 10;
            }
        }
        return anon < 0 || huge < 0 ? Optional.empty() : Optional.of(new long[]{anon, huge});
    }
}
