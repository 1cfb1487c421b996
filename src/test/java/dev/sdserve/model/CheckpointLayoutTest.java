package dev.sdserve.model;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.sdserve.testutil.Shared;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

import static org.junit.jupiter.api.Assertions.*;

class CheckpointLayoutTest {
    @Test
    void sd15LayoutEqualsTheCivitaiListingLineByLine() throws IOException {
        List<String> expected = CheckpointLayout.readListing(Shared.dir().resolve("golden/sd15-full-layout.txt"))
                .stream().map(CheckpointLayout.Entry::line).toList();
        List<String> actual = CheckpointLayout.full(ModelConfigs.sd15(), DType.F16).stream()
                .map(CheckpointLayout.Entry::line).toList();
        assertEquals(1143, expected.size());
        assertEquals(expected.size(), actual.size());
        for (int i = 0; i < expected.size(); i++) {
            assertEquals(expected.get(i), actual.get(i), "line " + (i + 1));
        }
        List<CheckpointLayout.Entry> sd15 = CheckpointLayout.full(ModelConfigs.sd15(), DType.F16);
        assertEquals(686, sd15.stream().filter(e -> e.name().startsWith(ModelConfigs.UNET)).count());
        assertEquals(248, sd15.stream().filter(e -> e.name().startsWith(ModelConfigs.VAE)).count());
        assertEquals(196, sd15.stream().filter(e -> e.name().startsWith(ModelConfigs.TEXT) && e.dtype() == DType.F16).count());
    }

    @Test
    void tinyLayoutEqualsTheGoldenFile() throws IOException {
        Path dir = Shared.golden("sd15-tiny");
        ModelConfig cfg = ModelConfigs.fromShapes(ModelConfigsTest.fileShapes(dir.resolve("tiny-sd15.safetensors")),
                new ObjectMapper().readTree(dir.resolve("golden.json").toFile()));
        for (String f : List.of("tiny-sd15.safetensors", "tiny-sd15-fp16.safetensors")) {
            try (SafeTensors st = SafeTensors.open(dir.resolve(f))) {
                Map<String, String> expected = new TreeMap<>();
                st.tensors().values().forEach(t -> expected.put(t.name(), t.shapeString() + " " + t.dtype()));
                DType dt = f.contains("fp16") ? DType.F16 : DType.F32;
                Map<String, String> actual = new TreeMap<>();
                CheckpointLayout.weights(cfg, dt).forEach(e -> actual.put(e.name(), java.util.Arrays.toString(e.shape()) + " " + e.dtype()));
                assertEquals(expected, actual, f);
                assertEquals(980, actual.size());
            }
        }
    }
}
