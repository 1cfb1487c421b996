package dev.sdserve.ops;

import dev.sdserve.testutil.Shared;
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

/**
 * CI's short soak on the real tiny model (issue 8): the packaged server on the TensorFlow engine with the golden tiny
 * SD 1.5 checkpoint as its default model and the golden LoRA, 400 requests at concurrency 32 from the packaged
 * {@code loadgen --soak} (a mix of samplers, guidance scales, sizes, a 2-image shape and LoRA requests), every
 * response checked by loadgen (one ending per request, unique job ids, every image a PNG of the requested size, seeds
 * echoed), and the server's own completed counter cross-checked. The full 10,000-request run is
 * {@code load-tests/soak-tiny.sh}.
 */
class SoakTinyIT {
    static final int REQUESTS = Integer.getInteger("sdserve.soak.requests", 400);
    static ServerProcess server;
    static Path models;

    @BeforeAll
    static void start() throws Exception {
        Path tiny = Shared.golden("sd15-tiny");
        models = Files.createTempDirectory("soak-models");
        Files.createDirectories(models.resolve("loras"));
        Files.copy(tiny.resolve("tiny-sd15.safetensors"), models.resolve("tiny.safetensors"));
        Files.copy(tiny.resolve("tiny-lora.safetensors"), models.resolve("loras").resolve("tiny-lora.safetensors"));
        server = ServerProcess.startEngine("soak-tiny", Duration.ofSeconds(180), "tf", "1g",
                "-Dsdserve.models-dir=" + models, "-Dsdserve.default-model=tiny");
    }

    @AfterAll
    static void stop() throws Exception {
        if (server != null) {
            server.close();
        }
        if (models != null) {
            try (var s = Files.walk(models)) {
                s.sorted(java.util.Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
            }
        }
    }

    static long counter(String metrics, String name) {
        double sum = 0;
        for (String line : metrics.split("\n")) {
            if (line.startsWith(name + " ") || line.startsWith(name + "{")) {
                sum += Double.parseDouble(line.substring(line.lastIndexOf(' ') + 1));
            }
        }
        return Math.round(sum);
    }

    @Test
    void soakOnTheTinyModelChecksEveryResponse() throws Exception {
        long completedBefore = counter(server.get("/q/metrics"), "sdserve_scheduler_completed_total");
        List<String> cmd = new ArrayList<>(List.of(ServerProcess.java(), "-Xmx256m", "-jar",
                ServerProcess.appDir().resolve("quarkus-run.jar").toString(), "loadgen", "--soak",
                "--target", "localhost:" + server.grpcPort, "--pid", String.valueOf(server.process.pid()),
                "--requests", String.valueOf(REQUESTS), "--concurrency", "32", "--sample-every", "2s", "--grace", "60s",
                "--shape", "slo=interactive,size=64x64,steps=4,sampler=euler_a,cfg=7,weight=4",
                "--shape", "slo=standard,size=64x64,steps=6,sampler=dpmpp_2m_karras,cfg=5,weight=3",
                "--shape", "slo=standard,size=64x64,steps=8,sampler=ddim,cfg=1,weight=2",
                "--shape", "slo=standard,size=128x64,steps=5,sampler=unipc,cfg=7.5,weight=1",
                "--shape", "slo=batch,size=64x64,steps=6,sampler=euler,cfg=3,images=2,preview=3,weight=1",
                "--shape", "slo=standard,size=64x64,steps=5,sampler=dpmpp_2m,cfg=6,lora=tiny-lora:0.8,weight=2"));
        Path out = Path.of("target", "it-logs", "soak-tiny.out");
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(out.toFile()).start();
        assertTrue(p.waitFor(240, TimeUnit.SECONDS), "the soak finishes within 4 minutes");
        String text = Files.readString(out);
        System.out.println(text);
        assertEquals(0, p.exitValue(), text);
        String[] lines = text.strip().split("\n");
        String last = lines[lines.length - 1];
        long ok = LoadGenIT.field(last, "ok"), refused = LoadGenIT.field(last, "refused");
        assertEquals(REQUESTS, LoadGenIT.field(last, "sent"), last);
        assertEquals(0, LoadGenIT.field(last, "failed"), text);
        // admission may refuse a few at warm-up (deadline, with a retry hint) while its cost model learns this
        // machine's speed on a loaded CI box; a refusal is an answer, never a lost job
        assertEquals(REQUESTS, ok + refused, text);
        assertTrue(refused <= REQUESTS / 20, "refused " + refused + ": " + text);
        assertTrue(text.contains("soak checks: all " + REQUESTS + " responses checked, no problem"), text);
        // the server agrees: exactly the accepted jobs completed (none lost, none run twice)
        long completed = counter(server.get("/q/metrics"), "sdserve_scheduler_completed_total") - completedBefore;
        assertEquals(ok, completed, "server-side completions");
        Matcher m = Pattern.compile("RSS MiB start (\\d+) / middle (\\d+) / end (\\d+) / max (\\d+); threads (\\d+) / (\\d+) / (\\d+) / max (\\d+)")
                .matcher(text);
        assertTrue(m.find(), text);
        long rssMax = Long.parseLong(m.group(4));
        int threadsMid = Integer.parseInt(m.group(6)), threadsEnd = Integer.parseInt(m.group(7));
        // the 10,000-request soak plateaus near 1.2 GiB (1 GiB heap cap + TF); threads do not pile up
        assertTrue(rssMax < 3 * 1024, "RSS max " + rssMax + " MiB");
        assertTrue(threadsEnd <= threadsMid + 8, "threads mid " + threadsMid + ", end " + threadsEnd);
        assertTrue(server.process.isAlive(), "the server survived");
    }
}
