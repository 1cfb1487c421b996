package dev.sdserve.model;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.sdserve.testutil.Shared;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.*;

class CheckpointTest {
    static final Path GOLDEN = Shared.golden("sd15-tiny");
    @TempDir
    Path tmp;

    static JsonNode goldenJson() throws IOException {
        return new ObjectMapper().readTree(GOLDEN.resolve("golden.json").toFile());
    }

    @Test
    void opensTheGoldenFileInBothPrecisions() throws IOException {
        JsonNode g = goldenJson();
        try (Checkpoint f32 = Checkpoint.open(GOLDEN.resolve("tiny-sd15.safetensors"), g);
             Checkpoint f16 = Checkpoint.open(GOLDEN.resolve("tiny-sd15-fp16.safetensors"), g);
             SafeTensors raw = SafeTensors.open(GOLDEN.resolve("tiny-sd15.safetensors"))) {
            assertEquals(DType.F32, f32.storageType());
            assertEquals(DType.F16, f16.storageType());
            assertEquals(f32.config(), f16.config());
            assertEquals(4, f32.config().textEncoder().heads());
            assertEquals(980, f32.requiredKeys().size());
            assertEquals(raw.names(), Set.copyOf(f32.requiredKeys()));
            String k = "model.diffusion_model.middle_block.1.transformer_blocks.0.attn2.to_k.weight";
            assertTrue(f32.keys(Checkpoint.Network.UNET).contains(k));
            assertArrayEquals(new long[]{64, 32}, f32.shape(k));
            float[] a = f32.floats(k);
            float[] b = f16.floats(k);
            // the F32 file read through the checkpoint equals the raw little-endian floats
            java.nio.FloatBuffer fb = raw.bytes(k).asFloatBuffer();
            for (int i = 0; i < a.length; i++) {
                assertEquals(fb.get(i), a[i]);
                assertEquals(a[i], b[i], Math.abs(a[i]) * 0x1p-11 + 1e-7);
            }
            assertEquals(52, f32.keys(Checkpoint.Network.TEXT_ENCODER).size());
        }
    }

    @Test
    void readsConfigJsonBesideTheFile() throws IOException {
        Path file = tmp.resolve("m.safetensors");
        Files.copy(GOLDEN.resolve("tiny-sd15-fp16.safetensors"), file);
        try (Checkpoint c = Checkpoint.open(file)) {
            assertEquals(1, c.config().textEncoder().heads()); // convention: width 32 / 64, at least 1
            assertTrue(c.configFile().isEmpty());
        }
        Files.writeString(tmp.resolve("m.json"), goldenJson().get("configs").toString());
        try (Checkpoint c = Checkpoint.open(file)) {
            assertEquals(4, c.config().textEncoder().heads());
            assertEquals(tmp.resolve("m.json"), c.configFile().orElseThrow());
        }
    }

    /** Writes the tiny layout (zeros) minus {@code drop}, plus {@code extra} tensors of shape [4]. */
    Path write(String name, Set<String> drop, List<String> extra) throws IOException {
        ModelConfig cfg = ModelConfigs.fromShapes(ModelConfigsTest.fileShapes(GOLDEN.resolve("tiny-sd15.safetensors")), goldenJson());
        SafeTensorsWriter w = new SafeTensorsWriter();
        for (CheckpointLayout.Entry e : CheckpointLayout.full(cfg, DType.F16)) {
            if (drop.contains(e.name())) {
                continue;
            }
            if (e.dtype() == DType.I64) {
                w.addLongs(e.name(), DType.I64, e.shape(), new long[(int) e.elements()]);
            } else {
                w.add(e.name(), e.dtype(), e.shape(), (s, c, n) -> java.util.Arrays.fill(c, 0, n, 0f));
            }
        }
        for (String x : extra) {
            w.add(x, DType.F32, new long[]{4}, new float[4]);
        }
        Path p = tmp.resolve(name);
        w.write(p);
        return p;
    }

    @Test
    void ignoresUnusedAndNamesEveryMissingTensor() throws IOException {
        Path ok = write("extras.safetensors", Set.of(), List.of("model_ema.decay", "model_ema.num_updates", "model_ema.diffusion_modelout2bias", "some.other.thing"));
        try (Checkpoint c = Checkpoint.open(ok, goldenJson())) {
            assertEquals(980, c.requiredKeys().size());
            assertTrue(c.has("alphas_cumprod"));
        }
        Set<String> drop = Set.of("model.diffusion_model.output_blocks.3.1.proj_out.bias",
                "first_stage_model.decoder.up.2.block.1.conv2.weight",
                "cond_stage_model.transformer.text_model.encoder.layers.1.mlp.fc2.bias");
        Path bad = write("x.safetensors", drop, List.of());
        CheckpointException e = assertThrows(CheckpointException.class, () -> Checkpoint.open(bad, goldenJson()));
        assertTrue(e.getMessage().startsWith("checkpoint x.safetensors lacks 3 tensors"), e.getMessage());
        for (String d : drop) {
            assertTrue(e.getMessage().contains(d), e.getMessage());
        }
    }

    @Test
    void acceptsOldTextEncoderNamesWithoutTextModel() throws IOException {
        Path old = tmp.resolve("old.safetensors");
        SafeTensorsWriter w = new SafeTensorsWriter();
        try (SafeTensors st = SafeTensors.open(GOLDEN.resolve("tiny-sd15-fp16.safetensors"))) {
            for (var t : st.tensors().values()) {
                w.add(t.name().replace("cond_stage_model.transformer.text_model.", "cond_stage_model.transformer."),
                        DType.F16, t.shape(), st.floats(t.name()));
            }
        }
        w.write(old);
        try (Checkpoint c = Checkpoint.open(old, goldenJson());
             Checkpoint ref = Checkpoint.open(GOLDEN.resolve("tiny-sd15-fp16.safetensors"), goldenJson())) {
            assertEquals(ref.config(), c.config());
            String k = ModelConfigs.TEXT + "encoder.layers.2.mlp.fc1.weight";
            assertEquals("cond_stage_model.transformer.encoder.layers.2.mlp.fc1.weight", c.fileKey(k));
            assertArrayEquals(ref.floats(k), c.floats(k));
            assertArrayEquals(ref.shape(k), c.shape(k));
            assertEquals(k, ref.fileKey(k));
        }
    }

    @Test
    void accepts1x1ConvWeightsStoredAsMatrices() throws IOException {
        Path f = tmp.resolve("vae2d.safetensors");
        SafeTensorsWriter w = new SafeTensorsWriter();
        try (SafeTensors st = SafeTensors.open(GOLDEN.resolve("tiny-sd15-fp16.safetensors"))) {
            for (var t : st.tensors().values()) {
                long[] sh = t.shape();
                if (t.name().contains(".mid.attn_1.") && sh.length == 4) {
                    sh = new long[]{sh[0], sh[1]};
                }
                w.add(t.name(), DType.F16, sh, st.floats(t.name()));
            }
        }
        w.write(f);
        try (Checkpoint c = Checkpoint.open(f, goldenJson())) {
            assertArrayEquals(new long[]{64, 64}, c.shape("first_stage_model.decoder.mid.attn_1.q.weight"));
        }
        assertTrue(Checkpoint.sameAs1x1(new long[]{8, 4}, new long[]{8, 4, 1, 1}));
        assertFalse(Checkpoint.sameAs1x1(new long[]{8, 4}, new long[]{8, 4, 3, 3}));
        assertFalse(Checkpoint.sameAs1x1(new long[]{4, 8}, new long[]{8, 4, 1, 1}));
    }

    @Test
    void rejectsFilesThatAreNotSd1Checkpoints() throws IOException {
        CheckpointException lora = assertThrows(CheckpointException.class,
                () -> Checkpoint.open(GOLDEN.resolve("tiny-lora.safetensors")));
        assertTrue(lora.getMessage().contains("LoRA"), lora.getMessage());

        Path sdxl = write("xl.safetensors", Set.of(), List.of("conditioner.embedders.0.transformer.text_model.final_layer_norm.weight"));
        CheckpointException xl = assertThrows(CheckpointException.class, () -> Checkpoint.open(sdxl));
        assertTrue(xl.getMessage().contains("SDXL"), xl.getMessage());

        Path sd2 = write("sd2.safetensors", Set.of(), List.of("cond_stage_model.model.ln_final.weight"));
        CheckpointException two = assertThrows(CheckpointException.class, () -> Checkpoint.open(sd2));
        assertTrue(two.getMessage().contains("SD 2.x"), two.getMessage());

        Path golden = GOLDEN.resolve("golden.safetensors");
        CheckpointException g = assertThrows(CheckpointException.class, () -> Checkpoint.open(golden));
        assertTrue(g.getMessage().contains("none under model.diffusion_model."), g.getMessage());

        Path noVae = tmp.resolve("novae.safetensors");
        SafeTensorsWriter w = new SafeTensorsWriter();
        try (SafeTensors st = SafeTensors.open(GOLDEN.resolve("tiny-sd15-fp16.safetensors"))) {
            for (var t : st.tensors().values()) {
                if (!t.name().startsWith("first_stage_model.")) {
                    w.add(t.name(), DType.F16, t.shape(), st.floats(t.name()));
                }
            }
        }
        w.write(noVae);
        CheckpointException v = assertThrows(CheckpointException.class, () -> Checkpoint.open(noVae));
        assertTrue(v.getMessage().contains("no VAE"), v.getMessage());
    }
}
