package dev.sdserve.model;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

/** Architectures other than SD 1.5's: layout → shapes → detected architecture must give the same config back. */
class ArchitectureRoundTripTest {
    @TempDir
    Path tmp;

    static final ModelConfig ODD = new ModelConfig("sd1",
            new UNetConfig(9, 4, List.of(64, 128, 128), 1, List.of(false, true, true), List.of(true, true, false),
                    false, List.of(2, 4, 4), 48, true, 2, 32, 1e-5, "epsilon", 32),
            new TextEncoderConfig(1000, 48, 96, 2, 3, 20, "quick_gelu", 1e-5, 998, 999, 999),
            new VaeConfig(3, 3, 4, List.of(32, 64, 64), 1, 32, 0.18215));

    @Test
    void shapesOfAnyLayoutGiveItsConfigBack() {
        for (ModelConfig c : List.of(ODD, ModelConfigs.sd15(), EmbeddedModel.CONFIG)) {
            Map<String, long[]> shapes = CheckpointLayout.shapes(CheckpointLayout.full(c, DType.F16));
            ModelConfig back = ModelConfigs.fromShapes(shapes, ModelConfigs.toJson(c));
            assertEquals(c, back);
        }
        // without a config: heads of a linear-projection UNet are width / 64, at least 1
        ModelConfig plain = ModelConfigs.fromShapes(CheckpointLayout.shapes(CheckpointLayout.full(ODD, DType.F16)));
        assertEquals(List.of(1, 2, 2), plain.unet().attentionHeads());
        assertTrue(plain.unet().useLinearProjection());
        assertEquals(2, plain.unet().transformerLayers());
        assertFalse(plain.unet().midAttention());
        assertEquals(List.of(true, true, false), plain.unet().crossAttnUp());
    }

    @Test
    void anOddArchitectureWritesOpensAndMapsLoraNames() throws IOException {
        Path p = tmp.resolve("odd.safetensors");
        RandomCheckpoint.write(p, ODD, DType.BF16, 3);
        try (Checkpoint c = Checkpoint.open(p)) {
            assertEquals(ODD, c.config());
            assertEquals(DType.BF16, c.storageType());
            assertEquals(CheckpointLayout.weights(ODD, DType.BF16).size(), c.requiredKeys().size());
        }
        Map<String, String> t = LdmNames.kohyaTargets(ODD);
        String u = ModelConfigs.UNET;
        // level 0 has no attention: input_blocks.1 is a resnet only; the downsampler of level 0 is input_blocks.2
        assertEquals(u + "input_blocks.2.0.op.weight", t.get("lora_unet_down_blocks_0_downsamplers_0_conv"));
        assertEquals(u + "input_blocks.3.1.transformer_blocks.1.attn2.to_v.weight",
                t.get("lora_unet_down_blocks_1_attentions_0_transformer_blocks_1_attn2_to_v"));
        // mid block without attention: two resnets
        assertEquals(u + "middle_block.1.in_layers.2.weight", t.get("lora_unet_mid_block_resnets_1_conv1"));
        // up level 0 (attention) upsamples at .2, up level 1 too, up level 2 is the last (no upsampler)
        assertEquals(u + "output_blocks.1.2.conv.weight", t.get("lora_unet_up_blocks_0_upsamplers_0_conv"));
        assertEquals(u + "output_blocks.3.2.conv.weight", t.get("lora_unet_up_blocks_1_upsamplers_0_conv"));
        assertNull(t.get("lora_unet_up_blocks_2_upsamplers_0_conv"));
        assertEquals(u + "output_blocks.5.0.skip_connection.weight", t.get("lora_unet_up_blocks_2_resnets_1_conv_shortcut"));
        // every target is a real weight of the layout
        Map<String, long[]> shapes = CheckpointLayout.shapes(CheckpointLayout.weights(ODD, DType.F32));
        for (String target : t.values()) {
            assertTrue(shapes.containsKey(target), target);
        }
    }
}
