package dev.sdserve.api;

import io.quarkus.test.junit.QuarkusTest;
import io.restassured.http.ContentType;
import io.restassured.response.Response;
import org.junit.jupiter.api.Test;

import java.awt.image.BufferedImage;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import javax.imageio.ImageIO;

import static io.restassured.RestAssured.given;
import static org.hamcrest.Matchers.*;
import static org.junit.jupiter.api.Assertions.*;

@QuarkusTest
class RestApiTest {

    private static String submit(Map<String, Object> body) {
        return given().contentType(ContentType.JSON).body(body)
                .when().post("/v1/generations")
                .then().statusCode(202)
                .header("Location", containsString("/v1/generations/"))
                .body("id", notNullValue())
                .body("links.image", endsWith("/image"))
                .extract().path("id");
    }

    @Test
    void happyPathSubmitWatchAndFetchTheImage() throws IOException {
        String id = submit(Map.of("prompt", "a red fox", "steps", 4, "seed", 42, "width", 64, "height", 64,
                "preview", Map.of("every_steps", 1)));
        String sse = given().accept("text/event-stream").when().get("/v1/generations/" + id + "/events")
                .then().statusCode(200).extract().asString();
        List<String> names = new ArrayList<>();
        Matcher m = Pattern.compile("(?m)^event:\\s*(\\w+)").matcher(sse);
        while (m.find()) {
            names.add(m.group(1));
        }
        assertEquals("completed", names.get(names.size() - 1), sse);
        assertTrue(names.contains("step"), "step events: " + names);
        assertTrue(sse.contains("\"preview\""), "previews present");

        byte[] png = given().when().get("/v1/generations/" + id + "/image?wait=30")
                .then().statusCode(200).contentType("image/png").header("X-Seed", "42")
                .extract().asByteArray();
        BufferedImage img = ImageIO.read(new ByteArrayInputStream(png));
        assertEquals(64, img.getWidth());
        assertEquals(64, img.getHeight());

        String metrics = given().when().get("/q/metrics").then().statusCode(200).extract().asString();
        for (String name : List.of("sdserve_requests_admitted_total", "sdserve_requests_completed_total",
                "sdserve_step_duration_seconds_count", "sdserve_time_to_first_preview_seconds_count",
                "sdserve_batch_size_count")) {
            assertTrue(metrics.contains(name), name + " in /q/metrics");
        }
        given().when().get("/v1/generations/" + id).then().statusCode(200)
                .body("state", equalTo("completed"))
                .body("parameters.seed", equalTo(42))
                .body("parameters.steps", equalTo(4))
                .body("seeds[0]", equalTo(42));
    }

    @Test
    void validationErrorsNameTheField() {
        given().contentType(ContentType.JSON).body(Map.of("prompt", "x", "width", 100))
                .when().post("/v1/generations")
                .then().statusCode(400)
                .body("error.code", equalTo("INVALID_ARGUMENT"))
                .body("error.field", equalTo("width"))
                .body("error.message", containsString("8"));
        given().contentType(ContentType.JSON).body(Map.of("prompt", "x", "steps", 0))
                .when().post("/v1/generations")
                .then().statusCode(400).body("error.field", equalTo("steps"));
        given().contentType(ContentType.JSON).body(Map.of("prompt", "x", "sampler", "no-such-sampler"))
                .when().post("/v1/generations")
                .then().statusCode(400).body("error.field", equalTo("sampler"));
        given().contentType(ContentType.JSON).body(Map.of("prompt", "x", "slo_class", "urgent"))
                .when().post("/v1/generations")
                .then().statusCode(400).body("error.field", equalTo("slo_class"));
        given().contentType(ContentType.JSON).body("{\"prompt\": \"x\", \"steps\": \"many\"}")
                .when().post("/v1/generations")
                .then().statusCode(400).body("error.field", equalTo("steps"));
        given().contentType(ContentType.JSON).body("{not json")
                .when().post("/v1/generations")
                .then().statusCode(400).body("error.code", equalTo("INVALID_ARGUMENT"));
    }

    @Test
    void unknownJobsAndModelsAre404() {
        given().when().get("/v1/generations/nope").then().statusCode(404).body("error.code", equalTo("NOT_FOUND"));
        given().when().get("/v1/generations/nope/image").then().statusCode(404);
        given().when().delete("/v1/generations/nope").then().statusCode(404);
        given().contentType(ContentType.JSON).body(Map.of("prompt", "x", "model", "no-such-model"))
                .when().post("/v1/generations")
                .then().statusCode(404).body("error.message", containsString("no-such-model"));
    }

    @Test
    void cancelStopsARunningJob() throws InterruptedException {
        String id = submit(Map.of("prompt", "slow", "steps", 150, "width", 64, "height", 64));
        given().when().delete("/v1/generations/" + id).then().statusCode(200).body("id", equalTo(id));
        String state = null;
        for (int i = 0; i < 100; i++) {
            state = given().when().get("/v1/generations/" + id).then().extract().path("state");
            if (state.equals("cancelled")) {
                break;
            }
            Thread.sleep(50);
        }
        assertEquals("cancelled", state);
        given().when().get("/v1/generations/" + id + "/image").then().statusCode(409)
                .body("error.message", containsString("cancelled"));
    }

    @Test
    void impossibleDeadlineIsRefusedWithRetryAfter() {
        Response r = given().contentType(ContentType.JSON)
                .body(Map.of("prompt", "x", "steps", 150, "width", 512, "height", 512, "deadline_ms", 50))
                .when().post("/v1/generations");
        assertEquals(429, r.statusCode(), r.asString());
        assertNotNull(r.header("Retry-After"));
        assertEquals("RESOURCE_EXHAUSTED", r.path("error.code"));
    }

    @Test
    void listsModelsSamplersAndServesOpenApi() {
        given().when().get("/v1/models").then().statusCode(200)
                .body("models.name", hasItem("embedded"));
        given().when().get("/v1/samplers").then().statusCode(200)
                .body("samplers.id", hasItems("euler_a", "dpmpp_2m_karras", "pndm"));
        given().when().get("/q/openapi").then().statusCode(200).body(containsString("/v1/generations"));
    }
}
