package dev.sdserve.api;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.sdserve.api.grpc.v1.*;
import io.quarkus.grpc.GrpcClient;
import io.quarkus.test.junit.QuarkusTest;
import io.restassured.http.ContentType;
import io.restassured.response.Response;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.List;
import java.util.Map;

import static io.restassured.RestAssured.given;
import static org.hamcrest.Matchers.*;
import static org.junit.jupiter.api.Assertions.*;

/**
 * The embedded model's recommended settings (DPM++ 2M, 20 steps, guidance 5, 128×128) over every API, on the test
 * profile's fake engine, whose "sd-shapes" carries them: listed by REST, gRPC and A1111; applied to whatever a
 * request leaves unset in each API's own way of leaving it unset; explicit values win.
 */
@QuarkusTest
class RecommendedDefaultsApiTest {
    private static final ObjectMapper M = new ObjectMapper();

    @GrpcClient("sdserve")
    Generation grpc;

    @Test
    void restListsThemAndAppliesThemToAbsentFields() {
        given().when().get("/v1/models").then().statusCode(200)
                .body("models.find { it.name == 'sd-shapes' }.description", startsWith("Demonstration model (128×128)"))
                .body("models.find { it.name == 'sd-shapes' }.recommended.sampler", equalTo("dpmpp_2m"))
                .body("models.find { it.name == 'sd-shapes' }.recommended.steps", equalTo(20))
                .body("models.find { it.name == 'sd-shapes' }.recommended.guidance_scale", equalTo(5.0f))
                .body("models.find { it.name == 'sd-shapes' }.recommended.width", equalTo(128))
                .body("models.find { it.name == 'embedded' }.recommended", anEmptyMap());
        String id = given().contentType(ContentType.JSON)
                .body(Map.of("prompt", "a red circle", "model", "sd-shapes", "steps", 2, "seed", 1))
                .when().post("/v1/generations").then().statusCode(202).extract().path("id");
        given().when().get("/v1/generations/" + id).then().statusCode(200)
                .body("parameters.sampler", equalTo("dpmpp_2m"))
                .body("parameters.guidance_scale", equalTo(5.0f))
                .body("parameters.width", equalTo(128)).body("parameters.height", equalTo(128))
                .body("parameters.steps", equalTo(2));
        // JSON null is "unset" too; explicit values win
        String body = """
                {"prompt": "a red circle", "model": "sd-shapes", "steps": 2, "sampler": null, "guidance_scale": 0,
                 "width": 64}""";
        String id2 = given().contentType(ContentType.JSON).body(body).when().post("/v1/generations")
                .then().statusCode(202).extract().path("id");
        given().when().get("/v1/generations/" + id2).then().statusCode(200)
                .body("parameters.sampler", equalTo("dpmpp_2m"))
                .body("parameters.guidance_scale", equalTo(0.0f))
                .body("parameters.width", equalTo(64)).body("parameters.height", equalTo(128));
        // another model keeps the server's defaults
        String id3 = given().contentType(ContentType.JSON).body(Map.of("prompt", "x", "model", "embedded", "steps", 2))
                .when().post("/v1/generations").then().statusCode(202).extract().path("id");
        given().when().get("/v1/generations/" + id3).then().statusCode(200)
                .body("parameters.sampler", equalTo("euler_a"))
                .body("parameters.guidance_scale", equalTo(7.5f));
    }

    private ResolvedParameters completed(GenerateRequest r) {
        List<GenerateEvent> events = grpc.generate(r).collect().asList().await().atMost(Duration.ofSeconds(60));
        GenerateEvent last = events.get(events.size() - 1);
        assertTrue(last.hasCompleted(), last.toString());
        return last.getCompleted().getParameters();
    }

    @Test
    void grpcListsThemAndAppliesThemToZerosAndAbsentOptionals() {
        ModelDescription d = grpc.listModels(ListModelsRequest.getDefaultInstance()).await().atMost(Duration.ofSeconds(5))
                .getModelsList().stream().filter(m -> m.getName().equals("sd-shapes")).findFirst().orElseThrow();
        assertTrue(d.getDescription().startsWith("Demonstration model (128×128)"), d.getDescription());
        assertEquals("dpmpp_2m", d.getRecommended().getSampler());
        assertEquals(20, d.getRecommended().getSteps());
        assertTrue(d.getRecommended().hasGuidanceScale());
        assertEquals(5.0, d.getRecommended().getGuidanceScale());
        assertEquals(128, d.getRecommended().getWidth());
        assertEquals(128, d.getRecommended().getHeight());

        ResolvedParameters p = completed(GenerateRequest.newBuilder().setPrompt("a red circle").setModel("sd-shapes")
                .setSteps(2).setSeed(1).build());
        assertEquals("dpmpp_2m", p.getSampler());
        assertEquals(5.0, p.getGuidanceScale());
        assertEquals(128, p.getWidth());
        assertEquals(128, p.getHeight());
        ResolvedParameters q = completed(GenerateRequest.newBuilder().setPrompt("a red circle").setModel("sd-shapes")
                .setSteps(2).setSeed(1).setGuidanceScale(0).setSampler("euler").setWidth(64).build());
        assertEquals("euler", q.getSampler());
        assertEquals(0.0, q.getGuidanceScale(), "an explicit 0 guidance (present optional) wins");
        assertEquals(64, q.getWidth());
        assertEquals(128, q.getHeight());
    }

    @Test
    void a1111ListsThemAndAppliesThemToOmittedFields() throws Exception {
        Response models = given().when().get("/sdapi/v1/sd-models");
        assertEquals(200, models.statusCode(), models.asString());
        JsonNode list = M.readTree(models.asString());
        JsonNode demo = null;
        for (JsonNode m : list) {
            if (m.get("model_name").asText().equals("sd-shapes")) {
                demo = m;
            }
        }
        assertNotNull(demo, list.toString());
        assertTrue(demo.get("description").asText().startsWith("Demonstration model"), demo.toString());
        assertEquals("DPM++ 2M", demo.get("recommended").get("sampler_name").asText());
        assertEquals(5.0, demo.get("recommended").get("cfg_scale").asDouble());
        assertEquals(128, demo.get("recommended").get("width").asInt());

        String payload = """
                {"prompt": "a big red circle in the center, blue background", "seed": 3, "steps": 2,
                 "override_settings": {"sd_model_checkpoint": "sd-shapes"}}""";
        Response r = given().contentType(ContentType.JSON).body(payload).when().post("/sdapi/v1/txt2img");
        assertEquals(200, r.statusCode(), r.asString());
        JsonNode info = M.readTree(r.<String>path("info"));
        assertEquals("DPM++ 2M", info.get("sampler_name").asText());
        assertEquals(5.0, info.get("cfg_scale").asDouble());
        assertEquals(128, info.get("width").asInt());
        assertEquals(128, info.get("height").asInt());
        assertEquals(2, info.get("steps").asInt());
    }
}
