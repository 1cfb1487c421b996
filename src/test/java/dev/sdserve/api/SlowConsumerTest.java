package dev.sdserve.api;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.sdserve.api.grpc.v1.GenerateEvent;
import dev.sdserve.api.grpc.v1.GenerateRequest;
import dev.sdserve.api.grpc.v1.GenerationGrpc;
import dev.sdserve.api.grpc.v1.PreviewOptions;
import io.quarkus.test.junit.QuarkusTest;
import io.restassured.http.ContentType;
import org.eclipse.microprofile.config.ConfigProvider;
import org.junit.jupiter.api.Test;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;

import static io.restassured.RestAssured.given;
import static org.junit.jupiter.api.Assertions.*;

/**
 * Deliberately slow consumers (fake engine, 25 ms a step; large previews; the client reads an event every 60 ms, far
 * slower than the server makes them): over gRPC and over SSE every step index 1 … n arrives, in order; only preview
 * payloads are left out (said so by preview_dropped), and the stream ends with the result.
 */
@QuarkusTest
class SlowConsumerTest {
    static final int STEPS = 40;
    static final long READ_PAUSE_MS = 60;
    static final ObjectMapper JSON = new ObjectMapper();

    /** The result came; indices 1 … n in order; each step has its preview or says it was dropped, and some were. */
    private static void assertReceived(String transport, boolean completed, List<Integer> indices, int withPreview,
                                       int dropped) {
        System.out.printf("slow %s consumer: %d steps, %d with a preview, %d previews dropped%n", transport,
                indices.size(), withPreview, dropped);
        assertTrue(completed, transport + ": the stream ends with the result");
        List<Integer> want = new ArrayList<>();
        for (int i = 1; i <= STEPS; i++) {
            want.add(i);
        }
        assertEquals(want, indices, transport + ": every step, in order");
        assertEquals(STEPS, withPreview + dropped, transport + ": each step has its preview or says it was dropped");
        assertTrue(dropped > 0, transport + ": the consumer was slow enough for previews to be dropped");
    }

    @Test
    void slowGrpcConsumerReceivesEveryStep() throws Exception {
        int port = ConfigProvider.getConfig().getValue("quarkus.grpc.server.test-port", Integer.class);
        io.grpc.ManagedChannel channel = io.grpc.ManagedChannelBuilder.forAddress("localhost", port).usePlaintext().build();
        try {
            Iterator<GenerateEvent> it = GenerationGrpc.newBlockingStub(channel).generate(GenerateRequest.newBuilder()
                    .setPrompt("slow grpc reader").setSteps(STEPS).setWidth(512).setHeight(512).setSeed(11)
                    .setPreview(PreviewOptions.newBuilder().setEverySteps(1).setMaxEdge(512)).build());
            List<Integer> indices = new ArrayList<>();
            int dropped = 0, withPreview = 0;
            boolean completed = false;
            while (it.hasNext()) {
                GenerateEvent e = it.next();
                if (e.hasStep()) {
                    indices.add(e.getStep().getIndex());
                    dropped += e.getStep().getPreviewDropped() ? 1 : 0;
                    withPreview += e.getStep().getPreview().isEmpty() ? 0 : 1;
                    assertTrue(e.getStep().getPreview().isEmpty() || !e.getStep().getPreviewDropped());
                }
                completed |= e.hasCompleted();
                Thread.sleep(READ_PAUSE_MS);
            }
            assertReceived("gRPC", completed, indices, withPreview, dropped);
        } finally {
            channel.shutdownNow();
        }
    }

    @Test
    void slowSseConsumerReceivesEveryStep() throws Exception {
        String id = given().contentType(ContentType.JSON)
                .body("{\"prompt\":\"slow sse reader\",\"steps\":" + STEPS + ",\"width\":512,\"height\":512,\"seed\":12,"
                        + "\"preview\":{\"every_steps\":1,\"max_edge\":512}}")
                .post("/v1/generations").then().statusCode(202).extract().path("id");
        int port = ConfigProvider.getConfig().getValue("quarkus.http.test-port", Integer.class);
        List<Integer> indices = new ArrayList<>();
        int dropped = 0, withPreview = 0;
        boolean completed = false;
        try (Socket s = new Socket("localhost", port)) {
            s.setReceiveBufferSize(16 * 1024);
            s.getOutputStream().write(("GET /v1/generations/" + id + "/events HTTP/1.1\r\nHost: localhost\r\n"
                    + "Accept: text/event-stream\r\n\r\n").getBytes(StandardCharsets.UTF_8));
            BufferedReader in = new BufferedReader(new InputStreamReader(s.getInputStream(), StandardCharsets.UTF_8), 4096);
            for (String line; !completed && (line = in.readLine()) != null; ) {
                if (!line.startsWith("data:")) {
                    continue;
                }
                JsonNode ev = JSON.readTree(line.substring(5).trim());
                switch (ev.path("type").asText()) {
                    case "step" -> {
                        indices.add(ev.path("index").asInt());
                        dropped += ev.path("preview_dropped").asBoolean(false) ? 1 : 0;
                        withPreview += ev.hasNonNull("preview") ? 1 : 0;
                    }
                    case "completed" -> completed = true;
                    case "ended" -> fail("the job ended: " + ev);
                    default -> {
                    }
                }
                Thread.sleep(READ_PAUSE_MS);
            }
        }
        assertReceived("SSE", completed, indices, withPreview, dropped);
    }
}
