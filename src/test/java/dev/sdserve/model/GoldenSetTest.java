package dev.sdserve.model;

import dev.sdserve.testutil.Shared;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

class GoldenSetTest {
    @TempDir
    Path tmp;

    @Test
    void readsTheTinySet() throws IOException {
        try (GoldenSet g = GoldenSet.open(Shared.golden("sd15-tiny"))) {
            assertEquals(1234, g.seed());
            assertEquals("tiny-sd15.safetensors", g.modelFile().getFileName().toString());
            assertEquals("tiny-sd15-fp16.safetensors", g.fp16ModelFile().orElseThrow().getFileName().toString());
            assertEquals(List.of(32, 32, 64, 64), g.config().unet().blockOutChannels());
            assertEquals(4, g.config().textEncoder().heads());
            assertEquals(9, g.tokenizerCases().size());
            assertEquals("an astronaut riding horse on the moon", g.tokenizerCases().get(0).prompt());
            assertEquals(11, g.samplers().size());
            assertTrue(g.samplers().contains("dpmpp_2m_sde_karras"));
            assertEquals(11, g.pipeline("pndm").get("timesteps").size());
            GoldenSet.LoraSettings l = g.lora().orElseThrow();
            assertEquals(210, l.modules());
            assertEquals(4, l.rank());
            assertEquals(2.0, l.alpha());
            assertEquals(0.8, l.scale());
            assertEquals(0.4, l.multiplier(), 1e-12);
            assertTrue(Files.isRegularFile(l.file()));
            assertArrayEquals(new long[]{2, 77}, g.shape("te.input_ids"));
            int[] ids = g.ints("te.input_ids");
            // the first two tokenizer cases, as the README says
            assertArrayEquals(g.tokenizerCases().get(0).ids(), java.util.Arrays.copyOfRange(ids, 0, 77));
            assertArrayEquals(g.tokenizerCases().get(1).ids(), java.util.Arrays.copyOfRange(ids, 77, 154));
            assertArrayEquals(new int[]{999, 250}, g.ints("unet.t"));
            assertEquals(2 * 4 * 16 * 16, g.tensor("unet.eps").length);
            try (Checkpoint c = g.openFp16Model()) {
                assertEquals(g.config(), c.config());
            }
        }
    }

    @Test
    void rejectsADirectoryThatIsNotASet() {
        IOException e = assertThrows(IOException.class, () -> GoldenSet.open(tmp));
        assertTrue(e.getMessage().contains("not a golden set"), e.getMessage());
    }
}
