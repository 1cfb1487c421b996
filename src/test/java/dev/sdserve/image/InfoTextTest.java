package dev.sdserve.image;

import dev.sdserve.engine.LoraWeight;
import dev.sdserve.job.PreviewOptions;
import dev.sdserve.job.ResolvedRequest;
import dev.sdserve.job.SloClass;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

class InfoTextTest {
    static ResolvedRequest request(String prompt, String negative, List<LoraWeight> loras, int images, int clipSkip) {
        return new ResolvedRequest(prompt, negative, "models/v1-5-pruned-emaonly.safetensors", loras, 512, 768, 20,
                "DPM++ 2M Karras", 7.0, 42, clipSkip, images, PreviewOptions.OFF, SloClass.STANDARD, 0, 0, null, false);
    }

    @Test
    void formatsLikeA1111() {
        String t = InfoText.format(request("a red fox in snow", "blurry, lowres", List.of(), 1, 1), 42, "6ce0161689");
        assertEquals("""
                a red fox in snow
                Negative prompt: blurry, lowres
                Steps: 20, Sampler: DPM++ 2M Karras, CFG scale: 7, Seed: 42, Size: 512x768, Model hash: 6ce0161689, \
                Model: v1-5-pruned-emaonly, Version: sd-serve""", t);
    }

    @Test
    void noNegativeLineWhenEmpty_lorasAsTagsAndHashes_batchAndClipSkip() {
        ResolvedRequest r = request("castle", "", List.of(new LoraWeight("film", 0.8), new LoraWeight("pixel", 1.0)), 2, 2);
        String t = InfoText.format(r, 43, null, Map.of("film", "1a2b3c4d5e6f"));
        assertEquals("""
                castle <lora:film:0.8> <lora:pixel:1>
                Steps: 20, Sampler: DPM++ 2M Karras, CFG scale: 7, Seed: 43, Size: 512x768, Model: v1-5-pruned-emaonly, \
                Batch size: 2, Batch pos: 1, Clip skip: 2, Lora hashes: "film: 1a2b3c4d5e6f", Version: sd-serve""", t);
    }

    @Test
    void thePromptLineIsThePromptAsWritten() {
        String written = "masterpiece, (best quality:1.2), [blurry], <lora:film:0.8> a \\(sign\\) BREAK "
                + "a [cat:dog:0.5] on a [red|blue] sofa, ((detailed eyes))";
        ResolvedRequest r = request(written, "(worst quality:1.4), [[lowres]]", List.of(new LoraWeight("film", 0.8)), 1, 1);
        String t = InfoText.format(r, 42, null);
        assertTrue(t.startsWith(written + "\nNegative prompt: (worst quality:1.4), [[lowres]]\n"), t);
        InfoText.Parsed back = InfoText.parse(t);
        assertEquals(written, back.prompt());
        // a LoRA given outside the prompt (a request's list) is appended as a tag; the prompt's own stays in place
        ResolvedRequest both = request(written, "", List.of(new LoraWeight("film", 1.0), new LoraWeight("pixel", 0.5)), 1, 1);
        assertEquals(written + " <lora:film:0.2> <lora:pixel:0.5>", InfoText.parse(InfoText.format(both, 1, null)).prompt());
    }

    @Test
    void parsesA1111Output() {
        // An infotext as A1111 v1.6 writes it (multi-line prompt, quoted value with commas and colons).
        String a1111 = """
                masterpiece, best quality,
                a red fox in snow <lora:filmGrain:0.8>
                Negative prompt: blurry, lowres
                Steps: 20, Sampler: DPM++ 2M Karras, CFG scale: 7.5, Seed: 3011911432, Size: 512x512, \
                Model hash: 6ce0161689, Model: v1-5-pruned-emaonly, Lora hashes: "filmGrain: 1a2b3c4d5e6f", Version: v1.6.0""";
        InfoText.Parsed p = InfoText.parse(a1111);
        assertEquals("masterpiece, best quality,\na red fox in snow <lora:filmGrain:0.8>", p.prompt());
        assertEquals("blurry, lowres", p.negativePrompt());
        assertEquals("20", p.parameters().get("Steps"));
        assertEquals("DPM++ 2M Karras", p.parameters().get("Sampler"));
        assertEquals("7.5", p.parameters().get("CFG scale"));
        assertEquals("3011911432", p.parameters().get("Seed"));
        assertEquals("512x512", p.parameters().get("Size"));
        assertEquals("filmGrain: 1a2b3c4d5e6f", p.parameters().get("Lora hashes"));
        assertEquals("v1.6.0", p.parameters().get("Version"));
        assertEquals(9, p.parameters().size());
    }

    @Test
    void roundTripThroughAPngReadByImageIo() throws IOException {
        ResolvedRequest r = request("a lighthouse, dusk: oil", "text, watermark",
                List.of(new LoraWeight("my lora", 0.65)), 1, 1);
        String t = InfoText.format(r, 42, "0123456789", Map.of("my lora", "abcdefabcdef"));
        byte[] png = PngText.withText(PngTextTest.samplePng(), InfoText.KEYWORD, t);
        String back = PngTextTest.imageIoText(png).get("parameters");
        assertEquals(t, back);
        InfoText.Parsed p = InfoText.parse(back);
        assertEquals("a lighthouse, dusk: oil <lora:my lora:0.65>", p.prompt());
        assertEquals("text, watermark", p.negativePrompt());
        assertEquals("42", p.parameters().get("Seed"));
        assertEquals("512x768", p.parameters().get("Size"));
        assertEquals("0123456789", p.parameters().get("Model hash"));
        assertEquals("my lora: abcdefabcdef", p.parameters().get("Lora hashes"));
    }

    @Test
    void modelNameIsTheFileStem() {
        assertEquals("v1-5", InfoText.modelName("/x/y/v1-5.safetensors"));
        assertEquals("embedded", InfoText.modelName("embedded"));
    }
}
