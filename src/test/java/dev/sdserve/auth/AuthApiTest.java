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
                    "sdserve.auth.keys", "key-tenant-a:tenantA,key-rate-bbb:tenantB,key-conc-ccc:tenantC",
                    "sdserve.auth.rate-per-second", "0.2", "sdserve.auth.burst", "3", "sdserve.auth.max-concurrent", "2");
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
    void rateLimitRefusesWith429AndResourceExhaustedWithHints() {
        int ok = 0;
        for (int i = 0; i < 3; i++) {
            ok += given().header("x-api-key", "key-rate-bbb").contentType(ContentType.JSON).body(BODY)
                    .post("/v1/generations").statusCode() == 202 ? 1 : 0;
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
}
