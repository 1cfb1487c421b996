package dev.sdserve.api.a1111;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.sdserve.image.InfoText;
import dev.sdserve.image.PngText;
import io.quarkus.test.junit.QuarkusTest;
import io.restassured.http.ContentType;
import io.restassured.response.Response;
import org.junit.jupiter.api.Test;

import javax.imageio.ImageIO;
import java.awt.image.BufferedImage;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.util.Base64;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

import static io.restassured.RestAssured.given;
import static org.hamcrest.Matchers.*;
import static org.junit.jupiter.api.Assertions.*;

/** The A1111-compatible routes over HTTP, with the request and response shapes A1111 documents. */
@QuarkusTest
class A1111ApiTest {
    static final ObjectMapper M = new ObjectMapper();

    private static BufferedImage decode(byte[] png) throws IOException {
        return ImageIO.read(new ByteArrayInputStream(png));
    }

    @Test
    void txt2imgAsAnA1111ScriptSendsIt() throws Exception {
        // The JSON of a typical A1111 API script (curl -d @payload.json http://host/sdapi/v1/txt2img).
        String payload = """
                {"prompt": "a lighthouse at dusk", "negative_prompt": "blurry", "seed": 42, "steps": 5,
                 "cfg_scale": 7, "width": 64, "height": 64, "sampler_name": "Euler a",
                 "batch_size": 2, "n_iter": 1, "restore_faces": false, "tiling": false,
                 "override_settings": {"sd_model_checkpoint": "embedded"}, "send_images": true, "save_images": false,
                 "alwayson_scripts": {}}""";
        Response r = given().contentType(ContentType.JSON).body(payload).when().post("/sdapi/v1/txt2img");
        assertEquals(200, r.statusCode(), r.asString());
        List<String> images = r.path("images");
        assertEquals(2, images.size());
        assertEquals("a lighthouse at dusk", r.path("parameters.prompt"));
        assertEquals(Integer.valueOf(5), r.path("parameters.steps"));
        assertEquals(Integer.valueOf(42), r.path("parameters.seed"));
        String infoString = r.path("info");
        JsonNode info = M.readTree(infoString); // a JSON document inside a string, as in A1111
        assertEquals(42, info.get("seed").asLong());
        assertEquals(List.of(42L, 43L), List.of(info.get("all_seeds").get(0).asLong(), info.get("all_seeds").get(1).asLong()));
        assertEquals("Euler a", info.get("sampler_name").asText());
        assertEquals(2, info.get("infotexts").size());

        for (int k = 0; k < 2; k++) {
            byte[] png = Base64.getDecoder().decode(images.get(k));
            BufferedImage img = decode(png);
            assertEquals(64, img.getWidth());
            assertEquals(64, img.getHeight());
            String text = PngText.get(png, "parameters").orElseThrow(() -> new AssertionError("no parameters chunk"));
            InfoText.Parsed p = InfoText.parse(text);
            assertEquals("a lighthouse at dusk", p.prompt());
            assertEquals("blurry", p.negativePrompt());
            assertEquals(Long.toString(42 + k), p.parameters().get("Seed"));
            assertEquals("Euler a", p.parameters().get("Sampler"));
            assertEquals("5", p.parameters().get("Steps"));
            assertEquals("7", p.parameters().get("CFG scale"));
            assertEquals("64x64", p.parameters().get("Size"));
            assertEquals("embedded", p.parameters().get("Model"));
        }

        // The same request through the native REST API gives the same pixels: the mapping lost nothing.
        String id = given().contentType(ContentType.JSON).body(Map.of("prompt", "a lighthouse at dusk",
                        "negative_prompt", "blurry", "seed", 43, "steps", 5, "guidance_scale", 7, "width", 64,
                        "height", 64, "sampler", "euler_a", "model", "embedded"))
                .when().post("/v1/generations").then().statusCode(202).extract().path("id");
        byte[] nativePng = given().when().get("/v1/generations/" + id + "/image?wait=60").then().statusCode(200)
                .extract().asByteArray();
        BufferedImage a = decode(Base64.getDecoder().decode(images.get(1)));
        BufferedImage b = decode(nativePng);
        for (int y = 0; y < 64; y++) {
            for (int x = 0; x < 64; x++) {
                assertEquals(b.getRGB(x, y), a.getRGB(x, y), "pixel " + x + "," + y);
            }
        }
    }

    @Test
    void loraTagsLeaveThePromptAndReachTheRequest() throws Exception {
        Response r = given().contentType(ContentType.JSON)
                .body("{\"prompt\": \"castle <lora:film:0.8>\", \"seed\": 7, \"steps\": 2, \"width\": 64, \"height\": 64}")
                .when().post("/sdapi/v1/txt2img");
        if (r.statusCode() == 404) {
            // A server without that LoRA refuses it, naming it (A1111 error shape).
            assertTrue(r.<String>path("detail").contains("film"), r.asString());
            return;
        }
        assertEquals(200, r.statusCode(), r.asString());
        JsonNode info = M.readTree(r.<String>path("info"));
        String infotext = info.get("infotexts").get(0).asText();
        assertTrue(infotext.startsWith("castle <lora:film:0.8>\n"), infotext);
    }

    @Test
    void validationErrorsUseA1111Shapes() {
        given().contentType(ContentType.JSON).body("{\"prompt\": \"x\", \"steps\": \"many\"}")
                .when().post("/sdapi/v1/txt2img").then().statusCode(422)
                .body("detail[0].loc", equalTo(List.of("body", "steps")))
                .body("detail[0].type", equalTo("type_error.integer"));
        given().contentType(ContentType.JSON).body(Map.of("prompt", "x", "steps", 0))
                .when().post("/sdapi/v1/txt2img").then().statusCode(422)
                .body("detail[0].loc", equalTo(List.of("body", "steps")))
                .body("detail[0].msg", containsString("steps"));
        given().contentType(ContentType.JSON).body(Map.of("prompt", "x", "width", 100))
                .when().post("/sdapi/v1/txt2img").then().statusCode(422)
                .body("detail[0].loc", equalTo(List.of("body", "width")));
        given().contentType(ContentType.JSON).body(Map.of("prompt", "x", "cfg_scale", 1000))
                .when().post("/sdapi/v1/txt2img").then().statusCode(422)
                .body("detail[0].loc", equalTo(List.of("body", "cfg_scale")));
        given().contentType(ContentType.JSON).body(Map.of("prompt", "x", "enable_hr", true))
                .when().post("/sdapi/v1/txt2img").then().statusCode(422)
                .body("detail[0].loc", equalTo(List.of("body", "enable_hr")));
        given().contentType(ContentType.JSON).body("{\"prompt\": ")
                .when().post("/sdapi/v1/txt2img").then().statusCode(422)
                .body("detail[0].type", equalTo("value_error.jsondecode"));
        given().contentType(ContentType.JSON).body(Map.of("prompt", "x", "sampler_name", "Nope a"))
                .when().post("/sdapi/v1/txt2img").then().statusCode(404)
                .body("detail", equalTo("Sampler not found"));
        given().contentType(ContentType.JSON)
                .body(Map.of("prompt", "x", "override_settings", Map.of("sd_model_checkpoint", "nope.safetensors [0123456789]")))
                .when().post("/sdapi/v1/txt2img").then().statusCode(404)
                .body("detail", containsString("nope"));
    }

    @Test
    void progressShowsTheJobInFlightAndInterruptStopsIt() throws Exception {
        given().when().get("/sdapi/v1/progress").then().statusCode(200)
                .body("state", hasKey("job_count")).body("$", hasKey("current_image"));
        CompletableFuture<Response> call = CompletableFuture.supplyAsync(() -> given().contentType(ContentType.JSON)
                .body(Map.of("prompt", "slow", "steps", 150, "n_iter", 4, "width", 64, "height", 64, "seed", 5))
                .when().post("/sdapi/v1/txt2img"));
        Response p = null;
        for (int i = 0; i < 400; i++) {
            p = given().when().get("/sdapi/v1/progress").then().statusCode(200).extract().response();
            Integer step = p.path("state.sampling_step");
            if (step != null && step >= 2 && p.path("current_image") != null
                    && Integer.valueOf(4).equals(p.path("state.job_count"))) {
                break;
            }
            Thread.sleep(10);
        }
        assertNotNull(p);
        assertEquals(Integer.valueOf(4), p.path("state.job_count"), p.asString());
        assertEquals(Integer.valueOf(150), p.path("state.sampling_steps"), p.asString());
        float progress = p.path("progress");
        assertTrue(progress > 0 && progress < 1, p.asString());
        BufferedImage preview = decode(Base64.getDecoder().decode(p.<String>path("current_image")));
        assertTrue(preview.getWidth() > 0);

        given().when().post("/sdapi/v1/interrupt").then().statusCode(200);
        Response r = call.get(30, TimeUnit.SECONDS);
        assertEquals(200, r.statusCode(), r.asString());
        JsonNode info = M.readTree(r.<String>path("info"));
        assertTrue(info.get("interrupted").asBoolean(), info.toString());
        assertTrue(r.<List<String>>path("images").size() < 4, "stopped before the end");
    }

    /** Starts a txt2img call and waits until /progress shows it at {@code minStep} or later of its first job. */
    private static CompletableFuture<Response> startAndWait(Map<String, Object> body, int minStep) throws InterruptedException {
        CompletableFuture<Response> call = CompletableFuture.supplyAsync(() -> given().contentType(ContentType.JSON)
                .body(body).when().post("/sdapi/v1/txt2img"));
        for (int i = 0; i < 1000; i++) {
            Response p = given().when().get("/sdapi/v1/progress").then().statusCode(200).extract().response();
            Integer step = p.path("state.sampling_step");
            Integer jobNo = p.path("state.job_no");
            if (step != null && step >= minStep && Integer.valueOf(0).equals(jobNo)) {
                return call;
            }
            Thread.sleep(10);
        }
        fail("the call never reached step " + minStep);
        return call;
    }

    /** Distinct colours in an image (a blank or flat image has one). */
    private static long colours(BufferedImage img) {
        java.util.Set<Integer> seen = new java.util.HashSet<>();
        for (int y = 0; y < img.getHeight(); y++) {
            for (int x = 0; x < img.getWidth(); x++) {
                seen.add(img.getRGB(x, y));
            }
        }
        return seen.size();
    }

    @Test
    void interruptReturnsTheImageAsItStoodWithFewerStepsInItsInfo() throws Exception {
        CompletableFuture<Response> call = startAndWait(Map.of("prompt", "a red circle", "steps", 150, "width", 64,
                "height", 64, "seed", 9, "sampler_name", "Euler"), 3);
        given().when().post("/sdapi/v1/interrupt").then().statusCode(200);
        Response r = call.get(30, TimeUnit.SECONDS);
        assertEquals(200, r.statusCode(), r.asString());
        List<String> images = r.path("images");
        assertEquals(1, images.size(), "A1111 returns the interrupted image");
        byte[] png = Base64.getDecoder().decode(images.get(0));
        BufferedImage img = decode(png);
        assertEquals(64, img.getWidth());
        assertTrue(colours(img) > 16, "a picture, not a blank: " + colours(img) + " colours");

        InfoText.Parsed text = InfoText.parse(PngText.get(png, InfoText.KEYWORD).orElseThrow());
        assertEquals("150", text.parameters().get("Steps"), "the steps asked, as A1111 writes them");
        String[] done = text.parameters().get(InfoText.STEPS_DONE).split("/");
        int k = Integer.parseInt(done[0]);
        assertTrue(k >= 3 && k < 150, "stopped at step " + k);
        assertEquals("150", done[1]);
        JsonNode info = M.readTree(r.<String>path("info"));
        assertTrue(info.get("interrupted").asBoolean(), info.toString());
        assertEquals(150, info.get("steps").asInt());
        assertEquals(k + "/150", info.at("/extra_generation_params/Steps done").asText(), info.toString());
        assertEquals(PngText.get(png, InfoText.KEYWORD).orElseThrow(), info.get("infotexts").get(0).asText());
        given().when().get("/sdapi/v1/progress").then().statusCode(200).body("state.job_count", equalTo(0));
    }

    @Test
    void skipEndsTheCurrentImageAsItStoodAndTheCallGoesOn() throws Exception {
        CompletableFuture<Response> call = startAndWait(Map.of("prompt", "a blue square", "steps", 40, "n_iter", 2,
                "width", 64, "height", 64, "seed", 21, "sampler_name", "Euler"), 2);
        given().when().post("/sdapi/v1/skip").then().statusCode(200);
        Response r = call.get(30, TimeUnit.SECONDS);
        assertEquals(200, r.statusCode(), r.asString());
        List<String> images = r.path("images");
        assertEquals(2, images.size(), "the skipped image, then the next iteration's");
        InfoText.Parsed first = InfoText.parse(PngText.get(Base64.getDecoder().decode(images.get(0)), InfoText.KEYWORD).orElseThrow());
        InfoText.Parsed second = InfoText.parse(PngText.get(Base64.getDecoder().decode(images.get(1)), InfoText.KEYWORD).orElseThrow());
        assertEquals("21", first.parameters().get("Seed"));
        int k = Integer.parseInt(first.parameters().get(InfoText.STEPS_DONE).split("/")[0]);
        assertTrue(k >= 2 && k < 40, "skipped at step " + k);
        assertEquals("22", second.parameters().get("Seed"));
        assertNull(second.parameters().get(InfoText.STEPS_DONE), "the next iteration runs all its steps");
        assertTrue(colours(decode(Base64.getDecoder().decode(images.get(0)))) > 16);
        assertFalse(M.readTree(r.<String>path("info")).get("interrupted").asBoolean());
    }

    @Test
    void listingsInA1111Shapes() {
        given().when().get("/sdapi/v1/sd-models").then().statusCode(200)
                .body("model_name", hasItem("embedded"))
                .body("[0]", allOf(hasKey("title"), hasKey("hash"), hasKey("sha256"), hasKey("filename"), hasKey("config")));
        given().when().get("/sdapi/v1/samplers").then().statusCode(200)
                .body("name", hasItems("Euler a", "DPM++ 2M Karras", "DDIM"))
                .body("find { it.name == 'DPM++ 2M Karras' }.aliases", hasItem("dpmpp_2m_karras"))
                .body("find { it.name == 'DPM++ 2M Karras' }.options.scheduler", equalTo("karras"));
        given().when().get("/sdapi/v1/loras").then().statusCode(200).body("$", instanceOf(List.class));
        given().when().get("/sdapi/v1/options").then().statusCode(200)
                .body("sd_model_checkpoint", startsWith("embedded"));
    }

    /** What the webuiapi Python client sends for {@code api.txt2img(prompt=…, seed=…)}: every default it fills in. */
    static final String WEBUIAPI_DEFAULTS = """
            {"enable_hr": false, "hr_scale": 2, "hr_upscaler": "Latent", "hr_second_pass_steps": 0, "hr_resize_x": 0,
             "hr_resize_y": 0, "denoising_strength": 0.7, "firstphase_width": 0, "firstphase_height": 0,
             "prompt": "a lighthouse", "styles": [], "seed": 11, "subseed": -1, "subseed_strength": 0.0,
             "seed_resize_from_h": 0, "seed_resize_from_w": 0, "batch_size": 1, "n_iter": 1, "steps": 3,
             "cfg_scale": 7.0, "width": 64, "height": 64, "restore_faces": false, "tiling": false,
             "do_not_save_samples": false, "do_not_save_grid": false, "negative_prompt": "", "eta": 1.0,
             "s_churn": 0, "s_tmax": 0, "s_tmin": 0, "s_noise": 1, "override_settings": {},
             "override_settings_restore_afterwards": true, "sampler_name": "Euler a", "sampler_index": "Euler a",
             "script_name": null, "script_args": [], "send_images": true, "save_images": false,
             "alwayson_scripts": {}}""";

    @Test
    void webuiapisDefaultPayloadAndStartUpCallsWork() throws Exception {
        // webuiapi asks for the scripts at start (to detect ControlNet / ADetailer) and for models, LoRAs, VAEs
        given().get("/sdapi/v1/scripts").then().statusCode(200).body("txt2img", equalTo(List.of()));
        given().get("/sdapi/v1/sd-vae").then().statusCode(200).body("$", equalTo(List.of()));
        given().get("/sdapi/v1/embeddings").then().statusCode(200).body("loaded", equalTo(Map.of()));
        given().post("/sdapi/v1/refresh-checkpoints").then().statusCode(200);
        given().post("/sdapi/v1/refresh-loras").then().statusCode(200);
        Response r = given().contentType(ContentType.JSON).body(WEBUIAPI_DEFAULTS).post("/sdapi/v1/txt2img");
        assertEquals(200, r.statusCode(), r.asString());
        // webuiapi's _to_api_result: base64 images, parameters as a dict, info as a JSON string
        BufferedImage img = decode(Base64.getDecoder().decode(r.<List<String>>path("images").get(0)));
        assertEquals(64, img.getWidth());
        assertEquals("a lighthouse", r.path("parameters.prompt"));
        JsonNode info = M.readTree(r.<String>path("info"));
        assertEquals(11, info.get("seed").asLong());
        assertEquals("Euler a", info.get("sampler_name").asText());
    }
}
