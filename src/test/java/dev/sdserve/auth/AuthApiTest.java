package dev.sdserve.auth;

import dev.sdserve.api.grpc.ProtoMapper;
import dev.sdserve.api.grpc.v1.GenerateEvent;
import dev.sdserve.api.grpc.v1.GenerateRequest;
import dev.sdserve.api.grpc.v1.Generation;
import dev.sdserve.job.GenerationService;
import io.grpc.Metadata;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.quarkus.grpc.GrpcClient;
import io.quarkus.grpc.GrpcClientUtils;
import io.quarkus.test.junit.QuarkusTest;
import io.quarkus.test.junit.QuarkusTestProfile;
import io.quarkus.test.junit.TestProfile;
import io.restassured.http.ContentType;
import io.smallrye.mutiny.subscription.Cancellable;
import jakarta.inject.Inject;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

import static io.restassured.RestAssured.given;
import static org.hamcrest.Matchers.*;
import static org.junit.jupiter.api.Assertions.*;

/** API keys, rate limit and concurrency quota over HTTP and gRPC, with auth switched on as in the prod profile. */
@QuarkusTest
@TestProfile(AuthApiTest.On.class)
class AuthApiTest {
    public static class On implements QuarkusTestProfile {
        @Override
        public Map<String, String> getConfigOverrides() {
            return Map.of("sdserve.auth.enabled", "true",
                    "sdserve.auth.keys", "key-tenant-a:tenantA,key-rate-bbb:tenantB,key-conc-ccc:tenantC,"
                            + "key-q-rest-1:tenantD,key-q-grpc-1:tenantE,key-q-a1111:tenantF",
                    "sdserve.auth.basic", "webui:webui-password:tenantG",
                    "sdserve.auth.rate-per-second", "0.2", "sdserve.auth.burst", "3", "sdserve.auth.max-concurrent", "2",
                    "sdserve.fake-step-millis", "40"); // 150 steps last 6 s: long enough to act on a running job
        }
    }

    static final String BODY = "{\"prompt\":\"x\",\"steps\":2,\"width\":64,\"height\":64,\"seed\":1,\"tenant\":\"evil\"}";

    @GrpcClient("sdserve")
    Generation client;

    @Inject
    GenerationService service;

    private Generation withKey(String header, String value) {
        Metadata md = new Metadata();
        md.put(Metadata.Key.of(header, Metadata.ASCII_STRING_MARSHALLER), value);
        return GrpcClientUtils.attachHeaders(client, md);
    }

    private static GenerateRequest req(int steps) {
        return GenerateRequest.newBuilder().setPrompt("x").setSteps(steps).setWidth(64).setHeight(64).setSeed(1)
                .setTenant("evil").build();
    }

    @Test
    void httpNeedsAKeyAndTheKeysTenantWins() {
        given().contentType(ContentType.JSON).body(BODY).post("/v1/generations").then().statusCode(401)
                .header("WWW-Authenticate", containsString("Bearer")).body("error.code", equalTo("UNAUTHENTICATED"));
        given().header("x-api-key", "wrong-key-123").contentType(ContentType.JSON).body(BODY).post("/v1/generations")
                .then().statusCode(401);
        given().header("x-api-key", "key-tenant-a").get("/v1/models").then().statusCode(200);
        given().get("/v1/models").then().statusCode(401);
        given().get("/sdapi/v1/sd-models").then().statusCode(401);
        String id = given().header("authorization", "Bearer key-tenant-a").contentType(ContentType.JSON).body(BODY)
                .post("/v1/generations").then().statusCode(202).extract().path("id");
        assertEquals("tenantA", service.find(id).orElseThrow().request().tenant());
        given().header("x-api-key", "key-tenant-a").contentType(ContentType.JSON)
                .body("{\"prompt\":\"a1111 tenant check\",\"steps\":2,\"width\":64,\"height\":64,\"seed\":3}")
                .post("/sdapi/v1/txt2img").then().statusCode(200);
        given().contentType(ContentType.JSON).body("{\"prompt\":\"x\"}").post("/sdapi/v1/txt2img").then().statusCode(401);
        var a1111Jobs = service.jobs().stream().filter(j -> j.request().prompt().equals("a1111 tenant check")).toList();
        assertFalse(a1111Jobs.isEmpty());
        assertTrue(a1111Jobs.stream().allMatch(j -> j.request().tenant().equals("tenantA")));
        // open: health, OpenAPI, the web page
        given().get("/q/health/live").then().statusCode(200);
        given().get("/q/openapi").then().statusCode(200);
        given().get("/").then().statusCode(anyOf(is(200), is(404)));
        assertNotEquals(401, given().get("/").statusCode());
    }

    @Test
    void a1111ToolsAuthenticateWithHttpBasic() {
        // an A1111 tool without credentials is challenged for Basic (as A1111 does), in A1111's error shape
        var r = given().contentType(ContentType.JSON).body("{\"prompt\":\"x\"}").post("/sdapi/v1/txt2img");
        assertEquals(401, r.statusCode());
        assertTrue(r.headers().getValues("WWW-Authenticate").stream().anyMatch(h -> h.startsWith("Basic")), r.headers().toString());
        assertEquals("UNAUTHENTICATED", r.jsonPath().getString("error"));
        assertTrue(r.jsonPath().getString("detail").contains("Basic"), r.asString());
        given().auth().preemptive().basic("webui", "wrong-password").get("/sdapi/v1/sd-models").then().statusCode(401)
                .body("detail", equalTo("Incorrect username or password"));
        given().auth().preemptive().basic("webui", "webui-password").get("/sdapi/v1/sd-models").then().statusCode(200);
        // a challenge-driven client (answers the 401) works too
        given().auth().basic("webui", "webui-password").get("/sdapi/v1/options").then().statusCode(200);
        given().auth().preemptive().basic("webui", "webui-password").contentType(ContentType.JSON)
                .body("{\"prompt\":\"basic tenant check\",\"steps\":2,\"width\":64,\"height\":64,\"seed\":3}")
                .post("/sdapi/v1/txt2img").then().statusCode(200).body("images.size()", is(1));
        assertTrue(service.jobs().stream().filter(j -> j.request().prompt().equals("basic tenant check"))
                .allMatch(j -> j.request().tenant().equals("tenantG")));
        // the REST API takes the same credentials, but its 401 offers only Bearer: the web page's fetches never
        // make the browser pop up a login dialog
        given().auth().preemptive().basic("webui", "webui-password").get("/v1/models").then().statusCode(200);
        var v1 = given().get("/v1/models");
        assertEquals(401, v1.statusCode());
        assertEquals(List.of("Bearer realm=\"sd-serve\""), v1.headers().getValues("WWW-Authenticate"));
        // and gRPC
        List<GenerateEvent> events = withKey("authorization", "Basic " + java.util.Base64.getEncoder()
                .encodeToString("webui:webui-password".getBytes())).generate(req(2)).collect().asList()
                .await().atMost(Duration.ofSeconds(30));
        assertEquals("tenantG", service.find(events.get(0).getJobId()).orElseThrow().request().tenant());
    }

    @Test
    void grpcNeedsAKeyAndTheKeysTenantWins() {
        StatusRuntimeException e = assertThrows(StatusRuntimeException.class,
                () -> client.generate(req(2)).collect().asList().await().atMost(Duration.ofSeconds(30)));
        assertEquals(Status.Code.UNAUTHENTICATED, e.getStatus().getCode());
        e = assertThrows(StatusRuntimeException.class, () -> withKey("x-api-key", "key-tenant-b").generate(req(2))
                .collect().asList().await().atMost(Duration.ofSeconds(30)));
        assertEquals(Status.Code.UNAUTHENTICATED, e.getStatus().getCode());
        List<GenerateEvent> events = withKey("authorization", "Bearer key-tenant-a").generate(req(2)).collect().asList()
                .await().atMost(Duration.ofSeconds(30));
        assertTrue(events.get(events.size() - 1).hasCompleted());
        assertEquals("tenantA", service.find(events.get(0).getJobId()).orElseThrow().request().tenant());
    }

    @Test
    void rateLimitRefusesWith429AndResourceExhaustedWithHints() throws Exception {
        int ok = 0;
        for (int i = 0; i < 3; i++) {
            // one job at a time, so that the concurrency quota (2) stays out of the way
            var r = given().header("x-api-key", "key-rate-bbb").contentType(ContentType.JSON).body(BODY)
                    .post("/v1/generations");
            ok += r.statusCode() == 202 ? 1 : 0;
            awaitInFlight("key-rate-bbb", 0);
        }
        assertEquals(3, ok, "the burst passes");
        var r = given().header("x-api-key", "key-rate-bbb").contentType(ContentType.JSON).body(BODY).post("/v1/generations");
        assertEquals(429, r.statusCode(), r.asString());
        assertTrue(Integer.parseInt(r.header("Retry-After")) >= 1);
        assertTrue(r.jsonPath().getLong("error.retry_after_ms") > 0);
        StatusRuntimeException e = assertThrows(StatusRuntimeException.class, () -> withKey("x-api-key", "key-rate-bbb")
                .generate(req(2)).collect().asList().await().atMost(Duration.ofSeconds(30)));
        assertEquals(Status.Code.RESOURCE_EXHAUSTED, e.getStatus().getCode());
        assertTrue(Long.parseLong(e.getTrailers().get(ProtoMapper.RETRY_AFTER_MS)) > 0);
    }

    @Test
    void concurrencyQuotaCountsOpenStreams() throws Exception {
        Generation c = withKey("x-api-key", "key-conc-ccc");
        CompletableFuture<GenerateEvent> first1 = new CompletableFuture<>(), first2 = new CompletableFuture<>();
        Cancellable s1 = c.generate(req(150)).subscribe().with(first1::complete, first1::completeExceptionally);
        Cancellable s2 = c.generate(req(150)).subscribe().with(first2::complete, first2::completeExceptionally);
        first1.get(30, TimeUnit.SECONDS);
        first2.get(30, TimeUnit.SECONDS);
        StatusRuntimeException e = assertThrows(StatusRuntimeException.class,
                () -> c.generate(req(2)).collect().asList().await().atMost(Duration.ofSeconds(30)));
        assertEquals(Status.Code.RESOURCE_EXHAUSTED, e.getStatus().getCode());
        assertTrue(e.getStatus().getDescription().contains("concurrency"), e.getStatus().getDescription());
        s1.cancel();
        s2.cancel();
    }

    @Inject
    Auth auth;

    private int inFlight(String key) {
        return auth.inFlight(auth.authenticate(key, null));
    }

    /** Waits (up to 10 s) until the key has {@code n} slots taken. */
    private void awaitInFlight(String key, int n) throws InterruptedException {
        long end = System.nanoTime() + 10_000_000_000L;
        while (inFlight(key) != n && System.nanoTime() < end) {
            Thread.sleep(10);
        }
        assertEquals(n, inFlight(key), "slots taken by " + key);
    }

    private static String body(int steps, String prompt) {
        return "{\"prompt\":\"" + prompt + "\",\"steps\":" + steps + ",\"width\":64,\"height\":64,\"seed\":1}";
    }

    private static io.restassured.response.Response post(String key, String body) {
        return given().header("x-api-key", key).contentType(ContentType.JSON).body(body).post("/v1/generations");
    }

    private void awaitState(String id, dev.sdserve.job.JobState state) throws InterruptedException {
        long end = System.nanoTime() + 10_000_000_000L;
        while (service.find(id).orElseThrow().state() != state && System.nanoTime() < end) {
            Thread.sleep(10);
        }
        assertEquals(state, service.find(id).orElseThrow().state());
    }

    @Test
    void restQuotaCoversTheAsyncJobsUntilTheyEnd() throws Exception {
        String key = "key-q-rest-1"; // at most 2 concurrent, burst 3
        String a = post(key, body(150, "quota rest a")).then().statusCode(202).extract().path("id");
        String b = post(key, body(150, "quota rest b")).then().statusCode(202).extract().path("id");
        // both POSTs have returned: their jobs hold the key's 2 slots
        assertEquals(2, inFlight(key));
        var refused = post(key, body(2, "one too many"));
        assertEquals(429, refused.statusCode(), refused.asString());
        assertTrue(Integer.parseInt(refused.header("Retry-After")) >= 1);
        assertTrue(refused.jsonPath().getLong("error.retry_after_ms") > 0);
        assertTrue(refused.jsonPath().getString("error.message").contains("concurrency"), refused.asString());
        assertTrue(service.jobs().stream().noneMatch(j -> j.request().prompt().equals("one too many")));
        // cancel gives one back
        given().header("x-api-key", key).delete("/v1/generations/" + a).then().statusCode(200);
        awaitState(a, dev.sdserve.job.JobState.CANCELLED);
        awaitInFlight(key, 1);
        // ... which a new job takes; a failing job gives it back too
        String c = post(key, body(4, "quota rest <poison>")).then().statusCode(202).extract().path("id");
        awaitState(c, dev.sdserve.job.JobState.FAILED);
        awaitInFlight(key, 1);
        given().header("x-api-key", key).delete("/v1/generations/" + b).then().statusCode(200);
        awaitInFlight(key, 0);
    }

    @Test
    void grpcQuotaCoversSubmittedJobsAndStreamsUntilTheyEnd() throws Exception {
        String key = "key-q-grpc-1";
        Generation c = withKey("x-api-key", key);
        String submitted = c.submit(req(150)).await().atMost(Duration.ofSeconds(10)).getJobId();
        // a streaming Generate on a plain channel, so that the test can hang up like a client that goes away
        int port = org.eclipse.microprofile.config.ConfigProvider.getConfig()
                .getValue("quarkus.grpc.server.test-port", Integer.class);
        Metadata md = new Metadata();
        md.put(Metadata.Key.of("x-api-key", Metadata.ASCII_STRING_MARSHALLER), key);
        io.grpc.ManagedChannel channel = io.grpc.ManagedChannelBuilder.forAddress("localhost", port).usePlaintext()
                .intercept(io.grpc.stub.MetadataUtils.newAttachHeadersInterceptor(md)).build();
        io.grpc.Context.CancellableContext hangUp = io.grpc.Context.current().withCancellation();
        String streamed;
        try {
            var stub = dev.sdserve.api.grpc.v1.GenerationGrpc.newBlockingStub(channel);
            streamed = hangUp.call(() -> stub.generate(req(150)).next().getJobId());
        } catch (Exception e) {
            channel.shutdownNow();
            throw e;
        }
        assertEquals(2, inFlight(key), "the Submit call has returned; its job holds the slot");
        for (Runnable call : List.<Runnable>of(
                () -> c.submit(req(2)).await().atMost(Duration.ofSeconds(10)),
                () -> c.generate(req(2)).collect().asList().await().atMost(Duration.ofSeconds(10)))) {
            StatusRuntimeException e = assertThrows(StatusRuntimeException.class, call::run);
            assertEquals(Status.Code.RESOURCE_EXHAUSTED, e.getStatus().getCode());
            assertTrue(e.getStatus().getDescription().contains("concurrency"), e.getStatus().getDescription());
            assertTrue(Long.parseLong(e.getTrailers().get(ProtoMapper.RETRY_AFTER_MS)) > 0, "a retry hint");
        }
        // the client going away cancels the streamed job, and its slot returns
        hangUp.cancel(null);
        awaitState(streamed, dev.sdserve.job.JobState.CANCELLED);
        channel.shutdownNow();
        awaitInFlight(key, 1);
        // a job that completes gives it back when it ends
        String done = c.submit(req(3)).await().atMost(Duration.ofSeconds(10)).getJobId();
        awaitState(done, dev.sdserve.job.JobState.COMPLETED);
        awaitInFlight(key, 1);
        // the Cancel RPC gives the submitted job's slot back
        c.cancel(dev.sdserve.api.grpc.v1.JobRef.newBuilder().setJobId(submitted).build()).await().atMost(Duration.ofSeconds(10));
        awaitState(submitted, dev.sdserve.job.JobState.CANCELLED);
        awaitInFlight(key, 0);
    }

    @Test
    void a1111CallsHoldTheSlotWhileTheirJobsRun() throws Exception {
        String key = "key-q-a1111";
        CompletableFuture<io.restassured.response.Response> a1111 = CompletableFuture.supplyAsync(() ->
                given().header("x-api-key", key).contentType(ContentType.JSON)
                        .body("{\"prompt\":\"quota a1111\",\"steps\":150,\"width\":64,\"height\":64,\"seed\":5,\"n_iter\":2}")
                        .post("/sdapi/v1/txt2img"));
        long end = System.nanoTime() + 10_000_000_000L;
        while (service.jobs().stream().noneMatch(j -> j.request().prompt().equals("quota a1111")) && System.nanoTime() < end) {
            Thread.sleep(10);
        }
        String rest = post(key, body(150, "quota a1111 rest")).then().statusCode(202).extract().path("id");
        assertEquals(2, inFlight(key));
        var refused = given().header("x-api-key", key).contentType(ContentType.JSON)
                .body("{\"prompt\":\"x\",\"steps\":2,\"width\":64,\"height\":64}").post("/sdapi/v1/txt2img");
        assertEquals(429, refused.statusCode(), refused.asString());
        assertTrue(Integer.parseInt(refused.header("Retry-After")) >= 1);
        // interrupt ends the txt2img call (with what it made): its slot returns
        given().header("x-api-key", key).post("/sdapi/v1/interrupt").then().statusCode(200);
        assertEquals(200, a1111.get(30, TimeUnit.SECONDS).statusCode());
        awaitInFlight(key, 1);
        given().header("x-api-key", key).contentType(ContentType.JSON)
                .body("{\"prompt\":\"quota a1111 after\",\"steps\":2,\"width\":64,\"height\":64,\"seed\":6}")
                .post("/sdapi/v1/txt2img").then().statusCode(200);
        awaitInFlight(key, 1);
        given().header("x-api-key", key).delete("/v1/generations/" + rest).then().statusCode(200);
        awaitInFlight(key, 0);
    }
}
