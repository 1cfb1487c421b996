package dev.sdserve.ops;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.*;

/** CI's short bounded load: the packaged `loadgen` command against the packaged server on the fake engine. */
class LoadGenIT {
    static ServerProcess server;

    @BeforeAll
    static void start() throws Exception {
        server = ServerProcess.start("loadgen", Duration.ofSeconds(120), "-Dsdserve.fake-step-millis=5");
    }

    @AfterAll
    static void stop() throws Exception {
        if (server != null) {
            server.close();
        }
    }

    static String loadgen(String name, int expectExit, String... args) throws Exception {
        List<String> cmd = new ArrayList<>(List.of(ServerProcess.java(), "-Xmx256m", "-jar",
                ServerProcess.appDir().resolve("quarkus-run.jar").toString(), "loadgen",
                "--target", "localhost:" + server.grpcPort, "--pid", String.valueOf(server.process.pid())));
        cmd.addAll(List.of(args));
        Path out = Path.of("target", "it-logs", name + ".out");
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(out.toFile()).start();
        assertTrue(p.waitFor(90, TimeUnit.SECONDS), "loadgen finishes");
        String text = Files.readString(out);
        System.out.println(text);
        assertEquals(expectExit, p.exitValue(), text);
        return text;
    }

    static long field(String lastLine, String key) {
        Matcher m = Pattern.compile(key + "=(\\d+)").matcher(lastLine);
        assertTrue(m.find(), key + " in " + lastLine);
        return Long.parseLong(m.group(1));
    }

    @Test
    void openLoopPoisson() throws Exception {
        String text = loadgen("loadgen-open", 0, "--rate", "8", "--duration", "6s", "--requests", "60", "--check");
        String[] lines = text.strip().split("\n");
        String last = lines[lines.length - 1];
        assertTrue(last.matches("loadgen: sent=\\d+ ok=\\d+ refused=\\d+ failed=\\d+ p99_ms=\\d+"), last);
        long sent = field(last, "sent"), ok = field(last, "ok"), refused = field(last, "refused"), failed = field(last, "failed");
        assertTrue(sent >= 20, "about 48 arrivals expected in 6 s at 8/s: " + last);
        assertEquals(0, failed, text);
        assertEquals(sent, ok + refused, text);
        assertTrue(ok > 0, text);
        assertTrue(text.contains("time to first preview ms"), text);
        assertTrue(text.contains("server resources (/proc/"), text);
    }

    @Test
    void shortSoakChecksEveryResponse() throws Exception {
        String text = loadgen("loadgen-soak", 0, "--soak", "--requests", "150", "--concurrency", "8",
                "--shape", "slo=standard,size=64x64,steps=3,images=2,weight=1",
                "--shape", "slo=interactive,size=64x96,steps=2,weight=1", "--sample-every", "1s");
        assertTrue(text.contains("soak checks: all 150 responses checked, no problem"), text);
        String[] lines = text.strip().split("\n");
        assertEquals(150, field(lines[lines.length - 1], "ok"), text);
    }
}
