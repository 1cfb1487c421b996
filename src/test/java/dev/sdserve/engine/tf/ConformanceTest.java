package dev.sdserve.engine.tf;

import dev.sdserve.cli.ConformanceCommand;
import dev.sdserve.testutil.Shared;
import org.junit.jupiter.api.Test;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** CI runs the conformance command's logic on the shared tiny golden set: every case must pass. */
class ConformanceTest {
    @Test
    void sd15TinyPassesEveryCase() throws Exception {
        ByteArrayOutputStream buf = new ByteArrayOutputStream();
        PrintStream ps = new PrintStream(buf, true, StandardCharsets.UTF_8);
        int code = new ConformanceCommand().run(java.util.List.of(Shared.golden("sd15-tiny").toString()), ps);
        String out = buf.toString(StandardCharsets.UTF_8);
        System.out.print(out);
        String[] lines = out.strip().split("\n");
        String last = lines[lines.length - 1];
        assertTrue(last.matches("conformance: \\d+ passed, 0 failed"), last);
        assertTrue(out.contains("fp16.unet.batch"), "fp16 file ran");
        assertTrue(out.contains("prompt.pipe.image"), "prompt syntax cases ran (ext/golden-ext)");
        assertTrue(out.contains("img2img.euler_ancestral.s30.image"), "img2img cases ran");
        assertTrue(out.contains("inpaint.unet9.ddim.latents") && out.contains("inpaint.unet4.euler.image"), "inpainting cases ran");
        assertEquals(0, code);
    }
}
