package dev.sdserve.model;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.sdserve.testutil.Shared;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

class ModelConfigsTest {
    static final Path GOLDEN = Shared.golden("sd15-tiny");

    static Map<String, long[]> fileShapes(Path p) throws IOException {
        try (SafeTensors st = SafeTensors.open(p)) {
            return ModelConfigs.shapes(st);
        }
    }

    @Test
    void tinyGoldenFileGivesTheGoldenConfigs() throws IOException {
        JsonNode golden = new ObjectMapper().readTree(GOLDEN.resolve("golden.json").toFile());
        JsonNode cu = golden.path("configs").path("unet");
        JsonNode ct = golden.path("configs").path("text_encoder");
        JsonNode cv = golden.path("configs").path("vae");
        for (String file : List.of("tiny-sd15.safetensors", "tiny-sd15-fp16.safetensors")) {
            ModelConfig c = ModelConfigs.fromShapes(fileShapes(GOLDEN.resolve(file)), golden);
            UNetConfig u = c.unet();
            assertEquals("sd1", c.family());
            assertEquals(ints(cu.get("block_out_channels")), u.blockOutChannels());
            assertEquals(cu.get("layers_per_block").asInt(), u.layersPerBlock());
            assertEquals(cu.get("in_channels").asInt(), u.inChannels());
            assertEquals(cu.get("out_channels").asInt(), u.outChannels());
            List<Boolean> down = new ArrayList<>();
            cu.get("down_block_types").forEach(n -> down.add(n.asText().startsWith("CrossAttn")));
            List<Boolean> up = new ArrayList<>();
            cu.get("up_block_types").forEach(n -> up.add(n.asText().startsWith("CrossAttn")));
            assertEquals(down, u.crossAttnDown());
            assertEquals(up, u.crossAttnUp());
            assertEquals(cu.get("mid_block_type").asText().contains("CrossAttn"), u.midAttention());
            assertEquals(cu.get("cross_attention_dim").asInt(), u.crossAttentionDim());
            assertEquals(List.of(8, 8, 8, 8), u.attentionHeads());
            assertEquals(cu.get("attention_head_dim").asInt(), u.attentionHeads().get(0));
            assertEquals(cu.get("use_linear_projection").asBoolean(), u.useLinearProjection());
            assertEquals(cu.get("transformer_layers_per_block").asInt(), u.transformerLayers());
            assertEquals(cu.get("norm_num_groups").asInt(), u.normGroups());
            assertEquals(cu.get("norm_eps").asDouble(), u.normEps());
            assertEquals(cu.get("sample_size").asInt(), u.sampleSize());
            assertEquals("epsilon", u.predictionType());

            TextEncoderConfig t = c.textEncoder();
            assertEquals(ct.get("vocab_size").asInt(), t.vocabSize());
            assertEquals(ct.get("hidden_size").asInt(), t.hiddenSize());
            assertEquals(ct.get("intermediate_size").asInt(), t.intermediateSize());
            assertEquals(ct.get("num_hidden_layers").asInt(), t.layers());
            assertEquals(ct.get("num_attention_heads").asInt(), t.heads());
            assertEquals(ct.get("max_position_embeddings").asInt(), t.maxPositions());
            assertEquals(ct.get("hidden_act").asText(), t.hiddenAct());
            assertEquals(ct.get("layer_norm_eps").asDouble(), t.layerNormEps());
            assertEquals(ct.get("bos_token_id").asInt(), t.bosToken());
            assertEquals(ct.get("eos_token_id").asInt(), t.eosToken());
            assertEquals(49407, t.padToken());

            VaeConfig v = c.vae();
            assertEquals(ints(cv.get("block_out_channels")), v.blockOutChannels());
            assertEquals(cv.get("layers_per_block").asInt(), v.layersPerBlock());
            assertEquals(cv.get("in_channels").asInt(), v.inChannels());
            assertEquals(cv.get("out_channels").asInt(), v.outChannels());
            assertEquals(cv.get("latent_channels").asInt(), v.latentChannels());
            assertEquals(cv.get("norm_num_groups").asInt(), v.normGroups());
            assertEquals(cv.get("scaling_factor").asDouble(), v.scalingFactor());
            assertEquals(8, v.downscale());

            // the "configs" object alone gives the same
            assertEquals(c, ModelConfigs.fromShapes(fileShapes(GOLDEN.resolve(file)), golden.get("configs")));
        }
    }

    @Test
    void tinyWithoutConfigUsesSd1Conventions() throws IOException {
        ModelConfig c = ModelConfigs.fromShapes(fileShapes(GOLDEN.resolve("tiny-sd15.safetensors")));
        assertEquals(List.of(8, 8, 8, 8), c.unet().attentionHeads());
        assertEquals(1, c.textEncoder().heads()); // width 32 / 64 → at least 1 (the golden config says 4)
        assertEquals("quick_gelu", c.textEncoder().hiddenAct());
        assertEquals(0.18215, c.vae().scalingFactor());
        assertEquals(16, c.unet().sampleSize());
    }

    @Test
    void fullLayoutIsSd15() throws IOException {
        List<CheckpointLayout.Entry> listing = CheckpointLayout.readListing(Shared.dir().resolve("golden/sd15-full-layout.txt"));
        assertEquals(1143, listing.size());
        ModelConfig c = ModelConfigs.fromShapes(CheckpointLayout.shapes(listing));
        UNetConfig u = c.unet();
        assertEquals(List.of(320, 640, 1280, 1280), u.blockOutChannels());
        assertEquals(2, u.layersPerBlock());
        assertEquals(List.of(true, true, true, false), u.crossAttnDown());
        assertEquals(List.of(false, true, true, true), u.crossAttnUp());
        assertTrue(u.midAttention());
        assertEquals(768, u.crossAttentionDim());
        assertFalse(u.useLinearProjection());
        assertEquals(1, u.transformerLayers());
        assertEquals(4, u.inChannels());
        assertEquals(4, u.outChannels());
        assertEquals(64, u.sampleSize());
        assertEquals(1280, u.timeEmbedDim());
        assertEquals(List.of(8, 8, 8, 8), u.attentionHeads());
        TextEncoderConfig t = c.textEncoder();
        assertEquals(12, t.layers());
        assertEquals(768, t.hiddenSize());
        assertEquals(3072, t.intermediateSize());
        assertEquals(12, t.heads());
        assertEquals(49408, t.vocabSize());
        assertEquals(77, t.maxPositions());
        VaeConfig v = c.vae();
        assertEquals(List.of(128, 256, 512, 512), v.blockOutChannels());
        assertEquals(4, v.latentChannels());
        assertEquals(2, v.layersPerBlock());
        assertEquals(ModelConfigs.sd15(), c);
    }

    @Test
    void headsFromConfigListAndDiffusersNames() throws IOException {
        Map<String, long[]> shapes = CheckpointLayout.shapes(
                CheckpointLayout.readListing(Shared.dir().resolve("golden/sd15-full-layout.txt")));
        ObjectMapper om = new ObjectMapper();
        JsonNode cfg = om.readTree("{\"unet\":{\"attention_head_dim\":[5,10,20,20],\"sample_size\":96},"
                + "\"text_encoder\":{\"num_attention_heads\":12,\"hidden_act\":\"gelu\"},\"vae\":{\"scaling_factor\":0.13025}}");
        ModelConfig c = ModelConfigs.fromShapes(shapes, cfg);
        assertEquals(List.of(5, 10, 20, 20), c.unet().attentionHeads());
        assertEquals(96, c.unet().sampleSize());
        assertEquals("gelu", c.textEncoder().hiddenAct());
        assertEquals(0.13025, c.vae().scalingFactor());
        JsonNode bad = om.readTree("{\"unet\":{\"attention_head_dim\":7}}");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> ModelConfigs.fromShapes(shapes, bad));
        assertTrue(e.getMessage().contains("320 channels, not divisible into 7"), e.getMessage());
    }

    @Test
    void missingTensorIsNamed() throws IOException {
        Map<String, long[]> shapes = new HashMap<>(fileShapes(GOLDEN.resolve("tiny-sd15.safetensors")));
        shapes.remove("first_stage_model.post_quant_conv.weight");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> ModelConfigs.fromShapes(shapes));
        assertTrue(e.getMessage().contains("first_stage_model.post_quant_conv.weight"), e.getMessage());
    }

    static List<Integer> ints(JsonNode a) {
        List<Integer> out = new ArrayList<>();
        a.forEach(n -> out.add(n.asInt()));
        return out;
    }
}
