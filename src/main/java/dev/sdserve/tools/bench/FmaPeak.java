package dev.sdserve.tools.bench;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * Measures the machine's FP32 FMA peak on N threads with its own microbenchmark: a small C program (resource
 * {@code fma_peak.c}) compiled at first use with {@code gcc -O3 -march=native -pthread}; every thread runs 12
 * independent FMA chains in vector registers. Both 512-bit (AVX-512) and 256-bit (AVX2/FMA) widths are measured
 * when the CPU has them and the faster counts (on AMD Zen 4 they are equal: 512-bit FMAs are executed as two
 * 256-bit halves). Each width is run a few times and the best run is kept, so a short burst of foreign load lowers
 * the figure only if it lasts the whole measurement.
 *
 * <p>Without gcc it falls back to a Java loop of scalar {@link Math#fma} chains, which is not vectorised and
 * understates the peak by the SIMD width; the method string says so.
 */
public final class FmaPeak {
    /** A measured peak and how it was obtained. */
    /**
     * @param gflops           FLOP over wall time, all threads (the peak available to a run right now)
     * @param perCoreCpuGflops FLOP per CPU-second of one thread (best run): the core's own peak, unaffected by other
     *                         processes sharing the cores; {@code threads ×} this is the quiet-machine peak
     */
    public record Peak(double gflops, int threads, String method, double perCoreCpuGflops) {
        public Peak(double gflops, int threads, String method) {
            this(gflops, threads, method, Double.NaN);
        }

        /** The quiet-machine peak of {@code threads} cores (per-core CPU-time rate × threads). */
        public double quietGflops() {
            return perCoreCpuGflops * threads;
        }

        @Override
        public String toString() {
            return String.format("%.1f GFLOP/s on %d threads (wall); %.1f GFLOP per CPU-second per core, i.e. %.1f on "
                    + "%d quiet cores (%s)", gflops, threads, perCoreCpuGflops, quietGflops(), threads, method);
        }
    }

    private static final String SOURCE = "fma_peak.c";
    private static volatile Path binary;

    private FmaPeak() {
    }

    /** Measures the peak on {@code threads} threads; takes about {@code 6 × runMillis} ms. */
    public static Peak measure(int threads, int runMillis) {
        if (threads < 1) {
            throw new IllegalArgumentException("threads must be >= 1, got " + threads);
        }
        Path exe;
        try {
            exe = compiled();
        } catch (IOException | InterruptedException e) {
            return javaFallback(threads, runMillis, "gcc unavailable: " + e.getMessage());
        }
        double best = 0, bestCpu = 0;
        String bestWidth = null;
        try {
            for (int width : new int[]{512, 256}) {
                // Calibrate: 1 thread, short run; then size so one run lasts about runMillis.
                double probe = run(exe, 1, width, 10_000_000L)[0];
                if (Double.isNaN(probe)) {
                    continue; // width not supported by this CPU
                }
                long flopPerIter = 12L * (width / 32) * 2;
                probe = Math.min(probe, 1000); // a single core does not exceed 1 TFLOP/s; guards against a bad probe
                long iters = Math.max(1_000_000L, (long) (probe * 1e9 * runMillis / 1000.0 / flopPerIter));
                for (int rep = 0; rep < 3; rep++) {
                    double[] r = run(exe, threads, width, iters);
                    double g = r[0];
                    bestCpu = Math.max(bestCpu, r[1]);
                    if (g > best) {
                        best = g;
                        bestWidth = width == 512 ? "AVX-512" : "AVX2 256-bit";
                    }
                }
            }
        } catch (IOException | InterruptedException e) {
            return javaFallback(threads, runMillis, "fma_peak failed: " + e.getMessage());
        }
        if (bestWidth == null) {
            return javaFallback(threads, runMillis, "CPU has no FMA vector unit known to fma_peak.c");
        }
        return new Peak(best, threads, "gcc -O3 -march=native C microbenchmark, " + bestWidth
                + " FMA, 12 independent chains/thread, best of 3", bestCpu);
    }

    private static double[] run(Path exe, int threads, int width, long iters) throws IOException, InterruptedException {
        Process p = new ProcessBuilder(exe.toString(), Integer.toString(threads), Integer.toString(width),
                Long.toString(iters)).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).trim();
        if (!p.waitFor(120, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            throw new IOException("fma_peak did not finish");
        }
        if (p.exitValue() != 0) {
            throw new IOException("fma_peak exited " + p.exitValue() + ": " + out);
        }
        if (out.equals("unsupported")) {
            return new double[]{Double.NaN, Double.NaN};
        }
        try {
            String[] f = out.split("\\s+");
            return new double[]{Double.parseDouble(f[0]), Double.parseDouble(f[1])};
        } catch (NumberFormatException | ArrayIndexOutOfBoundsException e) {
            throw new IOException("fma_peak printed unexpected output: " + out);
        }
    }

    /** Compiles the C source once per source version into the user's cache directory. */
    static synchronized Path compiled() throws IOException, InterruptedException {
        if (binary != null && Files.isExecutable(binary)) {
            return binary;
        }
        byte[] src;
        try (InputStream in = FmaPeak.class.getResourceAsStream(SOURCE)) {
            if (in == null) {
                throw new IOException("resource " + SOURCE + " missing from the classpath");
            }
            src = in.readAllBytes();
        }
        String hash;
        try {
            hash = HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(src)).substring(0, 16);
        } catch (java.security.NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
        Path dir = Path.of(System.getProperty("user.home"), ".cache", "sd-serve-fma", hash);
        Path exe = dir.resolve("fma_peak");
        if (!Files.isExecutable(exe)) {
            Files.createDirectories(dir);
            Path c = dir.resolve(SOURCE);
            Files.write(c, src);
            Path tmp = dir.resolve("fma_peak.tmp" + ProcessHandle.current().pid());
            List<String> cmd = new ArrayList<>(List.of("gcc", "-O3", "-march=native", "-pthread", "-o",
                    tmp.toString(), c.toString()));
            Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
            String log = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            if (!p.waitFor(60, TimeUnit.SECONDS) || p.exitValue() != 0) {
                throw new IOException("gcc failed: " + log.strip());
            }
            Files.move(tmp, exe, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        }
        binary = exe;
        return exe;
    }

    private static Peak javaFallback(int threads, int runMillis, String why) {
        double best = 0;
        for (int rep = 0; rep < 3; rep++) {
            best = Math.max(best, javaRun(threads, runMillis));
        }
        return new Peak(best, threads, "Java scalar Math.fma fallback (" + why
                + "); not vectorised, understates the peak");
    }

    private static double javaRun(int threads, int runMillis) {
        long iters = 20_000_000L * runMillis / 100;
        Thread[] ts = new Thread[threads];
        double[] sink = new double[threads];
        long t0 = System.nanoTime();
        for (int t = 0; t < threads; t++) {
            final int id = t;
            ts[t] = new Thread(() -> {
                float a0 = 1, a1 = 2, a2 = 3, a3 = 4, a4 = 5, a5 = 6, a6 = 7, a7 = 8;
                float m = 0.999999f, c = 1e-7f;
                for (long k = 0; k < iters; k++) {
                    a0 = Math.fma(a0, m, c); a1 = Math.fma(a1, m, c); a2 = Math.fma(a2, m, c);
                    a3 = Math.fma(a3, m, c); a4 = Math.fma(a4, m, c); a5 = Math.fma(a5, m, c);
                    a6 = Math.fma(a6, m, c); a7 = Math.fma(a7, m, c);
                }
                sink[id] = a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7;
            });
            ts[t].start();
        }
        for (Thread t : ts) {
            try {
                t.join();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return 0;
            }
        }
        double s = (System.nanoTime() - t0) / 1e9;
        return threads * iters * 8 * 2 / s / 1e9;
    }

    public static void main(String[] args) {
        int threads = args.length > 0 ? Integer.parseInt(args[0]) : Runtime.getRuntime().availableProcessors();
        System.out.println("fma peak: " + measure(threads, 200));
    }
}
