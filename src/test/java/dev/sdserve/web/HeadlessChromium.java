package dev.sdserve.web;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Assumptions;

import java.io.IOException;
import java.net.ServerSocket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Base64;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * Headless Debian Chromium driven through chromedriver's W3C WebDriver HTTP API (java.net.http + Jackson; no
 * Selenium). Installs {@code chromium} and {@code chromium-driver} with apt-get when they are missing and the test
 * runs as root; otherwise the calling test is skipped with a message saying how to enable it.
 */
final class HeadlessChromium implements AutoCloseable {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final Path CHROMIUM = Path.of("/usr/bin/chromium");
    private static final Path DRIVER = Path.of("/usr/bin/chromedriver");

    private final HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();
    private final Process driver;
    private final String base;
    private final String session;

    private HeadlessChromium(Process driver, String base, String session) {
        this.driver = driver;
        this.base = base;
        this.session = session;
    }

    /** Makes sure Chromium and chromedriver are installed, or skips the test. */
    static void ensureInstalled() throws IOException, InterruptedException {
        if (Files.isExecutable(CHROMIUM) && Files.isExecutable(DRIVER)) {
            return;
        }
        boolean root = "root".equals(System.getProperty("user.name"));
        boolean apt = Files.isExecutable(Path.of("/usr/bin/apt-get"));
        Assumptions.assumeTrue(root && apt, "web page test skipped: /usr/bin/chromium and /usr/bin/chromedriver are missing "
                + "and cannot be installed here (needs root and apt-get); install Debian's chromium and chromium-driver");
        System.err.println("installing chromium and chromium-driver with apt-get (first run only)…");
        for (List<String> cmd : List.of(List.of("apt-get", "update", "-qq"),
                List.of("apt-get", "install", "-y", "-qq", "--no-install-recommends", "chromium", "chromium-driver"))) {
            ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true)
                    .redirectOutput(ProcessBuilder.Redirect.DISCARD);
            pb.environment().put("DEBIAN_FRONTEND", "noninteractive");
            Process p = pb.start();
            if (!p.waitFor(15, TimeUnit.MINUTES) || p.exitValue() != 0) {
                p.destroyForcibly();
                Assumptions.abort("web page test skipped: `" + String.join(" ", cmd) + "` failed; install Debian's "
                        + "chromium and chromium-driver by hand");
            }
        }
        Assumptions.assumeTrue(Files.isExecutable(CHROMIUM) && Files.isExecutable(DRIVER),
                "web page test skipped: chromium installed but /usr/bin/chromium or /usr/bin/chromedriver missing");
    }

    static HeadlessChromium start(int width, int height) throws IOException, InterruptedException {
        ensureInstalled();
        int port;
        try (ServerSocket s = new ServerSocket(0)) {
            port = s.getLocalPort();
        }
        Process p = new ProcessBuilder(DRIVER.toString(), "--port=" + port, "--allowed-ips=127.0.0.1")
                .redirectErrorStream(true).redirectOutput(ProcessBuilder.Redirect.DISCARD).start();
        String base = "http://127.0.0.1:" + port;
        HttpClient http = HttpClient.newHttpClient();
        long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
        while (true) {
            try {
                HttpResponse<String> r = http.send(HttpRequest.newBuilder(URI.create(base + "/status")).build(),
                        HttpResponse.BodyHandlers.ofString());
                if (JSON.readTree(r.body()).at("/value/ready").asBoolean()) {
                    break;
                }
            } catch (IOException notYet) {
                // starting
            }
            if (System.nanoTime() > until || !p.isAlive()) {
                p.destroyForcibly();
                throw new IOException("chromedriver did not become ready on port " + port);
            }
            Thread.sleep(100);
        }
        Map<String, Object> caps = Map.of("capabilities", Map.of("alwaysMatch", Map.of(
                "browserName", "chrome",
                "goog:chromeOptions", Map.of("binary", CHROMIUM.toString(), "args", List.of(
                        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                        "--window-size=" + width + "," + height, "--hide-scrollbars")))));
        HttpResponse<String> r = http.send(HttpRequest.newBuilder(URI.create(base + "/session"))
                .header("content-type", "application/json")
                .POST(HttpRequest.BodyPublishers.ofString(JSON.writeValueAsString(caps))).build(),
                HttpResponse.BodyHandlers.ofString());
        JsonNode v = JSON.readTree(r.body()).get("value");
        if (r.statusCode() != 200 || v.get("sessionId") == null) {
            p.destroyForcibly();
            throw new IOException("chromedriver could not start Chromium: " + r.body());
        }
        return new HeadlessChromium(p, base, v.get("sessionId").asText());
    }

    private JsonNode call(String method, String path, Object body) throws IOException, InterruptedException {
        HttpRequest.Builder b = HttpRequest.newBuilder(URI.create(base + "/session/" + session + path))
                .timeout(Duration.ofSeconds(60)).header("content-type", "application/json");
        b.method(method, body == null ? HttpRequest.BodyPublishers.noBody()
                : HttpRequest.BodyPublishers.ofString(JSON.writeValueAsString(body)));
        HttpResponse<String> r = http.send(b.build(), HttpResponse.BodyHandlers.ofString());
        JsonNode v = JSON.readTree(r.body()).get("value");
        if (r.statusCode() != 200) {
            throw new IOException(method + " " + path + " → " + r.statusCode() + ": " + r.body());
        }
        return v;
    }

    void open(String url) throws IOException, InterruptedException {
        call("POST", "/url", Map.of("url", url));
    }

    /** Runs {@code script} until it returns true or the time is up; gives back its last result. */
    JsonNode waitFor(String script, long timeoutMillis) throws Exception {
        long until = System.currentTimeMillis() + timeoutMillis;
        while (true) {
            JsonNode v = js(script);
            if (v.asBoolean() || System.currentTimeMillis() > until) {
                return v;
            }
            Thread.sleep(50);
        }
    }

    /** Runs a script in the page ({@code return …}) and gives back its JSON result. */
    JsonNode js(String script, Object... args) throws IOException, InterruptedException {
        return call("POST", "/execute/sync", Map.of("script", script, "args", List.of(args)));
    }

    private String element(String css) throws IOException, InterruptedException {
        JsonNode v = call("POST", "/element", Map.of("using", "css selector", "value", css));
        return v.elements().next().asText();
    }

    void type(String css, String text) throws IOException, InterruptedException {
        call("POST", "/element/" + element(css) + "/value", Map.of("text", text));
    }

    void click(String css) throws IOException, InterruptedException {
        call("POST", "/element/" + element(css) + "/click", Map.of());
    }

    byte[] screenshot() throws IOException, InterruptedException {
        return Base64.getDecoder().decode(call("GET", "/screenshot", null).asText());
    }

    @Override
    public void close() {
        try {
            call("DELETE", "", null);
        } catch (Exception ignored) {
            // the driver is going away anyway
        }
        driver.destroy();
        try {
            if (!driver.waitFor(5, TimeUnit.SECONDS)) {
                driver.destroyForcibly();
            }
        } catch (InterruptedException e) {
            driver.destroyForcibly();
            Thread.currentThread().interrupt();
        }
    }
}
