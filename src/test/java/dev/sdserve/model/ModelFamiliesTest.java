package dev.sdserve.model;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.sdserve.testutil.Shared;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Family detection and architecture from shapes on the full-size listings (SD 1.5, SDXL base) and the tiny SDXL and
 * SD 2.x golden files; layouts written from a config equal the real files; other families are refused by name.
 */
class ModelFamiliesTest {
    @TempDir
    Path tmp;

    static Map<String, long[]> listing(String file) throws IOException {
        return CheckpointLayout.shapes(CheckpointLayout.readListing(Shared.dir().resolve("golden").resolve(file)));
    }

    static JsonNode golden(String set) throws IOException {
        return new ObjectMapper().readTree(Shared.golden(set).resolve("golden.json").toFile());
    }

    static List<Integer> ints(JsonNode a) {
        List<Integer> out = new ArrayList<>();
        a.forEach(n -> out.add(n.asInt()));
        return out;
    }

    @Test
    void fullSizeListingsReadAsSd15AndSdxlBase() throws IOException {
        ModelConfig sd15 = ModelConfigs.fromShapes(listing("sd15-full-layout.txt"));
        assertEquals(ModelConfigs.sd15(), sd15);
        assertEquals(List.of(320, 640, 1280, 1280), sd15.unet().blockOutChannels());
        assertEquals(768, sd15.unet().crossAttentionDim());
        assertEquals(12, sd15.textEncoder().layers());

        ModelConfig xl = ModelConfigs.fromShapes(listing("sdxl-full-layout.txt"));
        JsonNode full = golden("sdxl-tiny").path("full_size_layout").path("configs");
        JsonNode cu = full.path("unet");
        assertEquals("sdxl", xl.family());
        UNetConfig u = xl.unet();
        assertEquals(ints(cu.path("block_out_channels")), u.blockOutChannels());
        assertEquals(List.of(320, 640, 1280), u.blockOutChannels());
        assertEquals(ints(cu.path("transformer_layers_per_block")), u.diffusersTransformerLayers());
        assertEquals(List.of(0, 2, 10), u.depthDown());
        assertEquals(10, u.depthMid());
        assertEquals(List.of(10, 2, 0), u.depthUp());
        assertEquals(List.of(false, true, true), u.crossAttnDown());
        assertEquals(cu.path("cross_attention_dim").asInt(), u.crossAttentionDim());
        assertEquals(2048, u.crossAttentionDim());
        assertEquals(cu.path("projection_class_embeddings_input_dim").asInt(), u.addEmbedInputDim());
        assertEquals(cu.path("addition_time_embed_dim").asInt(), u.addTimeEmbedDim());
        assertEquals(ints(cu.path("attention_head_dim")), u.attentionHeads()); // heads = channels / 64
        assertTrue(u.useLinearProjection());
        assertEquals(128, u.sampleSize());
        assertEquals("epsilon", u.predictionType());
        assertEquals(2, xl.textEncoders().size());
        TextEncoderConfig t1 = xl.textEncoders().get(0), t2 = xl.textEncoders().get(1);
        assertEquals(List.of(768, 12, 12, 3072, 49407), List.of(t1.hiddenSize(), t1.layers(), t1.heads(),
                t1.intermediateSize(), t1.padToken()));
        assertEquals(full.path("text_encoder").path("hidden_act").asText(), t1.hiddenAct());
        assertEquals(List.of(1280, 32, 20, 5120, 1280, 0), List.of(t2.hiddenSize(), t2.layers(), t2.heads(),
                t2.intermediateSize(), t2.projectionDim(), t2.padToken()));
        assertEquals(full.path("text_encoder_2").path("hidden_act").asText(), t2.hiddenAct());
        assertEquals(0.13025, xl.vae().scalingFactor());
        assertEquals(ints(full.path("vae").path("block_out_channels")), xl.vae().blockOutChannels());
        assertEquals(ModelConfigs.sdxlBase(), xl);
    }

    @Test
    void sdxlLayoutEqualsTheFullListingLineByLine() throws IOException {
        List<String> expected = CheckpointLayout.readListing(Shared.dir().resolve("golden/sdxl-full-layout.txt"))
                .stream().map(CheckpointLayout.Entry::line).toList();
        List<String> actual = CheckpointLayout.full(ModelConfigs.sdxlBase(), DType.F16).stream()
                .map(CheckpointLayout.Entry::line).toList();
        assertEquals(2515, expected.size());
        for (int i = 0; i < Math.min(expected.size(), actual.size()); i++) {
            assertEquals(expected.get(i), actual.get(i), "line " + (i + 1));
        }
        assertEquals(expected.size(), actual.size());
        JsonNode params = golden("sdxl-tiny").path("full_size_layout").path("params");
        Map<String, Long> byNet = new TreeMap<>();
        for (CheckpointLayout.Entry e : CheckpointLayout.full(ModelConfigs.sdxlBase(), DType.F16)) {
            if (e.dtype() == DType.I64) {
                continue;
            }
            String net = e.name().startsWith(ModelConfigs.UNET) ? "unet" : e.name().startsWith(ModelConfigs.VAE) ? "vae"
                    : e.name().startsWith("conditioner.embedders.0.") ? "text_encoder" : "text_encoder_2";
            byNet.merge(net, e.elements(), Long::sum);
        }
        for (String net : List.of("unet", "vae", "text_encoder", "text_encoder_2")) {
            assertEquals(params.path(net).asLong(), byNet.get(net), net + " parameters");
        }
    }

    /** The tiny golden files read back to the configs in golden.json, and their tensors are exactly the layout's. */
    @Test
    void tinySdxlAndSd2FilesMatchTheirConfigsAndLayouts() throws IOException {
        for (String set : List.of("sdxl-tiny", "sd2v-tiny")) {
            JsonNode g = golden(set);
            JsonNode cfgs = g.path("configs");
            Path dir = Shared.golden(set);
            for (String f : List.of(g.path("checkpoint").path("file").asText(), g.path("checkpoint").path("fp16_file").asText())) {
                Map<String, long[]> shapes = ModelConfigsTest.fileShapes(dir.resolve(f));
                ModelConfig c = ModelConfigs.fromShapes(shapes, g);
                UNetConfig u = c.unet();
                JsonNode cu = cfgs.path("unet");
                assertEquals(set.startsWith("sdxl") ? "sdxl" : "sd2", c.family(), set);
                assertEquals(ints(cu.path("block_out_channels")), u.blockOutChannels(), set);
                assertEquals(cu.path("layers_per_block").asInt(), u.layersPerBlock());
                assertEquals(cu.path("cross_attention_dim").asInt(), u.crossAttentionDim());
                assertEquals(ints(cu.path("attention_head_dim")), u.attentionHeads());
                assertTrue(u.useLinearProjection());
                List<Boolean> down = new ArrayList<>();
                cu.path("down_block_types").forEach(n -> down.add(n.asText().startsWith("CrossAttn")));
                assertEquals(down, u.crossAttnDown());
                JsonNode tl = cu.path("transformer_layers_per_block");
                for (int l = 0; l < u.levels(); l++) {
                    int want = down.get(l) ? (tl.isArray() ? tl.get(l).asInt() : tl.asInt()) : 0;
                    assertEquals(want, u.depthDown().get(l), set + " depth of level " + l);
                    assertEquals(u.depthDown().get(l), u.depthUp().get(u.levels() - 1 - l));
                }
                assertEquals(tl.isArray() ? tl.get(tl.size() - 1).asInt() : tl.asInt(), u.depthMid());
                if (set.startsWith("sdxl")) {
                    assertEquals(cu.path("projection_class_embeddings_input_dim").asInt(), u.addEmbedInputDim());
                    assertEquals(cu.path("addition_time_embed_dim").asInt(), u.addTimeEmbedDim());
                    assertEquals(g.path("params").path("te2_proj").asInt(), u.pooledDim());
                } else {
                    assertFalse(u.hasAddedConditioning());
                    assertEquals("v_prediction", u.predictionType()); // SD 2.x default without a yaml
                }
                List<String> encoders = set.startsWith("sdxl") ? List.of("text_encoder", "text_encoder_2")
                        : List.of("text_encoder_in_file");
                assertEquals(encoders.size(), c.textEncoders().size());
                for (int i = 0; i < encoders.size(); i++) {
                    JsonNode ct = cfgs.path(encoders.get(i));
                    TextEncoderConfig t = c.textEncoders().get(i);
                    assertEquals(ct.path("hidden_size").asInt(), t.hiddenSize());
                    assertEquals(ct.path("num_hidden_layers").asInt(), t.layers(), encoders.get(i));
                    assertEquals(ct.path("num_attention_heads").asInt(), t.heads());
                    assertEquals(ct.path("intermediate_size").asInt(), t.intermediateSize());
                    assertEquals(ct.path("hidden_act").asText(), t.hiddenAct());
                    assertEquals(49406, t.bosToken()); // transformers' config says 0 / 2: not tokenizer ids
                    assertEquals(49407, t.eosToken());
                    assertEquals(t.openClip() ? 0 : 49407, t.padToken());
                }
                assertEquals(cfgs.path("vae").path("scaling_factor").asDouble(), c.vae().scalingFactor());
                // without the configs: same shapes-derived facts, the family's conventions for the rest
                ModelConfig bare = ModelConfigs.fromShapes(shapes);
                assertEquals(u.blockOutChannels(), bare.unet().blockOutChannels());
                assertEquals(u.depthDown(), bare.unet().depthDown());
                assertEquals(cfgs.path("vae").path("scaling_factor").asDouble(), bare.vae().scalingFactor());
                assertEquals(List.of(1, 1, 1, 1).subList(0, u.levels()), bare.unet().attentionHeads()); // width/64 ≥ 1

                DType dt = f.contains("fp16") ? DType.F16 : DType.F32;
                Map<String, String> want = new TreeMap<>();
                try (SafeTensors st = SafeTensors.open(dir.resolve(f))) {
                    st.tensors().values().forEach(t -> want.put(t.name(), t.shapeString() + " " + t.dtype()));
                }
                Map<String, String> got = new TreeMap<>();
                CheckpointLayout.full(c, dt).stream().filter(e -> !CheckpointLayout.SCHEDULE_BUFFERS.contains(e.name()))
                        .forEach(e -> got.put(e.name(), java.util.Arrays.toString(e.shape()) + " " + e.dtype()));
                assertEquals(want, got, set + " " + f);
                assertEquals(g.path("checkpoint").path("tensors").asInt(), got.size());
                try (Checkpoint ck = Checkpoint.open(dir.resolve(f), g)) {
                    assertEquals(c, ck.config());
                    assertEquals(dt, ck.storageType());
                }
            }
        }
    }

    @Test
    void otherFamiliesAreRefusedByName() {
        Map<String, Set<String>> cases = new LinkedHashMap<>();
        cases.put("SDXL refiner", keys("model.diffusion_model.input_blocks.0.0.weight", "model.diffusion_model.label_emb.0.0.weight",
                "conditioner.embedders.0.model.transformer.resblocks.0.attn.in_proj_weight",
                "conditioner.embedders.0.model.text_projection", "first_stage_model.decoder.conv_out.weight"));
        cases.put("Stable Diffusion 3", keys("model.diffusion_model.joint_blocks.0.context_block.attn.qkv.weight",
                "model.diffusion_model.x_embedder.proj.weight", "text_encoders.clip_l.transformer.text_model.final_layer_norm.weight",
                "first_stage_model.decoder.conv_out.weight"));
        cases.put("Flux", keys("double_blocks.0.img_attn.qkv.weight", "single_blocks.0.linear1.weight", "img_in.weight",
                "time_in.in_layer.weight"));
        cases.put("Flux ", keys("model.diffusion_model.double_blocks.0.img_attn.norm.key_norm.scale",
                "model.diffusion_model.single_blocks.3.linear2.weight"));
        cases.put("video model", keys("model.diffusion_model.input_blocks.1.0.time_stack.in_layers.2.weight",
                "model.diffusion_model.input_blocks.1.1.time_mixer.mix_factor", "conditioner.embedders.0.open_clip.model.visual.proj",
                "first_stage_model.decoder.conv_out.weight"));
        cases.put("AnimateDiff", keys("down_blocks.0.motion_modules.0.temporal_transformer.proj_in.weight"));
        cases.put("Playground v2.5", keys("edm_mean", "edm_std", "model.diffusion_model.label_emb.0.0.weight",
                "conditioner.embedders.0.transformer.text_model.final_layer_norm.weight",
                "conditioner.embedders.1.model.ln_final.weight"));
        cases.put("LoRA", keys("lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight"));
        cases.put("diffusers key layout", keys("down_blocks.0.resnets.0.conv1.weight", "mid_block.attentions.0.to_q.weight"));
        cases.put("no VAE", keys("model.diffusion_model.input_blocks.0.0.weight",
                "cond_stage_model.model.ln_final.weight"));
        for (var e : cases.entrySet()) {
            ModelDetection.Result r = ModelDetection.detect(e.getValue());
            assertFalse(r.ok(), e.getKey());
            assertTrue(r.refusal().contains(e.getKey().strip()), e.getKey() + ": " + r.refusal());
            IllegalArgumentException ex = assertThrows(IllegalArgumentException.class,
                    () -> ModelConfigs.fromShapes(shapesOf(e.getValue())));
            assertEquals(r.refusal(), ex.getMessage());
        }
        assertEquals("sd2", ModelDetection.detect(keys("model.diffusion_model.input_blocks.0.0.weight",
                "cond_stage_model.model.ln_final.weight", "first_stage_model.decoder.conv_out.weight")).family());
    }

    @Test
    void predictionTypeFromYamlJsonSettingAndKey() throws IOException {
        Path src = Shared.golden("sd2v-tiny").resolve("tiny-sd2v-fp16.safetensors");
        Path f = tmp.resolve("my-sd2.safetensors");
        Files.copy(src, f);
        try (Checkpoint c = Checkpoint.open(f)) {
            assertEquals("v_prediction", c.config().unet().predictionType());
            assertEquals("SD 2.x default", c.predictionSource());
        }
        // A1111's 512-base yaml has no parameterization: epsilon
        Files.writeString(tmp.resolve("my-sd2.yaml"), "model:\n  target: ldm.models.diffusion.ddpm.LatentDiffusion\n"
                + "  params:\n    linear_start: 0.00085\n    use_ema: False\n");
        try (Checkpoint c = Checkpoint.open(f)) {
            assertEquals("epsilon", c.config().unet().predictionType());
            assertEquals("my-sd2.yaml", c.predictionSource());
        }
        Files.writeString(tmp.resolve("my-sd2.yaml"), "model:\n  params:\n    parameterization: \"v\"\n");
        try (Checkpoint c = Checkpoint.open(f)) {
            assertEquals("v_prediction", c.config().unet().predictionType());
        }
        try (Checkpoint c = Checkpoint.openAs(f, "epsilon")) {
            assertEquals("epsilon", c.config().unet().predictionType());
            assertEquals("model setting", c.predictionSource());
        }
        // the per-model setting users give: -Dsdserve.prediction-type.<model>=…, over the yaml
        System.setProperty(PredictionType.SETTING_PREFIX + "my-sd2", "eps");
        try (Checkpoint c = Checkpoint.open(f)) {
            assertEquals("epsilon", c.config().unet().predictionType());
            assertEquals("model setting", c.predictionSource());
        } finally {
            System.clearProperty(PredictionType.SETTING_PREFIX + "my-sd2");
        }
        Files.writeString(tmp.resolve("my-sd2.json"), "{\"scheduler\": {\"prediction_type\": \"epsilon\"}}");
        try (Checkpoint c = Checkpoint.open(f)) {
            assertEquals("epsilon", c.config().unet().predictionType(), "the JSON sidecar wins over the yaml");
            assertEquals("config JSON", c.predictionSource());
        }
        Files.writeString(tmp.resolve("my-sd2.yaml"), "model:\n  params:\n    parameterization: x0\n");
        Files.delete(tmp.resolve("my-sd2.json"));
        CheckpointException x0 = assertThrows(CheckpointException.class, () -> Checkpoint.open(f));
        assertTrue(x0.getMessage().contains("x0"), x0.getMessage());

        Map<String, long[]> xl = new LinkedHashMap<>(listing("sdxl-full-layout.txt"));
        assertEquals("epsilon", ModelConfigs.fromShapes(xl).unet().predictionType());
        xl.put(PredictionType.V_PRED_KEY, new long[0]);
        assertEquals("v_prediction", ModelConfigs.fromShapes(xl).unet().predictionType());
        assertEquals(96, ModelConfigs.sd21v().unet().sampleSize());
        assertEquals(64, ModelConfigs.withPredictionType(ModelConfigs.sd21v(), "epsilon", null).unet().sampleSize());
    }

    private static Set<String> keys(String... k) {
        return new HashSet<>(List.of(k));
    }

    private static Map<String, long[]> shapesOf(Set<String> k) {
        Map<String, long[]> m = new LinkedHashMap<>();
        k.forEach(n -> m.put(n, new long[]{1}));
        return m;
    }
}
