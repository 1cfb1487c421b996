package dev.sdserve.job;

import dev.sdserve.engine.LoraWeight;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

class PromptLorasTest {
    @Test
    void plainPromptIsUntouched() {
        PromptLoras p = PromptLoras.parse("a red fox in snow, (masterpiece:1.2)");
        assertEquals("a red fox in snow, (masterpiece:1.2)", p.prompt());
        assertTrue(p.loras().isEmpty());
        assertEquals("", PromptLoras.parse(null).prompt());
    }

    @Test
    void tagsBecomeLorasAndLeaveThePrompt() {
        PromptLoras p = PromptLoras.parse("a cat, <lora:filmGrain_v2:0.8> on a mat <lora:add detail:1.25>");
        assertEquals("a cat, on a mat", p.prompt());
        assertEquals(List.of(new LoraWeight("filmGrain_v2", 0.8), new LoraWeight("add detail", 1.25)), p.loras());
    }

    @Test
    void weightDefaultsToOneAndLeadingTagIsTidied() {
        PromptLoras p = PromptLoras.parse("<lora:pixel> a castle");
        assertEquals("a castle", p.prompt());
        assertEquals(List.of(new LoraWeight("pixel", 1.0)), p.loras());
    }

    @Test
    void namedAndTwoWeightFormsWhenEqual_lycoAlias_caseInsensitiveType() {
        assertEquals(List.of(new LoraWeight("a", 0.5)), PromptLoras.parse("x <lora:a:te=0.5:unet=0.5>").loras());
        assertEquals(List.of(new LoraWeight("a", 0.7)), PromptLoras.parse("x <lora:a:0.7:0.7>").loras());
        assertEquals(List.of(new LoraWeight("b", -0.3)), PromptLoras.parse("x <LyCO:b:-0.3>").loras());
    }

    @Test
    void sameLoraTwiceSumsWeights() {
        PromptLoras p = PromptLoras.parse("<lora:a:0.5> x <lora:b:1> <lora:a:0.25>");
        assertEquals(List.of(new LoraWeight("a", 0.75), new LoraWeight("b", 1.0)), p.loras());
        assertEquals("x", p.prompt());
    }

    @Test
    void malformedTagsAreInvalidArgumentsOnThePrompt() {
        ServeException e = assertThrows(ServeException.class, () -> PromptLoras.parse("x <lora:a:lots>"));
        assertEquals(ServeException.Code.INVALID_ARGUMENT, e.code());
        assertEquals("prompt", e.field());
        assertTrue(e.getMessage().contains("lots"), e.getMessage());
        assertEquals("prompt", assertThrows(ServeException.class, () -> PromptLoras.parse("<lora: :1>")).field());
        assertTrue(assertThrows(ServeException.class, () -> PromptLoras.parse("x <hypernet:h:1>")).getMessage()
                .contains("hypernet"));
        assertTrue(assertThrows(ServeException.class, () -> PromptLoras.parse("x <lora:a:0.5:1>")).getMessage()
                .contains("UNet"));
        assertEquals("negative_prompt",
                assertThrows(ServeException.class, () -> PromptLoras.parse("<lora:a:x>", "negative_prompt")).field());
    }

    @Test
    void mergeAndWriteBack() {
        assertEquals(List.of(new LoraWeight("a", 1.5), new LoraWeight("b", 0.2)),
                PromptLoras.merge(List.of(new LoraWeight("a", 1.0)), List.of(new LoraWeight("b", 0.2), new LoraWeight("a", 0.5))));
        String tagged = PromptLoras.withTags("a cat", List.of(new LoraWeight("a", 1.0), new LoraWeight("b", 0.75)));
        assertEquals("a cat <lora:a:1> <lora:b:0.75>", tagged);
        PromptLoras back = PromptLoras.parse(tagged);
        assertEquals("a cat", back.prompt());
        assertEquals(List.of(new LoraWeight("a", 1.0), new LoraWeight("b", 0.75)), back.loras());
        assertEquals("7", PromptLoras.fmt(7.0));
        assertEquals("7.5", PromptLoras.fmt(7.5));
        assertEquals("0.1", PromptLoras.fmt(0.1));
    }
}
