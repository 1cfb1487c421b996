package dev.sdserve.api;

import dev.sdserve.api.grpc.ProtoMapper;
import dev.sdserve.api.grpc.v1.GenerateEvent;
import dev.sdserve.api.grpc.v1.GenerateRequest;
import dev.sdserve.api.grpc.v1.Generation;
import dev.sdserve.api.grpc.v1.LoraRef;
import dev.sdserve.engine.LoraWeight;
import dev.sdserve.job.GenerationService;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.quarkus.grpc.GrpcClient;
import io.quarkus.test.junit.QuarkusTest;
import io.restassured.http.ContentType;
import io.restassured.response.Response;
import jakarta.inject.Inject;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static io.restassured.RestAssured.given;
import static org.hamcrest.Matchers.*;
import static org.junit.jupiter.api.Assertions.*;

/**
 * Model and LoRA names are checked at admission, before a job exists, with the same answer on every transport:
 * gRPC (status + {@code field} trailer, no event before it), REST ({@code {"error": {code, message, field}}}) and
 * A1111 (422 {@code detail[].loc} for a malformed name, 404 for an unknown one). The test profile's models
 * directory has one LoRA, {@code film}; the fake engine's models are embedded, cold and broken.
 */
@QuarkusTest
class AdmissionChecksApiTest {
    @GrpcClient("sdserve")
    Generation client;
    @Inject
    GenerationService service;

    private int jobs() {
        return service.jobs().size();
    }

    private static Response rest(Map<String, Object> body) {
        return given().contentType(ContentType.JSON).body(body).post("/v1/generations");
    }

    private static Map<String, Object> body(String prompt, Object... more) {
        Map<String, Object> m = new java.util.LinkedHashMap<>(Map.of("prompt", prompt, "steps", 2, "width", 64, "height", 64, "seed", 1));
        for (int i = 0; i < more.length; i += 2) {
            m.put((String) more[i], more[i + 1]);
        }
        return m;
    }

    /** The events a Generate call got before its status, and the status (null if it completed). */
    private record Outcome(List<GenerateEvent> events, StatusRuntimeException error) {
    }

    private Outcome grpc(GenerateRequest r) {
        List<GenerateEvent> events = new ArrayList<>();
        try {
            client.generate(r).onItem().invoke(events::add).collect().asList().await().atMost(Duration.ofSeconds(30));
            return new Outcome(events, null);
        } catch (StatusRuntimeException e) {
            return new Outcome(events, e);
        }
    }

    private static GenerateRequest.Builder grpcReq(String prompt) {
        return GenerateRequest.newBuilder().setPrompt(prompt).setSteps(2).setWidth(64).setHeight(64).setSeed(1);
    }

    private static void assertGrpc(Outcome o, Status.Code code, String field, String... fragments) {
        assertNotNull(o.error(), "refused");
        assertEquals(code, o.error().getStatus().getCode(), o.error().getStatus().toString());
        assertEquals(field, o.error().getTrailers().get(ProtoMapper.FIELD));
        assertEquals(List.of(), o.events(), "refused before a job exists: no queued/started events");
        for (String f : fragments) {
            assertTrue(o.error().getStatus().getDescription().contains(f), o.error().getStatus().getDescription());
        }
    }

    @Test
    void unknownLoraIsRefusedAtAdmissionOnEveryTransport() {
        int before = jobs();
        rest(body("a fox <lora:no-such-lora:0.8>")).then().statusCode(404)
                .body("error.code", equalTo("NOT_FOUND")).body("error.field", equalTo("prompt"))
                .body("error.message", allOf(containsString("no-such-lora"), containsString("film")));
        rest(body("a fox", "loras", List.of(Map.of("name", "film", "weight", 0.5), Map.of("name", "nope", "weight", 1))))
                .then().statusCode(404).body("error.field", equalTo("loras[1].name"));
        assertGrpc(grpc(grpcReq("a fox <lora:no-such-lora:0.8>").build()), Status.Code.NOT_FOUND, "prompt", "film");
        assertGrpc(grpc(grpcReq("a fox").addLoras(LoraRef.newBuilder().setName("nope").setWeight(1)).build()),
                Status.Code.NOT_FOUND, "loras[0].name");
        StatusRuntimeException submit = assertThrows(StatusRuntimeException.class, () -> client.submit(
                grpcReq("a fox <lora:no-such-lora:1>").build()).await().atMost(Duration.ofSeconds(10)));
        assertEquals(Status.Code.NOT_FOUND, submit.getStatus().getCode());
        given().contentType(ContentType.JSON).body(Map.of("prompt", "a fox <lora:no-such-lora:0.8>", "steps", 2,
                        "width", 64, "height", 64)).post("/sdapi/v1/txt2img")
                .then().statusCode(404).body("detail", allOf(containsString("no-such-lora"), containsString("film")));
        assertEquals(before, jobs(), "no job was created for any of them");
    }

    @Test
    void namesThatAreNotPlainAreInvalid() {
        int before = jobs();
        rest(body("a fox", "loras", List.of(Map.of("name", "../../secret")))).then().statusCode(400)
                .body("error.code", equalTo("INVALID_ARGUMENT")).body("error.field", equalTo("loras[0].name"));
        rest(body("a fox <lora:../../secret:1>")).then().statusCode(400).body("error.field", equalTo("prompt"));
        rest(body("a fox", "model", "../models/x")).then().statusCode(400).body("error.field", equalTo("model"));
        assertGrpc(grpc(grpcReq("a fox <lora:../../secret:1>").build()), Status.Code.INVALID_ARGUMENT, "prompt");
        assertGrpc(grpc(grpcReq("a fox").setModel("/etc/passwd").build()), Status.Code.INVALID_ARGUMENT, "model");
        given().contentType(ContentType.JSON).body(Map.of("prompt", "a fox <lora:../../secret:1>")).post("/sdapi/v1/txt2img")
                .then().statusCode(422).body("detail[0].loc", equalTo(List.of("body", "prompt")))
                .body("detail[0].msg", containsString("secret"));
        assertEquals(before, jobs());
    }

    @Test
    void unknownModelListsTheModelsTheServerHas() {
        rest(body("a fox", "model", "sdxl-base")).then().statusCode(404).body("error.field", equalTo("model"))
                .body("error.message", allOf(containsString("sdxl-base"), containsString("embedded"), containsString("cold")));
        assertGrpc(grpc(grpcReq("a fox").setModel("sdxl-base").build()), Status.Code.NOT_FOUND, "model", "embedded");
        given().contentType(ContentType.JSON).body(Map.of("prompt", "x", "override_settings", Map.of("sd_model_checkpoint", "sdxl-base")))
                .post("/sdapi/v1/txt2img").then().statusCode(404).body("detail", containsString("embedded"));
    }

    @Test
    void aLoraTheServerHasIsAcceptedFromTheListAndFromTheTag() {
        String id = rest(body("a fox <lora:film:0.25>", "loras", List.of(Map.of("name", "film", "weight", 0.5))))
                .then().statusCode(202).extract().path("id");
        var r = service.find(id).orElseThrow().request();
        assertEquals("a fox <lora:film:0.25>", r.prompt(), "the prompt stays as written");
        assertEquals(List.of(new LoraWeight("film", 0.75)), r.loras());
        Outcome ok = grpc(grpcReq("a fox <lora:film:1>").build());
        assertNull(ok.error());
        assertTrue(ok.events().get(ok.events().size() - 1).hasCompleted());
        given().get("/v1/loras").then().statusCode(200).body("loras.name", hasItem("film"));
    }
}
