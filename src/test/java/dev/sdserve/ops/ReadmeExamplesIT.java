package dev.sdserve.ops;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.*;

/**
 * The README's client examples, run as written against the packaged server, so the README cannot drift from the
 * product. Every ```bash block that calls {@code curl} or {@code buf} carries a marker comment right above it:
 * {@code <!-- readme-test: server=off|on [expect="regex"] [creates=file] -->} runs it with bash (set -eo pipefail)
 * against a server with auth off / with the README's own keys, checks the exit code, that stdout matches
 * {@code expect} and that {@code creates} is a PNG; {@code start=on} is the README's command that starts the server
 * with keys: its environment assignments start the second server. The one change made to a command is the ports:
 * {@code localhost:8080} / {@code :9000} become this run's free ports (the machine is shared).
 *
 * <p>Tools: {@code buf} from npm (installed into target/npm-tools at first run, about 20 s), {@code jq} and
 * {@code curl} from Debian (installed with apt-get when missing and running as root).
 */
class ReadmeExamplesIT {
    static final Path README = Path.of("README.md");
    static final String BUF_VERSION = "1.75.0";
    static final Pattern BLOCK = Pattern.compile("(?:<!-- readme-test:([^>]*)-->\\s*\\n)?```bash\\n(.*?)```", Pattern.DOTALL);
    static final Pattern ATTR = Pattern.compile("(\\w+)=(\"((?:[^\"\\\\]|\\\\.)*)\"|\\S+)");

    /** A ```bash block: its line, marker attributes (empty: no marker) and code. */
    record Block(int line, Map<String, String> attrs, String code) {
        boolean clientExample() {
            return code.contains("curl ") || code.contains("buf ");
        }
    }

    static List<Block> blocks() throws IOException {
        String text = Files.readString(README);
        List<Block> out = new ArrayList<>();
        Matcher m = BLOCK.matcher(text);
        while (m.find()) {
            Map<String, String> attrs = new LinkedHashMap<>();
            if (m.group(1) != null) {
                Matcher a = ATTR.matcher(m.group(1));
                while (a.find()) {
                    attrs.put(a.group(1), a.group(3) != null ? a.group(3).replace("\\\"", "\"").replace("\\\\", "\\") : a.group(2));
                }
                assertFalse(attrs.isEmpty(), "readme-test marker without attributes at offset " + m.start());
            }
            int line = (int) text.substring(0, m.start(2)).chars().filter(c -> c == '\n').count() + 1;
            out.add(new Block(line, attrs, m.group(2)));
        }
        return out;
    }

    static Path tools;
    static Path work;
    static ServerProcess off;
    static ServerProcess on;

    @BeforeAll
    static void setUp() throws Exception {
        long t0 = System.nanoTime();
        tools = Path.of("target", "npm-tools").toAbsolutePath();
        if (!Files.isExecutable(tools.resolve("node_modules/.bin/buf"))) {
            Files.createDirectories(tools);
            sh(tools, Map.of(), "npm install --prefix " + tools + " --no-save --no-audit --no-fund @bufbuild/buf@" + BUF_VERSION,
                    Duration.ofMinutes(5));
        }
        for (String tool : List.of("jq", "curl")) {
            if (sh(tools, Map.of(), "command -v " + tool, Duration.ofSeconds(10)).code != 0) {
                assertEquals("root", System.getProperty("user.name"), tool + " is missing: install Debian's " + tool);
                sh(tools, Map.of(), "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq " + tool,
                        Duration.ofMinutes(10));
            }
        }
        System.err.printf("ReadmeExamplesIT: tools ready in %.1f s%n", (System.nanoTime() - t0) / 1e9);
        work = Files.createTempDirectory("readme-examples");
        // the models the examples name: the fake engine's v1-5-pruned-emaonly and a LoRA file called film
        Path models = work.resolve("models");
        Files.createDirectories(models.resolve("loras"));
        Files.copy(Path.of("src/test/resources/test-models/loras/film.safetensors"), models.resolve("loras/film.safetensors"));
        String[] props = {"-Dsdserve.fake-models=v1-5-pruned-emaonly,my-model", "-Dsdserve.models-dir=" + models,
                "-Dsdserve.fake-step-millis=5"};
        off = ServerProcess.launch("readme-auth-off", "fake", "512m", Map.of(), props);
        Block start = blocks().stream().filter(b -> "on".equals(b.attrs().get("start"))).findFirst()
                .orElseThrow(() -> new AssertionError("README has no <!-- readme-test: start=on --> block"));
        Map<String, String> env = envAssignments(start.code());
        assertTrue(env.containsKey("SDSERVE_AUTH_KEYS"), "the README's start command gives keys: " + start.code());
        assertTrue(start.code().contains("java -jar target/quarkus-app/quarkus-run.jar serve"), start.code());
        List<String> onProps = new ArrayList<>(List.of(props));
        onProps.add("-Dsdserve.auth.enabled=true"); // the packaged default (prod profile); ServerProcess turns it off
        on = ServerProcess.launch("readme-auth-on", "fake", "512m", env, onProps.toArray(String[]::new));
        off.awaitReady(Duration.ofSeconds(180));
        on.awaitReady(Duration.ofSeconds(180));
        System.err.printf("ReadmeExamplesIT: servers ready after %.1f s%n", (System.nanoTime() - t0) / 1e9);
    }

    @AfterAll
    static void tearDown() throws Exception {
        if (off != null) {
            off.close();
        }
        if (on != null) {
            on.close();
        }
    }

    /** {@code A=1 B=2 \ java …}: the leading environment assignments of a command. */
    static Map<String, String> envAssignments(String code) {
        Map<String, String> env = new LinkedHashMap<>();
        Matcher m = Pattern.compile("\\G\\s*(?:\\\\\\n)?\\s*([A-Z_][A-Z0-9_]*)=(\\S+)").matcher(code);
        while (m.find()) {
            env.put(m.group(1), m.group(2));
        }
        return env;
    }

    record Result(int code, String out, String err) {
    }

    static Result sh(Path dir, Map<String, String> env, String script, Duration timeout) throws Exception {
        ProcessBuilder pb = new ProcessBuilder("bash", "-c", "set -eo pipefail\n" + script).directory(dir.toFile());
        pb.environment().putAll(env);
        Path out = Files.createTempFile("readme-out", ".txt"), err = Files.createTempFile("readme-err", ".txt");
        pb.redirectOutput(out.toFile()).redirectError(err.toFile());
        Process p = pb.start();
        if (!p.waitFor(timeout.toMillis(), TimeUnit.MILLISECONDS)) {
            p.destroyForcibly();
            fail("timed out after " + timeout + ": " + script + "\nstdout: " + Files.readString(out) + "\nstderr: " + Files.readString(err));
        }
        Result r = new Result(p.exitValue(), Files.readString(out), Files.readString(err));
        Files.delete(out);
        Files.delete(err);
        return r;
    }

    @Test
    void everyClientExampleIsMarkedAndRun() throws Exception {
        List<Block> blocks = blocks();
        List<String> unmarked = new ArrayList<>();
        int run = 0;
        for (Block b : blocks) {
            if (b.clientExample() && b.attrs().isEmpty()) {
                unmarked.add("README.md:" + b.line() + ": " + b.code().lines().findFirst().orElse(""));
            }
            run += b.attrs().containsKey("server") ? 1 : 0;
        }
        assertTrue(unmarked.isEmpty(), "client examples without a readme-test marker (add one, with skip=\"reason\" if it "
                + "cannot run here):\n" + String.join("\n", unmarked));
        assertTrue(run >= 6, "examples run: " + run);
    }

    @Test
    void theExamplesRunAsWrittenWithAuthOffAndWithKeys() throws Exception {
        List<String> failures = new ArrayList<>();
        int ran = 0;
        for (Block b : blocks()) {
            String server = b.attrs().get("server");
            if (server == null) {
                continue;
            }
            ServerProcess s = switch (server) {
                case "off" -> off;
                case "on" -> on;
                default -> throw new AssertionError("README.md:" + b.line() + ": server=" + server);
            };
            String code = b.code();
            assertTrue(code.contains("localhost:8080") || code.contains("localhost:9000"), "README.md:" + b.line());
            String local = code.replace("localhost:8080", "localhost:" + s.httpPort).replace("localhost:9000", "localhost:" + s.grpcPort);
            assertFalse(Pattern.compile("localhost:(?!" + s.httpPort + "|" + s.grpcPort + ")\\d+").matcher(local).find(),
                    "README.md:" + b.line() + " uses another port");
            Path dir = Files.createDirectories(work.resolve("block-" + b.line()));
            long t0 = System.nanoTime();
            Result r = sh(dir, Map.of("PATH", tools.resolve("node_modules/.bin") + ":" + System.getenv("PATH")), local,
                    Duration.ofMinutes(3));
            ran++;
            String where = "README.md:" + b.line() + " (server " + server + ", " + Math.round((System.nanoTime() - t0) / 1e6) + " ms)";
            System.err.println("ReadmeExamplesIT: " + where + " exit " + r.code());
            if (r.code() != 0) {
                failures.add(where + ": exit " + r.code() + "\nstdout: " + tail(r.out()) + "\nstderr: " + tail(r.err()));
                continue;
            }
            String expect = b.attrs().get("expect");
            if (expect != null && !Pattern.compile(expect).matcher(r.out()).find()) {
                failures.add(where + ": stdout does not match " + expect + ":\n" + tail(r.out()));
            }
            String creates = b.attrs().get("creates");
            if (creates != null) {
                Path f = dir.resolve(creates);
                byte[] head = Files.exists(f) ? Files.readAllBytes(f) : new byte[0];
                if (head.length < 8 || (head[0] & 0xff) != 0x89 || head[1] != 'P' || head[2] != 'N' || head[3] != 'G') {
                    failures.add(where + ": " + creates + " is not a PNG (" + head.length + " bytes)");
                }
            }
        }
        assertTrue(failures.isEmpty(), String.join("\n\n", failures));
        assertTrue(ran >= 6, "ran " + ran);
        // nothing admission could refuse reached the engine: no batch failed and was retried
        for (ServerProcess s : List.of(off, on)) {
            assertFalse(s.logText().contains("retrying once"), s.log + " has an engine retry:\n" + s.logText());
        }
    }

    @Test
    void aKeyShorterThanEightCharactersStopsTheServerWithTheRule() throws Exception {
        // the README's auth example before issue 19: keys of 7 characters
        try (ServerProcess bad = ServerProcess.launch("readme-bad-keys", "fake", "256m",
                Map.of("SDSERVE_AUTH_KEYS", "secret1:tenantA,secret2:tenantB"), "-Dsdserve.auth.enabled=true")) {
            assertTrue(bad.process.waitFor(120, TimeUnit.SECONDS), "the server stops");
            assertNotEquals(0, bad.process.exitValue());
            String log = bad.logText();
            String first = log.lines().filter(l -> l.contains("ERROR")).findFirst().orElse("");
            assertTrue(first.contains("sd-serve cannot start") && first.contains("at least 8") && first.contains("<key>:<tenant>"),
                    "the first error line states the rule: " + first + "\n" + log);
            assertFalse(log.contains("secret1"), "the key is not echoed");
        }
    }

    private static String tail(String s) {
        return s.length() > 3000 ? "…" + s.substring(s.length() - 3000) : s;
    }
}
