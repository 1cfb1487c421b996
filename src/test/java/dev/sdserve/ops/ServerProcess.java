package dev.sdserve.ops;

import java.io.IOException;
import java.net.ServerSocket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/** The packaged server (target/quarkus-app/quarkus-run.jar) as a child process on free ports, for *IT tests. */
final class ServerProcess implements AutoCloseable {
    final int httpPort;
    final int grpcPort;
    final Process process;
    final Path log;
    // HTTP/1.1 like curl and Kubernetes probes (the JDK client would otherwise upgrade to h2c)
    private final HttpClient http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1)
            .connectTimeout(Duration.ofSeconds(2)).build();

    static Path appDir() {
        String p = System.getProperty("sdserve.app.dir");
        Path dir = p != null ? Path.of(p) : Path.of("target", "quarkus-app");
        if (!Files.isRegularFile(dir.resolve("quarkus-run.jar"))) {
            throw new IllegalStateException("no packaged app at " + dir.toAbsolutePath() + ": run `mvn package` (failsafe runs after it)");
        }
        return dir;
    }

    static String java() {
        return Path.of(System.getProperty("java.home"), "bin", "java").toString();
    }

    static int freePort() throws IOException {
        try (ServerSocket s = new ServerSocket(0)) {
            s.setReuseAddress(true);
            return s.getLocalPort();
        }
    }

    /** Starts the server with the fake engine and the given extra -D properties; waits until ready. */
    static ServerProcess start(String name, Duration readyWithin, String... props) throws Exception {
        return startEngine(name, readyWithin, "fake", "512m", props);
    }

    /**
     * Starts the server with {@code engine} ({@code fake} or {@code tf}), heap {@code xmx} and the given extra -D
     * properties; waits until ready.
     */
    static ServerProcess startEngine(String name, Duration readyWithin, String engine, String xmx, String... props) throws Exception {
        return launch(name, engine, xmx, Map.of(), props).awaitReady(readyWithin);
    }

    /** Starts the server process (environment variables added to this JVM's) without waiting for it. */
    static ServerProcess launch(String name, String engine, String xmx, Map<String, String> env, String... props) throws IOException {
        int httpPort = freePort(), grpcPort = freePort();
        List<String> cmd = new ArrayList<>(List.of(java(), "-Xmx" + xmx, "-Dsdserve.engine=" + engine,
                "-Dsdserve.auth.enabled=false", "-Dquarkus.http.port=" + httpPort, "-Dquarkus.grpc.server.port=" + grpcPort));
        String javacpp = System.getProperty("org.bytedeco.javacpp.cachedir");
        if (javacpp != null) {
            cmd.add("-Dorg.bytedeco.javacpp.cachedir=" + javacpp); // TF's unpacked native libraries, shared
        }
        cmd.addAll(List.of(props));
        cmd.addAll(List.of("-jar", appDir().resolve("quarkus-run.jar").toString()));
        Path logDir = Path.of("target", "it-logs");
        Files.createDirectories(logDir);
        Path log = logDir.resolve(name + ".log");
        ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(log.toFile());
        // as the Kubernetes manifests and the image run it: TensorFlow's memory on huge pages (README, "Huge pages")
        pb.environment().putIfAbsent("GLIBC_TUNABLES", HugePages.TUNABLE + "=1");
        pb.environment().putAll(env);
        return new ServerProcess(httpPort, grpcPort, pb.start(), log);
    }

    /** Waits until the server reports ready; fails with its log if it exits or takes too long. */
    ServerProcess awaitReady(Duration readyWithin) throws Exception {
        long end = System.nanoTime() + readyWithin.toNanos();
        while (System.nanoTime() < end) {
            if (!process.isAlive()) {
                throw new IllegalStateException("server exited with " + process.exitValue() + " before it was ready; log:\n" + logText());
            }
            if (status("/q/health/ready") == 200) {
                return this;
            }
            Thread.sleep(250);
        }
        close();
        throw new IllegalStateException("server not ready within " + readyWithin + "; log:\n" + logText());
    }

    private ServerProcess(int httpPort, int grpcPort, Process process, Path log) {
        this.httpPort = httpPort;
        this.grpcPort = grpcPort;
        this.process = process;
        this.log = log;
    }

    /** HTTP status of a GET, or -1 when the server does not answer. */
    int status(String path) {
        try {
            return http.send(HttpRequest.newBuilder(URI.create("http://localhost:" + httpPort + path))
                    .timeout(Duration.ofSeconds(3)).build(), HttpResponse.BodyHandlers.discarding()).statusCode();
        } catch (IOException e) {
            return -1;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return -1;
        }
    }

    String get(String path) throws IOException, InterruptedException {
        return http.send(HttpRequest.newBuilder(URI.create("http://localhost:" + httpPort + path))
                .timeout(Duration.ofSeconds(5)).build(), HttpResponse.BodyHandlers.ofString()).body();
    }

    HttpResponse<String> post(String path, String json) throws IOException, InterruptedException {
        return http.send(HttpRequest.newBuilder(URI.create("http://localhost:" + httpPort + path))
                .timeout(Duration.ofSeconds(5)).header("content-type", "application/json")
                .POST(HttpRequest.BodyPublishers.ofString(json)).build(), HttpResponse.BodyHandlers.ofString());
    }

    String logText() {
        try {
            return Files.readString(log);
        } catch (IOException e) {
            return "(no log: " + e.getMessage() + ")";
        }
    }

    /** SIGTERM (what Kubernetes sends). */
    void sigterm() {
        process.toHandle().destroy();
    }

    @Override
    public void close() throws InterruptedException {
        if (process.isAlive()) {
            process.destroy();
            if (!process.waitFor(30, TimeUnit.SECONDS)) {
                process.destroyForcibly();
            }
        }
    }
}
