package dev.sdserve.model;

import com.fasterxml.jackson.databind.JsonNode;
import dev.sdserve.testutil.Shared;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

import static org.junit.jupiter.api.Assertions.*;

/** kohya LoRAs of SDXL (lora_unet_* SGM names, lora_te1_, lora_te2_ onto OpenCLIP's fused in_proj) and SD 2.x. */
class LoraFamiliesTest {
    static ModelConfig config(String set) throws IOException {
        JsonNode g = ModelFamiliesTest.golden(set);
        Path f = Shared.golden(set).resolve(g.path("checkpoint").path("file").asText());
        return ModelConfigs.fromShapes(ModelConfigsTest.fileShapes(f), g);
    }

    @Test
    void sdxlLoraMapsEveryModuleWithQkvAsRowsOfInProj() throws IOException {
        ModelConfig c = config("sdxl-tiny");
        JsonNode l = ModelFamiliesTest.golden("sdxl-tiny").path("lora");
        try (LoraFile f = LoraFile.open(Shared.golden("sdxl-tiny").resolve(l.path("file").asText()), c)) {
            Map<String, Integer> byKind = new TreeMap<>();
            for (LoraFile.Module m : f.modules()) {
                String k = m.name().substring(0, m.name().indexOf('_', "lora_".length()) + 1);
                byKind.merge(k, 1, Integer::sum);
                assertEquals(l.path("rank").asInt(), m.rank());
                assertEquals(l.path("alpha").asDouble(), m.alpha());
            }
            l.path("modules").fields().forEachRemaining(e -> assertEquals(e.getValue().asInt(), byKind.get(e.getKey()),
                    e.getKey()));
            int w = c.textEncoders().get(1).hiddenSize();
            LoraFile.Module q = module(f, "lora_te2_text_model_encoder_layers_1_self_attn_q_proj");
            LoraFile.Module v = module(f, "lora_te2_text_model_encoder_layers_1_self_attn_v_proj");
            String inProj = ModelDetection.SDXL_TEXT2 + "transformer.resblocks.1.attn.in_proj_weight";
            assertEquals(inProj, q.target());
            assertEquals(List.of(0, w), List.of(q.rowStart(), q.rows()));
            assertEquals(List.of(2 * w, w), List.of(v.rowStart(), v.rows()));
            assertTrue(q.partial());
            float[] d = f.delta(v, 1.0);
            assertEquals(3L * w * w, d.length);
            for (int i = 0; i < 2 * w * w; i++) {
                assertEquals(0f, d[i], "rows of q and k untouched by the v module");
            }
            assertEquals(ModelDetection.SDXL_TEXT2 + "transformer.resblocks.0.mlp.c_proj.weight",
                    module(f, "lora_te2_text_model_encoder_layers_0_mlp_fc2").target());
            assertEquals(ModelDetection.SDXL_TEXT1 + "encoder.layers.2.self_attn.out_proj.weight",
                    module(f, "lora_te1_text_model_encoder_layers_2_self_attn_out_proj").target());
            assertEquals(ModelConfigs.UNET + "input_blocks.4.1.transformer_blocks.0.attn1.to_q.weight",
                    module(f, "lora_unet_input_blocks_4_1_transformer_blocks_0_attn1_to_q").target());
        }
        // diffusers-style names of the same modules resolve to the same weights
        Map<String, String> t = LdmNames.kohyaTargets(c);
        assertEquals(t.get("lora_unet_input_blocks_4_1_transformer_blocks_0_attn1_to_q"),
                t.get("lora_unet_down_blocks_1_attentions_0_transformer_blocks_0_attn1_to_q"));
        assertEquals(ModelConfigs.UNET + "middle_block.1.proj_in.weight", t.get("lora_unet_mid_block_attentions_0_proj_in"));
    }

    @Test
    void sd2LoraMapsOntoTheOpenClipTowerAndFamiliesDoNotMix() throws IOException {
        ModelConfig sd2 = config("sd2v-tiny");
        ModelConfig xl = config("sdxl-tiny");
        Path sd2Lora = Shared.golden("sd2v-tiny").resolve("tiny-lora.safetensors");
        Path xlLora = Shared.golden("sdxl-tiny").resolve("tiny-lora.safetensors");
        try (LoraFile f = LoraFile.open(sd2Lora, sd2)) {
            assertEquals(192 + 18, f.modules().size());
            LoraFile.Module k = module(f, "lora_te_text_model_encoder_layers_2_self_attn_k_proj");
            assertEquals(ModelDetection.SD2_TEXT + "transformer.resblocks.2.attn.in_proj_weight", k.target());
            assertEquals(sd2.textEncoder().hiddenSize(), k.rowStart());
        }
        CheckpointException a = assertThrows(CheckpointException.class, () -> LoraFile.open(xlLora, sd2));
        assertTrue(a.getMessage().contains("is for SDXL") && a.getMessage().contains("not SD 2.x"), a.getMessage());
        CheckpointException b = assertThrows(CheckpointException.class, () -> LoraFile.open(sd2Lora, xl));
        assertTrue(b.getMessage().contains("not SDXL"), b.getMessage());
    }

    private static LoraFile.Module module(LoraFile f, String name) {
        return f.modules().stream().filter(m -> m.name().equals(name)).findFirst().orElseThrow(() ->
                new AssertionError("no module " + name));
    }
}
