package dev.sdserve.ops;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.sdserve.testutil.Shared;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import javax.imageio.ImageIO;
import java.awt.image.BufferedImage;
import java.io.BufferedReader;
import java.io.ByteArrayInputStream;
import java.io.InputStreamReader;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The packaged server on the tiny golden model (tf engine): a fine-tune job submitted over REST, the server stopped
 * mid-job and started again on the same state directory (the job resumes from its checkpoint), the job watched to
 * its end over SSE, then a generation with {@code <lora:name:0.8>} that differs from the same request without it.
 */
class FineTuneIT {
    static final ObjectMapper JSON = new ObjectMapper();
    @TempDir
    Path tmp;

    static BufferedImage shape(int kind) {
        int s = 64;
        BufferedImage img = new BufferedImage(s, s, BufferedImage.TYPE_INT_RGB);
        int[] fg = {0xff0000, 0x00ff00, 0xffff00, 0xa000a0};
        int[] bg = {0x0000ff, 0xffffff, 0x000000, 0x808080};
        for (int y = 0; y < s; y++) {
            for (int x = 0; x < s; x++) {
                boolean in = switch (kind) {
                    case 0 -> x >= 16 && x < 48 && y >= 16 && y < 48;
                    case 1 -> (x - 32) * (x - 32) + (y - 32) * (y - 32) < 18 * 18;
                    case 2 -> y >= 24 && y < 40;
                    default -> y >= 12 && y < 52 && Math.abs(x - 32) <= (y - 12) / 2;
                };
                img.setRGB(x, y, in ? fg[kind] : bg[kind]);
            }
        }
        return img;
    }

    ServerProcess start(String name) throws Exception {
        return ServerProcess.start(name, Duration.ofSeconds(120), "-Dsdserve.engine=tf",
                "-Dsdserve.models-dir=" + tmp.resolve("models"), "-Dsdserve.default-model=tiny",
                "-Dsdserve.train.state-dir=" + tmp.resolve("state"), "-Dsdserve.train.data-dir=" + tmp.resolve("data"),
                "-Dsdserve.train.checkpoint-every=5", "-Dsdserve.threads=2");
    }

    @Test
    void fineTuneSurvivesARestartAndItsLoraServesByName() throws Exception {
        Files.createDirectories(tmp.resolve("models"));
        Files.copy(Shared.dir().resolve("golden/sd15-tiny/tiny-sd15.safetensors"), tmp.resolve("models/tiny.safetensors"));
        Path set = Files.createDirectories(tmp.resolve("data/shapes"));
        String[] captions = {"sks style, a red square on blue", "sks style, a green circle on white",
                "sks style, a yellow stripe on black", "sks style, a purple triangle on grey"};
        for (int i = 0; i < 4; i++) {
            ImageIO.write(shape(i), "png", set.resolve("img" + i + ".png").toFile());
            Files.writeString(set.resolve("img" + i + ".txt"), captions[i]);
        }
        String id;
        long stepAtStop;
        try (ServerProcess s = start("finetune-1")) {
            HttpResponse<String> bad = s.post("/v1/finetunes",
                    "{\"name\": \"x\", \"base_model\": \"tiny\", \"data_folder\": \"../models\"}");
            assertEquals(400, bad.statusCode(), bad.body());
            assertEquals("data_folder", JSON.readTree(bad.body()).path("error").path("field").asText());
            HttpResponse<String> r = s.post("/v1/finetunes", "{\"name\": \"it-shapes\", \"base_model\": \"tiny\","
                    + " \"data_folder\": \"shapes\", \"rank\": 4, \"steps\": 30, \"learning_rate\": 0.005,"
                    + " \"batch_size\": 2, \"seed\": 11, \"resolution\": 64}");
            assertEquals(201, r.statusCode(), r.body());
            id = JSON.readTree(r.body()).path("id").asText();
            long deadline = System.nanoTime() + 180_000_000_000L;
            do {
                Thread.sleep(100);
                stepAtStop = JSON.readTree(s.get("/v1/finetunes/" + id)).path("status").path("step").asLong();
            } while (stepAtStop < 12 && System.nanoTime() < deadline);
            assertTrue(stepAtStop >= 12, "the job advanced: step " + stepAtStop);
        } // the server stops mid-job
        try (ServerProcess s = start("finetune-2")) {
            List<JsonNode> events = sse(s.httpPort, "/v1/finetunes/" + id + "/events");
            JsonNode last = events.get(events.size() - 1);
            assertEquals("succeeded", last.path("state").asText(), events.toString());
            assertEquals("it-shapes", last.path("lora").asText());
            assertEquals(30, last.path("step").asLong());
            JsonNode job = JSON.readTree(s.get("/v1/finetunes/" + id));
            assertEquals(30, job.path("loss_steps").size(), "one loss per step, before and after the restart");
            java.util.regex.Matcher m = java.util.regex.Pattern.compile("fine-tune job " + id + " \\(it-shapes\\) resumes from step (\\d+)")
                    .matcher(s.logText());
            assertTrue(m.find(), "the restarted server resumed the job:\n" + s.logText());
            long resumed = Long.parseLong(m.group(1));
            assertTrue(resumed >= 10 && resumed % 5 == 0 && resumed <= stepAtStop, "resumed from the last checkpoint"
                    + " before the stop (at step " + stepAtStop + "): " + resumed);

            byte[] plain = generate(s, "sks style, a red square on blue");
            byte[] lora = generate(s, "sks style, a red square on blue <lora:it-shapes:0.8>");
            BufferedImage a = ImageIO.read(new ByteArrayInputStream(plain));
            BufferedImage b = ImageIO.read(new ByteArrayInputStream(lora));
            double diff = 0;
            for (int y = 0; y < a.getHeight(); y++) {
                for (int x = 0; x < a.getWidth(); x++) {
                    int p = a.getRGB(x, y), q = b.getRGB(x, y);
                    for (int c = 0; c < 24; c += 8) {
                        diff += Math.abs(((p >> c) & 0xff) - ((q >> c) & 0xff));
                    }
                }
            }
            diff /= 3.0 * a.getWidth() * a.getHeight();
            assertTrue(diff > 0.5, "the LoRA changes the image (mean abs difference " + diff + " / 255)");
            String loras = s.get("/v1/loras");
            assertTrue(loras.contains("\"it-shapes\""), loras);
            grpc(s.grpcPort, id);
        }
    }

    /** The same job over gRPC (service FineTuning): Get, List, Watch of an ended job, a field-named refusal. */
    static void grpc(int port, String id) throws InterruptedException {
        io.grpc.ManagedChannel ch = io.grpc.ManagedChannelBuilder.forAddress("localhost", port).usePlaintext().build();
        try {
            var stub = dev.sdserve.api.grpc.v1.FineTuningGrpc.newBlockingStub(ch);
            var ref = dev.sdserve.api.grpc.v1.FineTuneRef.newBuilder().setId(id).build();
            var info = stub.get(ref);
            assertEquals(dev.sdserve.api.grpc.v1.FineTuneState.FINE_TUNE_SUCCEEDED, info.getStatus().getState());
            assertEquals(30, info.getLossValuesCount());
            assertEquals("shapes", info.getRequest().getDataFolder());
            assertEquals(1, stub.list(dev.sdserve.api.grpc.v1.ListFineTunesRequest.getDefaultInstance()).getJobsCount());
            List<dev.sdserve.api.grpc.v1.FineTuneEvent> evs = new ArrayList<>();
            stub.watch(ref).forEachRemaining(evs::add);
            assertEquals(1, evs.size(), "an ended job: its final status, then the stream ends");
            assertEquals("it-shapes", evs.get(0).getLora());
            io.grpc.StatusRuntimeException e = org.junit.jupiter.api.Assertions.assertThrows(io.grpc.StatusRuntimeException.class,
                    () -> stub.submit(dev.sdserve.api.grpc.v1.FineTuneRequest.newBuilder().setName("g").setBaseModel("tiny")
                            .setDataFolder("shapes").setRank(500).build()));
            assertEquals(io.grpc.Status.Code.INVALID_ARGUMENT, e.getStatus().getCode());
            assertEquals("rank", e.getTrailers().get(io.grpc.Metadata.Key.of("field", io.grpc.Metadata.ASCII_STRING_MARSHALLER)));
        } finally {
            ch.shutdownNow().awaitTermination(5, java.util.concurrent.TimeUnit.SECONDS);
        }
    }

    static byte[] generate(ServerProcess s, String prompt) throws Exception {
        HttpResponse<String> r = s.post("/v1/generations", "{\"prompt\": \"" + prompt + "\", \"steps\": 6, \"seed\": 5,"
                + " \"width\": 64, \"height\": 64, \"sampler\": \"euler\", \"deadline_ms\": 600000}");
        assertEquals(202, r.statusCode(), r.body());
        String gid = JSON.readTree(r.body()).path("id").asText();
        HttpResponse<byte[]> img = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build().send(
                HttpRequest.newBuilder(URI.create("http://localhost:" + s.httpPort + "/v1/generations/" + gid
                        + "/image?wait=120")).timeout(Duration.ofSeconds(150)).build(),
                HttpResponse.BodyHandlers.ofByteArray());
        assertEquals(200, img.statusCode(), new String(img.body(), StandardCharsets.UTF_8));
        return img.body();
    }

    /** The JSON data of every event of an SSE stream, until the server closes it. */
    static List<JsonNode> sse(int port, String path) throws Exception {
        HttpResponse<java.io.InputStream> r = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build().send(
                HttpRequest.newBuilder(URI.create("http://localhost:" + port + path)).timeout(Duration.ofSeconds(300))
                        .header("accept", "text/event-stream").build(), HttpResponse.BodyHandlers.ofInputStream());
        assertEquals(200, r.statusCode());
        List<JsonNode> out = new ArrayList<>();
        try (BufferedReader in = new BufferedReader(new InputStreamReader(r.body(), StandardCharsets.UTF_8))) {
            for (String line; (line = in.readLine()) != null; ) {
                if (line.startsWith("data:")) {
                    out.add(JSON.readTree(line.substring(5)));
                }
            }
        }
        return out;
    }
}
