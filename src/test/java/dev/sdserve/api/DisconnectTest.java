package dev.sdserve.api;

import dev.sdserve.api.grpc.v1.GenerateEvent;
import dev.sdserve.api.grpc.v1.GenerateRequest;
import dev.sdserve.api.grpc.v1.GenerationGrpc;
import dev.sdserve.job.GenerationService;
import dev.sdserve.job.Job;
import dev.sdserve.job.JobEvent;
import dev.sdserve.job.JobState;
import io.quarkus.test.junit.QuarkusTest;
import io.restassured.http.ContentType;
import jakarta.inject.Inject;
import org.eclipse.microprofile.config.ConfigProvider;
import org.junit.jupiter.api.Test;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.util.Iterator;
import java.util.function.BooleanSupplier;

import static io.restassured.RestAssured.given;
import static org.junit.jupiter.api.Assertions.*;

/**
 * A client that goes away, on the real scheduler path (fake engine, 25 ms a step): a streaming gRPC Generate and a
 * synchronous A1111 txt2img own their job, so hanging up cancels it and frees its place in the batch within one step
 * (the step in flight when the hang-up arrives may finish; no further step runs); an SSE watcher of an asynchronous
 * job owns nothing, so hanging up frees the watcher within one step and the job goes on.
 */
@QuarkusTest
class DisconnectTest {
    /** A step may be in flight at the hang-up, and one more may finish while the hang-up travels to the server. */
    static final int STEPS_AFTER_HANGUP = 2;

    @Inject
    GenerationService service;

    private static int step(Job j) {
        JobEvent.Step s = j.lastStep();
        return s == null ? 0 : s.index();
    }

    private static void await(BooleanSupplier cond, String what) throws InterruptedException {
        long end = System.nanoTime() + 10_000_000_000L;
        while (!cond.getAsBoolean()) {
            assertTrue(System.nanoTime() < end, "within 10 s: " + what);
            Thread.sleep(2);
        }
    }

    private Job jobWithPrompt(String prompt) throws InterruptedException {
        await(() -> service.jobs().stream().anyMatch(j -> j.request().prompt().equals(prompt)), "job '" + prompt + "' admitted");
        return service.jobs().stream().filter(j -> j.request().prompt().equals(prompt)).findFirst().orElseThrow();
    }

    private static int httpPort() {
        return ConfigProvider.getConfig().getValue("quarkus.http.test-port", Integer.class);
    }

    @Test
    void grpcHangUpCancelsTheJobWithinOneStep() throws Exception {
        int port = ConfigProvider.getConfig().getValue("quarkus.grpc.server.test-port", Integer.class);
        io.grpc.ManagedChannel channel = io.grpc.ManagedChannelBuilder.forAddress("localhost", port).usePlaintext().build();
        try {
            var stub = GenerationGrpc.newBlockingStub(channel);
            io.grpc.Context.CancellableContext ctx = io.grpc.Context.current().withCancellation();
            String id = ctx.call(() -> {
                Iterator<GenerateEvent> it = stub.generate(GenerateRequest.newBuilder().setPrompt("grpc hang-up")
                        .setSteps(150).setWidth(64).setHeight(64).setSeed(3).build());
                while (true) {
                    GenerateEvent e = it.next();
                    if (e.hasStep() && e.getStep().getIndex() >= 3) {
                        return e.getJobId();
                    }
                }
            });
            Job job = service.find(id).orElseThrow();
            int atHangUp = step(job);
            ctx.cancel(null);
            await(() -> job.state() == JobState.CANCELLED, "the job is cancelled");
            int after = step(job);
            assertTrue(after - atHangUp <= STEPS_AFTER_HANGUP, "steps after the hang-up: " + atHangUp + " → " + after);
            assertTrue(after < 150);
        } finally {
            channel.shutdownNow();
        }
    }

    @Test
    void a1111HangUpCancelsTheJobWithinOneStep() throws Exception {
        String prompt = "a1111 hang-up";
        String body = "{\"prompt\":\"" + prompt + "\",\"steps\":150,\"width\":64,\"height\":64,\"seed\":4}";
        Job job;
        int atHangUp;
        try (Socket s = new Socket("localhost", httpPort())) {
            OutputStream out = s.getOutputStream();
            out.write(("POST /sdapi/v1/txt2img HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                    + "Content-Length: " + body.getBytes(StandardCharsets.UTF_8).length + "\r\n\r\n" + body)
                    .getBytes(StandardCharsets.UTF_8));
            out.flush();
            job = jobWithPrompt(prompt);
            await(() -> step(job) >= 3, "the job is denoising");
            atHangUp = step(job);
        } // the client goes away
        await(() -> job.state() == JobState.CANCELLED, "the job is cancelled");
        int after = step(job);
        assertTrue(after - atHangUp <= STEPS_AFTER_HANGUP, "steps after the hang-up: " + atHangUp + " → " + after);
    }

    @Test
    void sseHangUpFreesTheWatcherWithinOneStepAndTheJobGoesOn() throws Exception {
        String id = given().contentType(ContentType.JSON)
                .body("{\"prompt\":\"sse hang-up\",\"steps\":150,\"width\":64,\"height\":64,\"seed\":5}")
                .post("/v1/generations").then().statusCode(202).extract().path("id");
        Job job = service.find(id).orElseThrow();
        int atHangUp;
        try (Socket s = new Socket("localhost", httpPort())) {
            s.getOutputStream().write(("GET /v1/generations/" + id + "/events HTTP/1.1\r\nHost: localhost\r\n"
                    + "Accept: text/event-stream\r\n\r\n").getBytes(StandardCharsets.UTF_8));
            BufferedReader in = new BufferedReader(new InputStreamReader(s.getInputStream(), StandardCharsets.UTF_8));
            int steps = 0;
            for (String line; (line = in.readLine()) != null && steps < 3; ) {
                if (line.startsWith("event:") && line.contains("step")) {
                    steps++;
                }
            }
            assertEquals(3, steps, "three step events over SSE");
            assertEquals(1, job.watcherCount());
            atHangUp = step(job);
        }
        await(() -> job.watcherCount() == 0, "the watcher is gone");
        int freedAt = step(job);
        assertTrue(freedAt - atHangUp <= STEPS_AFTER_HANGUP, "watcher freed at step " + freedAt + ", hang-up at " + atHangUp);
        // an asynchronous job is not owned by its watcher: it goes on
        await(() -> step(job) > freedAt, "the job goes on after its watcher left");
        assertFalse(job.state().terminal());
        given().delete("/v1/generations/" + id).then().statusCode(200);
        await(() -> job.state() == JobState.CANCELLED, "cleaned up");
    }
}
