package dev.sdserve.api;

import dev.sdserve.api.grpc.ProtoMapper;
import dev.sdserve.api.grpc.v1.LoadModelRequest;
import dev.sdserve.api.grpc.v1.ListModelStatesRequest;
import dev.sdserve.api.grpc.v1.ModelRef;
import dev.sdserve.api.grpc.v1.ModelState;
import dev.sdserve.api.grpc.v1.Models;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.quarkus.grpc.GrpcClient;
import io.quarkus.test.junit.QuarkusTest;
import io.restassured.http.ContentType;
import io.restassured.response.Response;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.Map;

import static io.restassured.RestAssured.given;
import static org.hamcrest.Matchers.containsString;
import static org.hamcrest.Matchers.hasItems;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Model residency over REST and gRPC, on the fake engine of the test profile: "cold" loads in 300 ms, "broken" fails
 * to load ("simulated load failure"); the breaker stays open 30 s after a failure.
 */
@QuarkusTest
class ModelsApiTest {
    @GrpcClient("sdserve")
    Models grpc;

    private static Response post(String path) {
        return given().when().post(path);
    }

    private ModelState grpc(java.util.function.Supplier<io.smallrye.mutiny.Uni<ModelState>> call) {
        return call.get().await().atMost(Duration.ofSeconds(20));
    }

    @Test
    void restListsLoadsPinsAndUnloads() {
        post("/v1/models/cold/unload").then().statusCode(200).body("resident", org.hamcrest.Matchers.is(false));
        given().when().get("/v1/models").then().statusCode(200)
                .body("models.name", hasItems("embedded", "cold", "broken"))
                .body("models.find { it.name == 'cold' }.resident", org.hamcrest.Matchers.is(false))
                .body("models.find { it.name == 'embedded' }.resident", org.hamcrest.Matchers.is(true))
                .body("models.find { it.name == 'cold' }.breaker", org.hamcrest.Matchers.is("closed"));
        // no wait: 202 while loading
        Response r = post("/v1/models/cold/load?wait_ms=0");
        assertEquals(202, r.statusCode(), r.asString());
        assertEquals(true, r.path("loading"));
        // wait: 200 once resident; the load took about the simulated 300 ms
        r = post("/v1/models/cold/load");
        assertEquals(200, r.statusCode(), r.asString());
        assertEquals(true, r.path("resident"));
        assertEquals(false, r.path("loading"));
        float ms = r.path("lastLoadMillis");
        assertTrue(ms >= 290 && ms < 5000, "load took " + ms + " ms");
        post("/v1/models/cold/pin").then().statusCode(200).body("pinned", org.hamcrest.Matchers.is(true));
        given().when().get("/v1/models/cold").then().statusCode(200).body("pinned", org.hamcrest.Matchers.is(true));
        post("/v1/models/cold/unpin").then().statusCode(200).body("pinned", org.hamcrest.Matchers.is(false));
        post("/v1/models/cold/unload").then().statusCode(200).body("resident", org.hamcrest.Matchers.is(false));
        post("/v1/models/nope/load").then().statusCode(404).body("error.code", org.hamcrest.Matchers.is("NOT_FOUND"));
        post("/v1/models/rescan").then().statusCode(200).body("models", org.hamcrest.Matchers.greaterThanOrEqualTo(3));
    }

    @Test
    void generationForAColdModelWaitsForItsLoadAndUnloadIsRefusedWhileItRuns() {
        post("/v1/models/cold/unload").then().statusCode(200);
        String id = given().contentType(ContentType.JSON)
                .body(Map.of("prompt", "a cube", "model", "cold", "steps", 30, "width", 64, "height", 64))
                .when().post("/v1/generations").then().statusCode(202).extract().path("id");
        Response refused = post("/v1/models/cold/unload");
        assertEquals(409, refused.statusCode(), refused.asString());
        assertEquals("FAILED_PRECONDITION", refused.path("error.code"));
        assertTrue(refused.<String>path("error.message").contains("in progress"), refused.asString());
        given().when().get("/v1/generations/" + id + "/image?wait=60").then().statusCode(200).contentType("image/png");
        given().when().get("/v1/models/cold").then().body("resident", org.hamcrest.Matchers.is(true))
                .body("activeJobs", org.hamcrest.Matchers.is(0));
        post("/v1/models/cold/unload").then().statusCode(200);
    }

    @Test
    void grpcLoadsPinsAndUnloads() {
        grpc(() -> grpc.unloadModel(ModelRef.newBuilder().setName("cold").build()));
        ModelState s = grpc(() -> grpc.loadModel(LoadModelRequest.newBuilder().setName("cold").build()));
        assertTrue(s.getResident() && !s.getLoading(), s.toString());
        assertTrue(s.getLastLoadMs() >= 290, s.toString());
        assertTrue(grpc(() -> grpc.pinModel(ModelRef.newBuilder().setName("cold").build())).getPinned());
        assertFalse(grpc(() -> grpc.unpinModel(ModelRef.newBuilder().setName("cold").build())).getPinned());
        var all = grpc.listModelStates(ListModelStatesRequest.getDefaultInstance()).await().atMost(Duration.ofSeconds(5));
        assertTrue(all.getModelsList().stream().anyMatch(m -> m.getName().equals("cold") && m.getResident()));
        assertFalse(grpc(() -> grpc.unloadModel(ModelRef.newBuilder().setName("cold").build())).getResident());
        StatusRuntimeException nf = assertThrows(StatusRuntimeException.class,
                () -> grpc(() -> grpc.getModel(ModelRef.newBuilder().setName("nope").build())));
        assertEquals(Status.Code.NOT_FOUND, nf.getStatus().getCode());
    }

    @Test
    void brokenModelFailsWithItsReasonThenTheOpenBreakerRefusesFastOnBothTransports() {
        Response first = post("/v1/models/broken/load");
        // the first load fails naming file and reason (409); later calls meet the open breaker (503 + Retry-After)
        assertEquals(409, first.statusCode(), first.asString());
        assertEquals("FAILED_PRECONDITION", first.path("error.code"));
        assertTrue(first.<String>path("error.message").contains("broken.safetensors")
                && first.<String>path("error.message").contains("simulated load failure"), first.asString());
        long t0 = System.nanoTime();
        Response again = post("/v1/models/broken/load");
        assertEquals(503, again.statusCode(), again.asString());
        assertNotNull(again.header("Retry-After"));
        assertTrue((System.nanoTime() - t0) / 1e6 < 2000, "refused fast");
        assertTrue(again.<String>path("error.message").contains("simulated load failure"), again.asString());
        given().when().get("/v1/models/broken").then().body("breaker", org.hamcrest.Matchers.is("open"))
                .body("lastError", containsString("simulated load failure"));
        // a generation for it is refused at submission, with the retry hint
        given().contentType(ContentType.JSON).body(Map.of("prompt", "x", "model", "broken", "steps", 2))
                .when().post("/v1/generations").then().statusCode(503).header("Retry-After", org.hamcrest.Matchers.notNullValue())
                .body("error.code", org.hamcrest.Matchers.is("UNAVAILABLE"));
        StatusRuntimeException e = assertThrows(StatusRuntimeException.class,
                () -> grpc(() -> grpc.loadModel(LoadModelRequest.newBuilder().setName("broken").build())));
        assertEquals(Status.Code.UNAVAILABLE, e.getStatus().getCode());
        String retry = io.grpc.Status.trailersFromThrowable(e).get(ProtoMapper.RETRY_AFTER_MS);
        assertNotNull(retry);
        assertTrue(Long.parseLong(retry) > 20_000, retry);
    }
}
