package dev.sdserve.api;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.google.protobuf.ByteString;
import dev.sdserve.api.grpc.ProtoMapper;
import dev.sdserve.api.grpc.v1.*;
import dev.sdserve.image.InfoText;
import dev.sdserve.image.PngText;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.quarkus.grpc.GrpcClient;
import io.quarkus.test.junit.QuarkusTest;
import io.restassured.http.ContentType;
import io.restassured.response.Response;
import org.junit.jupiter.api.Test;

import javax.imageio.ImageIO;
import java.awt.image.BufferedImage;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.time.Duration;
import java.util.Base64;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import static io.restassured.RestAssured.given;
import static org.junit.jupiter.api.Assertions.*;

/** img2img and inpainting over A1111's /sdapi/v1/img2img, REST and gRPC (fake engine): answers and refusals by field. */
@QuarkusTest
class Img2ImgApiTest {
    static final ObjectMapper M = new ObjectMapper();

    @GrpcClient("sdserve")
    Generation client;

    static byte[] png(int w, int h, int square) throws Exception {
        BufferedImage img = new BufferedImage(w, h, BufferedImage.TYPE_INT_RGB);
        for (int y = 0; y < h; y++) {
            for (int x = 0; x < w; x++) {
                boolean in = x >= w / 4 && x < w / 4 + square && y >= h / 4 && y < h / 4 + square;
                img.setRGB(x, y, square == 0 ? 0x2040c0 + x : in ? 0xffffff : 0);
            }
        }
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ImageIO.write(img, "png", out);
        return out.toByteArray();
    }

    static String b64(byte[] b) {
        return Base64.getEncoder().encodeToString(b);
    }

    @Test
    void a1111Img2imgWithAMaskAnswersAsA1111() throws Exception {
        Map<String, Object> body = new HashMap<>();
        body.put("init_images", List.of(b64(png(96, 64, 0))));
        body.put("mask", b64(png(96, 64, 32)));
        body.put("prompt", "a red circle");
        body.put("denoising_strength", 0.5);
        body.put("steps", 8);
        body.put("seed", 5);
        body.put("width", 96);
        body.put("height", 64);
        body.put("mask_blur", 2);
        body.put("inpaint_full_res", false);
        Response r = given().contentType(ContentType.JSON).body(body).when().post("/sdapi/v1/img2img");
        assertEquals(200, r.statusCode(), r.asString());
        List<String> images = r.path("images");
        assertEquals(1, images.size());
        byte[] out = Base64.getDecoder().decode(images.get(0));
        BufferedImage img = ImageIO.read(new ByteArrayInputStream(out));
        assertEquals(96, img.getWidth());
        assertEquals(64, img.getHeight());
        Map<String, String> p = InfoText.parse(PngText.get(out, InfoText.KEYWORD).orElseThrow()).parameters();
        assertEquals("0.5", p.get("Denoising strength"));
        assertEquals("2", p.get("Mask blur"));
        assertEquals("8", p.get("Steps"));
        JsonNode info = M.readTree(r.<String>path("info"));
        assertEquals(0.5, info.get("denoising_strength").asDouble());
        assertNull(r.path("parameters.init_images"), "no echo without include_init_images");

        body.put("include_init_images", true);
        Response echoed = given().contentType(ContentType.JSON).body(body).when().post("/sdapi/v1/img2img");
        assertEquals(200, echoed.statusCode(), echoed.asString());
        assertEquals(body.get("init_images"), echoed.path("parameters.init_images"));
    }

    @Test
    void a1111RefusalsNameTheField() throws Exception {
        Map<String, Object> body = new HashMap<>();
        body.put("init_images", List.of(b64(png(64, 64, 0))));
        body.put("prompt", "x");
        body.put("steps", 4);
        body.put("inpaint_full_res", true);
        body.put("mask", b64(png(64, 64, 16)));
        String full = given().contentType(ContentType.JSON).body(body).when().post("/sdapi/v1/img2img")
                .then().statusCode(422).extract().asString();
        assertTrue(full.contains("inpaint_full_res"), full);
        body.put("inpaint_full_res", false);
        body.put("mask", b64(png(32, 64, 16)));
        Response mask = given().contentType(ContentType.JSON).body(body).when().post("/sdapi/v1/img2img");
        assertTrue(mask.statusCode() == 400 || mask.statusCode() == 422, mask.asString());
        assertTrue(mask.asString().contains("mask_image"), mask.asString());
        body.remove("mask");
        body.put("denoising_strength", 1.5);
        Response strength = given().contentType(ContentType.JSON).body(body).when().post("/sdapi/v1/img2img");
        assertTrue(strength.statusCode() == 400 || strength.statusCode() == 422, strength.asString());
        assertTrue(strength.asString().contains("strength"), strength.asString());
    }

    @Test
    void restTakesBase64ImagesAndNamesBadFields() throws Exception {
        Map<String, Object> body = new HashMap<>();
        body.put("prompt", "a lighthouse");
        body.put("steps", 10);
        body.put("seed", 3);
        body.put("init_image", b64(png(72, 64, 0))); // no size: 72×64 from the image
        body.put("strength", 0.3);
        String id = given().contentType(ContentType.JSON).body(body).when().post("/v1/generations")
                .then().statusCode(202).extract().path("id");
        byte[] png = given().when().get("/v1/generations/" + id + "/image?wait=60").then().statusCode(200)
                .extract().asByteArray();
        BufferedImage img = ImageIO.read(new ByteArrayInputStream(png));
        assertEquals(72, img.getWidth());
        assertEquals(64, img.getHeight());
        Response job = given().when().get("/v1/generations/" + id);
        assertEquals(3, job.<Integer>path("total_steps"), job.asString()); // int(10 · 0.3)
        assertEquals(0.3f, job.<Float>path("parameters.strength"), 1e-6);

        body.put("init_image", b64("not an image".getBytes()));
        given().contentType(ContentType.JSON).body(body).when().post("/v1/generations")
                .then().statusCode(400).body("error.field", org.hamcrest.Matchers.equalTo("init_image"));
        body.put("init_image", b64(png(72, 64, 0)));
        body.put("strength", 0);
        given().contentType(ContentType.JSON).body(body).when().post("/v1/generations")
                .then().statusCode(400).body("error.field", org.hamcrest.Matchers.equalTo("strength"));
    }

    @Test
    void grpcTakesInitImageStrengthAndMask() throws Exception {
        GenerateRequest r = GenerateRequest.newBuilder().setPrompt("a red circle").setSteps(6).setSeed(9)
                .setInitImage(ByteString.copyFrom(png(64, 64, 0))).setStrength(0.5)
                .setMaskImage(ByteString.copyFrom(png(64, 64, 24))).setMaskBlur(0).setInpaintingFill(1)
                .setPreview(PreviewOptions.newBuilder().setOff(true)).build();
        List<GenerateEvent> events = client.generate(r).collect().asList().await().atMost(Duration.ofSeconds(60));
        Completed c = events.get(events.size() - 1).getCompleted();
        assertEquals(0.5, c.getParameters().getStrength());
        assertEquals(64, c.getParameters().getWidth());
        BufferedImage img = ImageIO.read(new ByteArrayInputStream(c.getImages(0).getPng().toByteArray()));
        assertEquals(64, img.getWidth());

        StatusRuntimeException e = assertThrows(StatusRuntimeException.class, () -> client.generate(
                r.toBuilder().setMaskImage(ByteString.copyFrom(png(32, 32, 8))).build())
                .collect().asList().await().atMost(Duration.ofSeconds(60)));
        assertEquals(Status.Code.INVALID_ARGUMENT, e.getStatus().getCode());
        assertEquals("mask_image", e.getTrailers().get(ProtoMapper.FIELD));
        e = assertThrows(StatusRuntimeException.class, () -> client.generate(
                r.toBuilder().setInpaintFullRes(true).build()).collect().asList().await().atMost(Duration.ofSeconds(60)));
        assertEquals("inpaint_full_res", e.getTrailers().get(ProtoMapper.FIELD));
    }
}
