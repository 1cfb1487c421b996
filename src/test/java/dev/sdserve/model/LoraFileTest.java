package dev.sdserve.model;

import dev.sdserve.testutil.Shared;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Path;
import java.util.HashSet;
import java.util.Map;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.*;

class LoraFileTest {
    @TempDir
    Path tmp;

    @Test
    void everyGoldenLoraModuleMapsToATinyCheckpointTensor() throws IOException {
        try (GoldenSet g = GoldenSet.open(Shared.golden("sd15-tiny"));
             SafeTensors model = SafeTensors.open(g.modelFile());
             LoraFile lora = LoraFile.open(g.lora().orElseThrow().file(), g.config())) {
            GoldenSet.LoraSettings s = g.lora().orElseThrow();
            assertEquals(s.modules(), lora.modules().size());
            Set<String> targets = new HashSet<>();
            int te = 0;
            for (LoraFile.Module m : lora.modules()) {
                assertTrue(model.has(m.target()), m.name() + " → " + m.target());
                assertArrayEquals(model.shape(m.target()), m.targetShape(), m.name());
                assertEquals(s.rank(), m.rank());
                assertEquals(s.alpha(), m.alpha());
                assertTrue(targets.add(m.target()), "two modules on " + m.target());
                if (m.textEncoder()) {
                    te++;
                }
                if (!s.conv3x3()) {
                    assertNotEquals(LoraFile.Kind.CONV3X3, m.kind());
                }
                // the delta has the target's element count
                long n = 1;
                for (long d : m.targetShape()) {
                    n *= d;
                }
                assertEquals(n, lora.delta(m, s.scale()).length);
            }
            int layers = g.config().textEncoder().layers();
            assertEquals(6 * layers, te); // q, k, v, out, fc1, fc2 per layer
        }
    }

    @Test
    void kohyaNamesFollowTheDiffusersToLdmBlockMapping() {
        // hand-checked pairs of diffusers' SD 1.x single-file conversion, for the SD 1.5 architecture
        Map<String, String> t = LdmNames.kohyaTargets(ModelConfigs.sd15());
        String u = ModelConfigs.UNET;
        assertEquals(u + "input_blocks.1.1.transformer_blocks.0.attn1.to_q.weight",
                t.get("lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q"));
        assertEquals(u + "input_blocks.8.1.transformer_blocks.0.attn2.to_k.weight",
                t.get("lora_unet_down_blocks_2_attentions_1_transformer_blocks_0_attn2_to_k"));
        assertEquals(u + "middle_block.1.proj_in.weight", t.get("lora_unet_mid_block_attentions_0_proj_in"));
        assertEquals(u + "output_blocks.5.1.proj_out.weight", t.get("lora_unet_up_blocks_1_attentions_2_proj_out"));
        assertEquals(u + "output_blocks.11.1.transformer_blocks.0.ff.net.2.weight",
                t.get("lora_unet_up_blocks_3_attentions_2_transformer_blocks_0_ff_net_2"));
        assertEquals(u + "output_blocks.9.1.transformer_blocks.0.attn1.to_out.0.weight",
                t.get("lora_unet_up_blocks_3_attentions_0_transformer_blocks_0_attn1_to_out_0"));
        // LoCon targets: resnets, samplers, in/out convs, time embedding
        assertEquals(u + "input_blocks.4.0.skip_connection.weight", t.get("lora_unet_down_blocks_1_resnets_0_conv_shortcut"));
        assertEquals(u + "input_blocks.7.0.in_layers.2.weight", t.get("lora_unet_down_blocks_2_resnets_0_conv1"));
        assertEquals(u + "input_blocks.3.0.op.weight", t.get("lora_unet_down_blocks_0_downsamplers_0_conv"));
        assertEquals(u + "input_blocks.9.0.op.weight", t.get("lora_unet_down_blocks_2_downsamplers_0_conv"));
        assertEquals(u + "middle_block.2.emb_layers.1.weight", t.get("lora_unet_mid_block_resnets_1_time_emb_proj"));
        assertEquals(u + "output_blocks.2.1.conv.weight", t.get("lora_unet_up_blocks_0_upsamplers_0_conv"));
        assertEquals(u + "output_blocks.5.2.conv.weight", t.get("lora_unet_up_blocks_1_upsamplers_0_conv"));
        assertEquals(u + "output_blocks.8.2.conv.weight", t.get("lora_unet_up_blocks_2_upsamplers_0_conv"));
        assertEquals(u + "output_blocks.3.0.out_layers.3.weight", t.get("lora_unet_up_blocks_1_resnets_0_conv2"));
        assertEquals(u + "input_blocks.0.0.weight", t.get("lora_unet_conv_in"));
        assertEquals(u + "out.2.weight", t.get("lora_unet_conv_out"));
        assertEquals(u + "time_embed.2.weight", t.get("lora_unet_time_embedding_linear_2"));
        // older kohya files used LDM paths
        assertEquals(u + "input_blocks.4.1.proj_in.weight", t.get("lora_unet_input_blocks_4_1_proj_in"));
        assertEquals(ModelConfigs.TEXT + "encoder.layers.11.self_attn.out_proj.weight",
                t.get("lora_te_text_model_encoder_layers_11_self_attn_out_proj"));
    }

    @Test
    void deltaIsScaledUpTimesDown() throws IOException {
        Path p = tmp.resolve("l.safetensors");
        // conv 3x3 LoCon on input_blocks.1.0.in_layers.2 (32 → 32) and a linear on a text-encoder q_proj, rank 2
        float[] down = new float[2 * 32 * 9];
        float[] up = new float[32 * 2];
        for (int i = 0; i < down.length; i++) {
            down[i] = (i % 7) - 3;
        }
        for (int i = 0; i < up.length; i++) {
            up[i] = (i % 5) * 0.5f;
        }
        new SafeTensorsWriter()
                .add("lora_unet_down_blocks_0_resnets_0_conv1.lora_down.weight", DType.F16, new long[]{2, 32, 3, 3}, down)
                .add("lora_unet_down_blocks_0_resnets_0_conv1.lora_up.weight", DType.F32, new long[]{32, 2, 1, 1}, up)
                .add("lora_unet_down_blocks_0_resnets_0_conv1.alpha", DType.F32, new long[]{}, new float[]{1})
                .add("lora_te_text_model_encoder_layers_0_self_attn_q_proj.lora_down.weight", DType.F32, new long[]{2, 32}, new float[64])
                .add("lora_te_text_model_encoder_layers_0_self_attn_q_proj.lora_up.weight", DType.F32, new long[]{32, 2}, new float[64])
                .write(p);
        try (GoldenSet g = GoldenSet.open(Shared.golden("sd15-tiny"));
             LoraFile l = LoraFile.open(p, g.config())) {
            LoraFile.Module conv = l.modules().stream().filter(m -> m.kind() == LoraFile.Kind.CONV3X3).findFirst().orElseThrow();
            assertEquals(ModelConfigs.UNET + "input_blocks.1.0.in_layers.2.weight", conv.target());
            LoraFile.Module lin = l.modules().stream().filter(m -> m.kind() == LoraFile.Kind.LINEAR).findFirst().orElseThrow();
            assertEquals(2.0, lin.alpha()); // no alpha tensor: alpha = rank
            float[] d = l.delta(conv, 0.8);
            for (int o = 0; o < 32; o++) {
                for (int c = 0; c < 32 * 9; c++) {
                    double e = 0;
                    for (int k = 0; k < 2; k++) {
                        e += up[o * 2 + k] * down[k * 288 + c];
                    }
                    e *= 0.8 * 1.0 / 2;
                    assertEquals(e, d[o * 288 + c], 1e-5, "o=" + o + " c=" + c);
                }
            }
        }
    }

    @Test
    void aLoraForAnotherArchitectureIsOneClearError() throws IOException {
        Path p = tmp.resolve("other.safetensors");
        new SafeTensorsWriter()
                .add("lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q.lora_down.weight", DType.F32, new long[]{4, 32}, new float[128])
                .add("lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q.lora_up.weight", DType.F32, new long[]{32, 4}, new float[128])
                .add("lora_unet_down_blocks_3_attentions_0_proj_in.lora_down.weight", DType.F32, new long[]{4, 64}, new float[256])
                .add("lora_unet_down_blocks_3_attentions_0_proj_in.lora_up.weight", DType.F32, new long[]{64, 4}, new float[256])
                .add("lora_unet_down_blocks_0_attentions_0_transformer_blocks_1_attn1_to_q.lora_down.weight", DType.F32, new long[]{4, 32}, new float[128])
                .add("lora_unet_down_blocks_0_attentions_0_transformer_blocks_1_attn1_to_q.lora_up.weight", DType.F32, new long[]{32, 4}, new float[128])
                .write(p);
        try (GoldenSet g = GoldenSet.open(Shared.golden("sd15-tiny"))) {
            CheckpointException e = assertThrows(CheckpointException.class, () -> LoraFile.open(p, g.config()));
            assertTrue(e.getMessage().contains("2 of 3 modules that match nothing"), e.getMessage());
            assertTrue(e.getMessage().contains("lora_unet_down_blocks_3_attentions_0_proj_in"), e.getMessage());
            assertTrue(e.getMessage().contains("transformer_blocks_1_attn1_to_q"), e.getMessage());
            // the golden LoRA against the SD 1.5 architecture: shapes do not fit
            CheckpointException s = assertThrows(CheckpointException.class,
                    () -> LoraFile.open(g.lora().orElseThrow().file(), ModelConfigs.sd15()));
            assertTrue(s.getMessage().contains("modules that do not fit"), s.getMessage());
            // a model file is not a LoRA
            CheckpointException m = assertThrows(CheckpointException.class, () -> LoraFile.open(g.modelFile(), g.config()));
            assertTrue(m.getMessage().contains("not a kohya LoRA") && m.getMessage().contains("model checkpoint"), m.getMessage());
        }
    }
}
