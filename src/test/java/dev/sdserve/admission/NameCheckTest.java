package dev.sdserve.admission;

import dev.sdserve.engine.LoraWeight;
import dev.sdserve.engine.fake.FakeEngine;
import dev.sdserve.job.GenerationRequest;
import dev.sdserve.job.ResolvedRequest;
import dev.sdserve.job.ServeException;
import dev.sdserve.sampler.LibrarySamplers;
import org.junit.jupiter.api.Test;

import java.util.Collections;
import java.util.List;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.*;

/** Admission's model and LoRA name checks: 400 for a name that is not a plain name, 404 listing what exists. */
class NameCheckTest {
    private final FakeEngine engine = new FakeEngine(new FakeEngine.Config().models(8, 512, "embedded", "other"));
    private final List<String> loraFiles = List.of("film", "styles/ink", "xl-detail");
    private final AdmissionConfig config = new AdmissionConfig();
    private final Validation v;
    private static final long NOW = 1_000_000L;

    NameCheckTest() {
        config.names = NameCheck.Names.of(() -> List.of("embedded", "other"), Set.of("embedded", "other")::contains,
                () -> loraFiles, loraFiles::contains, n -> n.equals("styles/ink") ? "sd1/sd2" : n.equals("film") ? "unknown" : "sdxl");
        v = new Validation(config, engine::describe, new LibrarySamplers(), () -> 7L);
    }

    private static GenerationRequest req(String prompt, List<LoraWeight> loras) {
        return new GenerationRequest(prompt, null, null, loras, null, null, null, null, null, null, null, null, null,
                null, null, null, null, null);
    }

    private ServeException refused(Validation val, GenerationRequest r, ServeException.Code code, String field, String... fragments) {
        ServeException e = assertThrows(ServeException.class, () -> val.resolve(r, NOW));
        assertEquals(code, e.code(), e.getMessage());
        assertEquals(field, e.field(), e.getMessage());
        for (String f : fragments) {
            assertTrue(e.getMessage().contains(f), "'" + e.getMessage() + "' should mention " + f);
        }
        return e;
    }

    @Test
    void namesThatAreNotPlainAreInvalidNamingTheField() {
        for (String bad : List.of("../../secret", "/etc/passwd", "a\\b", "C:x", "a//b", "./film", "x\u0007y", "f".repeat(300))) {
            refused(v, req("a cat", List.of(new LoraWeight("film", 1), new LoraWeight(bad, 0.5))),
                    ServeException.Code.INVALID_ARGUMENT, "loras[1].name", "LoRA");
            refused(v, req("a cat <lora:" + bad + ":0.5>", List.of()), ServeException.Code.INVALID_ARGUMENT, "prompt", "<lora:");
            refused(v, req("a cat", List.of()).withModel(bad), ServeException.Code.INVALID_ARGUMENT, "model", "model name");
        }
        // checkpoints sit at the top of the models directory; LoRAs may sit in subfolders of loras/
        refused(v, req("a cat", List.of()).withModel("sub/model"), ServeException.Code.INVALID_ARGUMENT, "model", "'/'");
        assertEquals(List.of(new LoraWeight("styles/ink", 0.5)), v.resolve(req("<lora:styles/ink:0.5> a cat", List.of()), NOW).loras());
    }

    @Test
    void unknownNamesAreNotFoundListingWhatExists() {
        refused(v, req("a cat", List.of(new LoraWeight("film", 1), new LoraWeight("no-such-lora", 0.8))),
                ServeException.Code.NOT_FOUND, "loras[1].name", "no-such-lora", "film, styles/ink, xl-detail");
        refused(v, req("a cat <lora:no-such-lora:0.8>", List.of()), ServeException.Code.NOT_FOUND, "prompt",
                "no-such-lora", "film, styles/ink");
        refused(v, req("a cat", List.of()).withModel("sdxl-base"), ServeException.Code.NOT_FOUND, "model",
                "sdxl-base", "embedded, other");
    }

    @Test
    void aLoraForAnotherArchitectureIsRefusedFromItsHeader() {
        // the fake engine's models are "fake-sd1": an SDXL LoRA does not fit; an SD 1.x one and an unknown one do
        refused(v, req("a cat <lora:xl-detail:1>", List.of()), ServeException.Code.INVALID_ARGUMENT, "prompt",
                "xl-detail", "SDXL", "embedded");
        refused(v, req("a cat", List.of(new LoraWeight("xl-detail", 1))), ServeException.Code.INVALID_ARGUMENT,
                "loras[0].name", "SDXL");
        assertEquals(2, v.resolve(req("a <lora:styles/ink:1> <lora:film:1>", List.of()), NOW).loras().size());
    }

    @Test
    void everyOtherFieldIsCheckedBeforeTheLorasExistence() {
        // an unknown LoRA and a bad step count: the 400 for the field comes first (no lookup for a doomed request)
        refused(v, req("a <lora:nope:1>", List.of()).withSteps(0), ServeException.Code.INVALID_ARGUMENT, "steps");
        refused(v, req("a <lora:nope:11>", List.of()), ServeException.Code.INVALID_ARGUMENT, "prompt", "weight");
        refused(v, req("a", List.of(new LoraWeight("nope", Double.NaN))), ServeException.Code.INVALID_ARGUMENT, "loras[0].weight");
        StringBuilder nine = new StringBuilder("a");
        for (int i = 0; i < 9; i++) {
            nine.append(" <lora:l").append(i).append(":1>");
        }
        refused(v, req(nine.toString(), List.of()), ServeException.Code.INVALID_ARGUMENT, "prompt", "at most 8");
        refused(v, req("a", Collections.nCopies(9, new LoraWeight("film", 1))), ServeException.Code.INVALID_ARGUMENT, "loras", "at most 8");
        // the same LoRA listed and tagged: weights add up, and the sum is checked
        refused(v, req("a <lora:film:6>", List.of(new LoraWeight("film", 6))), ServeException.Code.INVALID_ARGUMENT,
                "prompt", "summed weight");
    }

    @Test
    void tagsJoinTheListedLorasAndThePromptStaysAsWritten() {
        ResolvedRequest r = v.resolve(req("a cat, <lora:film:0.25> on a mat", List.of(new LoraWeight(" film ", 0.5),
                new LoraWeight("styles/ink", 1))), NOW);
        assertEquals("a cat, <lora:film:0.25> on a mat", r.prompt(), "as written: the engine drops the tag");
        assertEquals(List.of(new LoraWeight("film", 0.75), new LoraWeight("styles/ink", 1)), r.loras());
    }

    @Test
    void withoutAListModelsAreCheckedByTheEngineAndStillNameTheField() {
        AdmissionConfig plain = new AdmissionConfig(); // no names: e.g. the scheduler's own tests
        Validation bare = new Validation(plain, engine::describe, new LibrarySamplers(), () -> 7L);
        refused(bare, req("a cat", List.of()).withModel("sdxl-base"), ServeException.Code.NOT_FOUND, "model",
                "sdxl-base", "embedded");
        refused(bare, req("a cat <lora:../x:1>", List.of()), ServeException.Code.INVALID_ARGUMENT, "prompt");
        assertEquals(1, bare.resolve(req("a cat <lora:anything:1>", List.of()), NOW).loras().size(),
                "existence is not checked without a list");
    }
}
