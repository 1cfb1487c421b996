package dev.sdserve.engine.tf;

import dev.sdserve.cli.ConformanceCommand;

import dev.sdserve.testutil.Shared;
import org.junit.jupiter.api.Test;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** CI runs the conformance command on the SDXL and SD 2.x tiny golden sets: every case must pass. */
class FamilyConformanceTest {
    static String run(String set) throws Exception {
        ByteArrayOutputStream buf = new ByteArrayOutputStream();
        PrintStream ps = new PrintStream(buf, true, StandardCharsets.UTF_8);
        int code = new ConformanceCommand().run(List.of(Shared.golden(set).toString()), ps);
        String out = buf.toString(StandardCharsets.UTF_8);
        System.out.print(out);
        String[] lines = out.strip().split("\n");
        String last = lines[lines.length - 1];
        assertTrue(last.matches("conformance: \\d+ passed, 0 failed"), last);
        assertEquals(0, code);
        return out;
    }

    @Test
    void sdxlTinyPassesEveryCase() throws Exception {
        String out = run("sdxl-tiny");
        for (String c : List.of("tokenizer.2.ids_2", "fp32.te2.text_embeds", "fp32.unet.emb", "fp32.unet.batch",
                "fp32.pipe.negative_prompt_embeds", "fp32.pipe.euler_microcond.add_time_ids",
                "fp32.pipe.dpmpp_2m_karras.image", "fp16.unet.batch", "fp32.lora.low-rank.te2.penultimate",
                "fp32.lora.merged.pipe.euler.image")) {
            assertTrue(out.contains(c + " "), c + " ran");
        }
    }

    @Test
    void sd2vTinyPassesEveryCase() throws Exception {
        String out = run("sd2v-tiny");
        for (String c : List.of("tokenizer.2.ids", "fp32.te.last_hidden_state", "fp32.te_full.last_hidden_state",
                "fp32.unet.batch", "fp32.pipe.eps_pndm.latents", "fp32.pipe.ddim.image", "fp16.pipe.euler.image",
                "fp32.lora.low-rank.unet.batch", "fp32.lora.merged.pipe.euler.image")) {
            assertTrue(out.contains(c + " "), c + " ran");
        }
    }
}
