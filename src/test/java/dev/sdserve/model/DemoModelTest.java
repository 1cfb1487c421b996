package dev.sdserve.model;

import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/** The embedded demo model: shipped file, its architecture and card, and the checked copy into the cache. */
class DemoModelTest {
    @TempDir
    Path tmp;

    @Test
    void shippedFileIsTheTrainedModelWithItsArchitecture() throws IOException {
        Path p = DemoModel.path(tmp);
        assertEquals(DemoModel.SIZE, Files.size(p));
        assertEquals(DemoModel.SHA256, ModelRegistry.sha256(p), "the file of shared/demo (its README's SHA-256)");
        try (Checkpoint c = Checkpoint.open(p)) {
            ModelConfig cfg = c.config();
            // shared/demo/README.md: UNet (32, 64, 128, 128), context 128, 8 heads; CLIP width 128, 3 layers, 4 heads;
            // VAE (32, 64, 128, 128); 128×128 images (latent 16×16)
            assertEquals(List.of(32, 64, 128, 128), cfg.unet().blockOutChannels());
            assertEquals(128, cfg.unet().crossAttentionDim());
            assertEquals(128, cfg.unet().sampleSize() * cfg.vae().downscale());
            assertEquals(128, cfg.textEncoder().hiddenSize());
            assertEquals(3, cfg.textEncoder().layers());
            assertEquals(4, cfg.textEncoder().heads(), "from its JSON: shapes alone would give 128/64 = 2");
            assertEquals(List.of(32, 64, 128, 128), cfg.vae().blockOutChannels());
            assertEquals(DType.F16, c.storageType());
        }
    }

    @Test
    void cardDescribesItAndRecommendsItsSettings() {
        ModelDefaults.Card c = DemoModel.card();
        assertTrue(c.description().startsWith("Demonstration model (128×128)"), c.description());
        assertEquals(new ModelDefaults("dpmpp_2m", 20, 5.0, 128, 128, null), c.defaults());
    }

    @Test
    void unpacksOnceWithItsHashCheckedAndRepairsADamagedCopy() throws IOException {
        byte[] bytes = Files.readAllBytes(DemoModel.path(tmp));
        Path dir = tmp.resolve("cache");
        int[] opened = {0};
        DemoModel.Source src = () -> {
            opened[0]++;
            return new ByteArrayInputStream(bytes);
        };
        Path p = DemoModel.unpack(dir, src);
        assertEquals("sd-shapes-79a2abcfde.safetensors", p.getFileName().toString());
        assertEquals(DemoModel.SHA256, ModelRegistry.sha256(p));
        assertTrue(Files.isRegularFile(dir.resolve("sd-shapes-79a2abcfde.json")), "its JSON beside it");
        assertEquals(1, opened[0]);
        Files.setLastModifiedTime(p, FileTime.fromMillis(1_000_000));
        DemoModel.unpack(dir, src);
        assertEquals(1, opened[0], "an intact copy is reused");
        assertEquals(1_000_000, Files.getLastModifiedTime(p).toMillis());
        Files.write(p, new byte[]{1, 2, 3});
        DemoModel.unpack(dir, src);
        assertEquals(2, opened[0], "a damaged copy is rewritten");
        assertEquals(DemoModel.SHA256, ModelRegistry.sha256(p));
        try (Checkpoint c = Checkpoint.open(p)) {
            assertEquals(4, c.config().textEncoder().heads());
        }
    }

    @Test
    void aSourceWithOtherBytesIsRefusedAndLeavesNothing() throws IOException {
        Path dir = tmp.resolve("bad");
        IOException e = assertThrows(IOException.class, () -> DemoModel.unpack(dir,
                () -> new ByteArrayInputStream(new byte[1000])));
        assertTrue(e.getMessage().contains("SHA-256"), e.getMessage());
        try (var s = Files.list(dir)) {
            assertEquals(List.of(), s.filter(f -> f.getFileName().toString().contains(".safetensors")
                    && !f.getFileName().toString().endsWith(".lock")).toList());
        }
    }

    @Test
    void sidecarDefaultsAreReadAndCheckedMemberByMember() throws IOException {
        ObjectMapper m = new ObjectMapper();
        ModelDefaults.Card c = ModelDefaults.cardFromJson(m.readTree("""
                {"description": "anime", "defaults": {"sampler": "Euler a", "steps": 28, "guidance_scale": 7,
                 "clip_skip": 2}, "unet": {"sample_size": 64}}"""));
        assertEquals("anime", c.description());
        assertEquals(new ModelDefaults("Euler a", 28, 7.0, null, null, 2), c.defaults());
        assertEquals(ModelDefaults.Card.NONE, ModelDefaults.cardFromJson(m.readTree("{\"unet\": {}}")));
        for (String[] bad : new String[][]{
                {"{\"defaults\": {\"guidance\": 5}}", "defaults.guidance: unknown member"},
                {"{\"defaults\": {\"steps\": 0}}", "defaults.steps: must be a positive integer"},
                {"{\"defaults\": {\"steps\": 2.5}}", "defaults.steps"},
                {"{\"defaults\": {\"guidance_scale\": \"5\"}}", "defaults.guidance_scale"},
                {"{\"defaults\": {\"sampler\": 3}}", "defaults.sampler"},
                {"{\"defaults\": []}", "defaults: must be an object"},
                {"{\"description\": 1}", "description: must be a string"}}) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> ModelDefaults.cardFromJson(m.readTree(bad[0])), bad[0]);
            assertTrue(e.getMessage().startsWith(bad[1]), e.getMessage());
        }
        // beside a checkpoint: <stem>.json, named in the error
        Path ck = tmp.resolve("m.safetensors");
        Files.writeString(tmp.resolve("m.json"), "{\"defaults\": {\"width\": -8}}");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> ModelDefaults.cardOf(ck));
        assertTrue(e.getMessage().startsWith("m.json: defaults.width"), e.getMessage());
    }
}
