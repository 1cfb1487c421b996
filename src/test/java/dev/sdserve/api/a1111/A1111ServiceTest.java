package dev.sdserve.api.a1111;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.sdserve.engine.LoraWeight;
import dev.sdserve.image.InfoText;
import dev.sdserve.image.PngText;
import dev.sdserve.job.GenerationRequest;
import dev.sdserve.job.PreviewOptions;
import dev.sdserve.model.ModelCatalog;
import org.junit.jupiter.api.Test;

import javax.imageio.ImageIO;
import java.awt.image.BufferedImage;
import java.io.ByteArrayInputStream;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Base64;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

class A1111ServiceTest {
    static final ObjectMapper M = new ObjectMapper();
    final ScriptedService fake = new ScriptedService();
    final ModelCatalog catalog = ModelCatalog.of(
            List.of(new ModelCatalog.ModelEntry("embedded", "sd1", 1000, "fp32", "", true, true),
                    new ModelCatalog.ModelEntry("v1-5-pruned-emaonly", "sd1", 2000, "fp16", "6ce0161689", false, false)),
            List.of(new ModelCatalog.LoraEntry("film", 100, "1a2b3c4d5e6f", 8)));
    final A1111Service a1111 = new A1111Service(fake, catalog, new PreviewOptions(1, "png", 64), Path.of("models"));

    static Txt2ImgRequest req(String json) throws Exception {
        return Txt2ImgRequest.from(M.readTree(json));
    }

    @Test
    void txt2imgBatchesIterationsSeedsLorasAndInfo() throws Exception {
        Txt2ImgRequest r = req("""
                {"prompt": "a red fox <lora:film:0.8>", "negative_prompt": "blurry", "seed": 100, "steps": 3,
                 "cfg_scale": 6.5, "width": 32, "height": 24, "batch_size": 2, "n_iter": 2,
                 "sampler_name": "DPM++ 2M Karras",
                 "override_settings": {"sd_model_checkpoint": "v1-5-pruned-emaonly.safetensors [6ce0161689]"}}""");
        A1111Service.Txt2ImgResult res = a1111.txt2img(r).await().atMost(Duration.ofSeconds(20));

        assertEquals(2, fake.requests.size(), "one job per n_iter");
        GenerationRequest g0 = fake.requests.get(0);
        assertEquals("a red fox <lora:film:0.8>", g0.prompt(), "the tags go to admission as written");
        assertEquals(List.of(), g0.loras());
        dev.sdserve.job.Job j0 = fake.find("job-1").orElseThrow();
        assertEquals("a red fox <lora:film:0.8>", j0.request().prompt(), "the prompt stays as written");
        assertEquals(List.of(new LoraWeight("film", 0.8)), j0.request().loras());
        assertEquals("blurry", g0.negativePrompt());
        assertEquals(100L, g0.seed());
        assertEquals(102L, fake.requests.get(1).seed());
        assertEquals(2, g0.images());
        assertEquals(6.5, g0.guidance());
        assertEquals("v1-5-pruned-emaonly", g0.model());
        assertTrue(g0.preview().enabled(), "A1111 jobs make previews for /progress");

        assertEquals(4, res.images().size());
        JsonNode info = M.readTree(res.info());
        assertEquals(100, info.get("seed").asLong());
        assertEquals(List.of(100L, 101L, 102L, 103L), M.convertValue(info.get("all_seeds"), M.getTypeFactory()
                .constructCollectionType(List.class, Long.class)));
        assertEquals("a red fox <lora:film:0.8>", info.get("prompt").asText());
        assertEquals("v1-5-pruned-emaonly", info.get("sd_model_name").asText());
        assertEquals("6ce0161689", info.get("sd_model_hash").asText());
        assertEquals("film: 1a2b3c4d5e6f", info.at("/extra_generation_params/Lora hashes").asText());
        for (int k = 0; k < 4; k++) {
            byte[] png = Base64.getDecoder().decode(res.images().get(k));
            BufferedImage img = ImageIO.read(new ByteArrayInputStream(png));
            assertEquals(32, img.getWidth());
            assertEquals(24, img.getHeight());
            assertEquals(ScriptedService.colourOf(100 + k), img.getRGB(3, 3) & 0xffffff, "image " + k + " is seed " + (100 + k));
            String text = PngText.get(png, "parameters").orElseThrow();
            assertEquals(text, info.get("infotexts").get(k).asText());
            InfoText.Parsed p = InfoText.parse(text);
            assertEquals(Long.toString(100 + k), p.parameters().get("Seed"));
            assertEquals("32x24", p.parameters().get("Size"));
            assertEquals("6.5", p.parameters().get("CFG scale"));
            assertEquals("a red fox <lora:film:0.8>", p.prompt());
            assertEquals("blurry", p.negativePrompt());
            assertEquals("6ce0161689", p.parameters().get("Model hash"));
        }
        ObjectNode params = res.parameters();
        assertEquals(100, params.get("seed").asInt());
        assertEquals(3, params.get("steps").asInt());
        assertEquals("a red fox <lora:film:0.8>", params.get("prompt").asText());
        assertFalse(info.get("interrupted").asBoolean());
    }

    @Test
    void randomSeedIsChosenOnceAndReported() throws Exception {
        A1111Service.Txt2ImgResult res = a1111.txt2img(req("{\"prompt\": \"x\", \"seed\": -1, \"steps\": 1, \"n_iter\": 2}"))
                .await().atMost(Duration.ofSeconds(20));
        long s0 = fake.requests.get(0).seed();
        assertTrue(s0 >= 0 && s0 < 4294967294L);
        assertEquals(s0 + 1, fake.requests.get(1).seed());
        JsonNode info = M.readTree(res.info());
        assertEquals(s0, info.get("seed").asLong());
        assertEquals(-1, res.parameters().get("seed").asInt(), "parameters echo the request as sent");
        assertEquals(2, res.images().size());
    }

    @Test
    void progressShowsThePreviewAndInterruptStopsTheCall() throws Exception {
        fake.stepMillis = 15;
        var pending = a1111.txt2img(req("{\"prompt\": \"slow\", \"steps\": 60, \"n_iter\": 3, \"width\": 8, \"height\": 8}"))
                .subscribeAsCompletionStage();
        JsonNode p = null;
        for (int i = 0; i < 200; i++) {
            p = a1111.progress(false);
            if (p.at("/state/sampling_step").asInt() >= 3 && !p.get("current_image").isNull()) {
                break;
            }
            Thread.sleep(10);
        }
        assertTrue(p.at("/state/sampling_step").asInt() >= 3, p.toString());
        assertEquals(60, p.at("/state/sampling_steps").asInt());
        assertEquals(3, p.at("/state/job_count").asInt());
        double progress = p.get("progress").asDouble();
        assertTrue(progress > 0 && progress < 1.0 / 3, "first of three jobs: " + progress);
        assertTrue(p.get("eta_relative").asDouble() > 0, p.toString());
        BufferedImage preview = ImageIO.read(new ByteArrayInputStream(Base64.getDecoder().decode(p.get("current_image").asText())));
        assertEquals(4, preview.getWidth());
        assertTrue(p.get("textinfo").asText().startsWith("Step "), p.toString());

        assertTrue(a1111.interrupt());
        A1111Service.Txt2ImgResult res = pending.toCompletableFuture().get(10, java.util.concurrent.TimeUnit.SECONDS);
        assertEquals(1, fake.requests.size(), "no further iterations after an interrupt");
        assertEquals(1, res.images().size(), "the interrupted job's image as it stood, as A1111 returns it");
        JsonNode info = M.readTree(res.info());
        assertTrue(info.get("interrupted").asBoolean());
        int stopped = fake.stoppedAt.values().iterator().next();
        assertTrue(stopped >= 3 && stopped < 60, "stopped at " + stopped);
        assertEquals(stopped + "/60", info.at("/extra_generation_params/Steps done").asText(), info.toString());
        assertTrue(info.get("infotexts").get(0).asText().contains("Steps: 60,"), info.toString());
        assertEquals(0, a1111.progress(true).get("progress").asDouble(), "nothing in flight afterwards");
    }

    @Test
    void a1111ValidationShapes() {
        A1111Exception e = assertThrows(A1111Exception.class, () -> req("{\"steps\": \"many\"}"));
        assertEquals(List.of("body", "steps"), e.details().get(0).loc());
        assertEquals("type_error.integer", e.details().get(0).type());
        assertEquals(List.of("body", "enable_hr"),
                assertThrows(A1111Exception.class, () -> req("{\"enable_hr\": true}")).details().get(0).loc());
        assertEquals(List.of("body", "override_settings", "sd_model_checkpoint"),
                assertThrows(A1111Exception.class, () -> req("{\"override_settings\": {\"sd_model_checkpoint\": 3}}"))
                        .details().get(0).loc());
        assertEquals(List.of("body", "n_iter"),
                assertThrows(A1111Exception.class, () -> req("{\"n_iter\": 0}")).details().get(0).loc());
    }

    @Test
    void checkpointNamesResolveLikeA1111() {
        assertEquals("v1-5-pruned-emaonly", a1111.resolveModel("v1-5-pruned-emaonly.safetensors [6ce0161689]"));
        assertEquals("v1-5-pruned-emaonly", a1111.resolveModel("v1-5-pruned-emaonly.safetensors"));
        assertEquals("v1-5-pruned-emaonly", a1111.resolveModel("6ce0161689"));
        assertEquals("embedded", a1111.resolveModel("embedded"));
        assertEquals("nope.safetensors", a1111.resolveModel("nope.safetensors [0000000000]"), "unknown: passed on (minus the hash) for the service to report");
        assertEquals("v1-5-pruned-emaonly.safetensors [6ce0161689]", a1111.sdModels().get(1).get("title").asText());
        assertTrue(a1111.sdModels().get(1).get("sha256").isNull(), "full hash unknown: null, as A1111 before hashing");
        assertEquals("8", a1111.loras().get(0).at("/metadata/ss_network_dim").asText());
    }
}
