package dev.sdserve.app;

import dev.sdserve.engine.LoraWeight;
import dev.sdserve.engine.tf.TfEngine;
import dev.sdserve.job.GenerationRequest;
import dev.sdserve.job.Job;
import dev.sdserve.job.JobEvent;
import dev.sdserve.job.ServeException;
import dev.sdserve.model.DType;
import dev.sdserve.model.EmbeddedModel;
import dev.sdserve.model.GoldenSet;
import dev.sdserve.model.ModelCatalog;
import dev.sdserve.model.SafeTensorsWriter;
import dev.sdserve.testutil.Shared;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import javax.imageio.ImageIO;
import java.awt.image.BufferedImage;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/**
 * The assembled service (registry + TF engine + scheduler) with a models directory holding a second copy of the
 * embedded model, a corrupt checkpoint, the golden LoRA (same architecture as the embedded model) and an SDXL LoRA.
 */
class MultiModelServingTest {
    @TempDir
    static Path tmp;
    static Assembly asm;
    static TfEngine engine;

    @BeforeAll
    static void setUp() throws IOException {
        Path dir = Files.createDirectories(tmp.resolve("models/loras"));
        Path models = dir.getParent();
        Files.copy(EmbeddedModel.path(), models.resolve("second.safetensors"));
        // its architecture JSON too (head counts cannot be detected from shapes)
        Files.copy(EmbeddedModel.configPath(EmbeddedModel.path()), models.resolve("second.json"));
        Files.write(models.resolve("corrupt.safetensors"), new byte[]{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12});
        try (GoldenSet g = GoldenSet.open(Shared.golden("sd15-tiny"))) {
            Files.copy(g.lora().orElseThrow().file(), dir.resolve("tiny.safetensors"));
        }
        SafeTensorsWriter w = new SafeTensorsWriter();
        w.add("lora_te1_text_model_encoder_layers_0_self_attn_q_proj.lora_down.weight", DType.F32, new long[]{2, 32}, new float[64]);
        w.add("lora_te1_text_model_encoder_layers_0_self_attn_q_proj.lora_up.weight", DType.F32, new long[]{32, 2}, new float[64]);
        w.write(dir.resolve("xl.safetensors"));
        Assembly.Settings s = new Assembly.Settings();
        s.modelsDir = models;
        s.rescanSeconds = 0;
        // the tiny random model under its old name (fast; the golden LoRA fits it), beside the built-in sd-shapes
        s.extraModels.put("embedded", EmbeddedModel.path());
        s.defaultModel = "embedded";
        asm = Assembly.create(s);
        engine = (TfEngine) asm.engine();
    }

    @AfterAll
    static void tearDown() {
        asm.close();
    }

    static GenerationRequest req(String model, List<LoraWeight> loras) {
        return new GenerationRequest("a red cube", "blurry", model, loras, 64, 64, 3, "euler", 5.0, 42L, null, 1,
                null, null, null, null, null, null);
    }

    static JobEvent await(Job j) throws InterruptedException {
        long end = System.currentTimeMillis() + 60_000;
        while (j.terminalEvent() == null && System.currentTimeMillis() < end) {
            Thread.sleep(5);
        }
        assertNotNull(j.terminalEvent(), "job " + j.id() + " did not end");
        return j.terminalEvent();
    }

    static int[] pixels(JobEvent e) throws IOException {
        assertInstanceOf(JobEvent.Completed.class, e, String.valueOf(e));
        BufferedImage img = ImageIO.read(new ByteArrayInputStream(((JobEvent.Completed) e).images().get(0)));
        return img.getRGB(0, 0, img.getWidth(), img.getHeight(), null, 0, img.getWidth());
    }

    static int maxChannelDiff(int[] a, int[] b) {
        assertEquals(a.length, b.length);
        int m = 0;
        for (int i = 0; i < a.length; i++) {
            for (int sh = 0; sh < 24; sh += 8) {
                m = Math.max(m, Math.abs(((a[i] >> sh) & 255) - ((b[i] >> sh) & 255)));
            }
        }
        return m;
    }

    @Test
    void catalogListsRegistry() {
        ModelCatalog c = asm.catalog();
        assertEquals(List.of("sd-shapes", "embedded", "corrupt", "second"), c.models().stream().map(ModelCatalog.ModelEntry::name).toList());
        assertTrue(c.models().get(2).architecture().startsWith("unreadable"));
        // the built-in model's card comes from the JSON shipped beside it; a plain architecture JSON gives none
        ModelCatalog.ModelEntry demo = c.models().get(0);
        assertTrue(demo.description().startsWith("Demonstration model (128×128)"), demo.description());
        assertEquals(new dev.sdserve.model.ModelDefaults("dpmpp_2m", 20, 5.0, 128, 128, null), demo.defaults());
        assertEquals("sd1", demo.architecture());
        assertTrue(c.models().get(3).defaults().isEmpty());
        assertEquals(List.of("tiny", "xl"), c.loras().stream().map(ModelCatalog.LoraEntry::name).toList());
    }

    @Test
    void mixedLoraRequestsShareBatchesAndGetTheirOwnImages() throws Exception {
        List<List<LoraWeight>> sets = List.of(List.of(), List.of(new LoraWeight("tiny", 0.8)), List.of(new LoraWeight("tiny", 0.4)));
        long lowRankBefore = engine.loraCalls()[0];
        List<Job> together = new ArrayList<>();
        for (List<LoraWeight> l : sets) {
            together.add(asm.service().submit(req("embedded", l), false));
        }
        List<int[]> mixed = new ArrayList<>();
        for (Job j : together) {
            mixed.add(pixels(await(j)));
        }
        assertTrue(engine.loraCalls()[0] > lowRankBefore, "some UNet/text-encoder call mixed LoRA sets (unmerged path)");
        for (int i = 0; i < sets.size(); i++) {
            int[] alone = pixels(await(asm.service().submit(req("embedded", sets.get(i)), false)));
            // float outputs agree to 1e-4 (TfLoraTest); after 8-bit quantisation at most one level apart
            assertTrue(maxChannelDiff(alone, mixed.get(i)) <= 1, "request " + i + ": " + maxChannelDiff(alone, mixed.get(i)));
        }
        assertTrue(maxChannelDiff(mixed.get(0), mixed.get(1)) > 1, "the LoRA changes the image");
    }

    @Test
    void badLorasAreRefusedAtAdmissionWithClearErrors() throws Exception {
        Job good = asm.service().submit(req("embedded", List.of(new LoraWeight("tiny", 0.5))), false);
        // refused before a job exists (issue 19): nothing reaches the engine to fail there
        ServeException e1 = assertThrows(ServeException.class,
                () -> asm.service().submit(req("embedded", List.of(new LoraWeight("xl", 1.0))), false));
        assertEquals(ServeException.Code.INVALID_ARGUMENT, e1.code(), e1.getMessage());
        assertTrue(e1.getMessage().contains("'xl'") && e1.getMessage().contains("SDXL"), e1.getMessage());
        assertEquals("loras[0].name", e1.field());
        ServeException e2 = assertThrows(ServeException.class,
                () -> asm.service().submit(req("embedded", List.of(new LoraWeight("nope", 1.0))), false));
        assertEquals(ServeException.Code.NOT_FOUND, e2.code(), e2.getMessage());
        assertTrue(e2.getMessage().contains("nope") && e2.getMessage().contains("tiny"), e2.getMessage());
        ServeException e3 = assertThrows(ServeException.class,
                () -> asm.service().submit(req("embedded", List.of(new LoraWeight("../second", 1.0))), false));
        assertEquals(ServeException.Code.INVALID_ARGUMENT, e3.code());
        // the registry's models, the embedded one included, are what an unknown model's message lists
        ServeException e4 = assertThrows(ServeException.class, () -> asm.service().submit(req("nope", List.of()), false));
        assertEquals(ServeException.Code.NOT_FOUND, e4.code());
        assertEquals("model", e4.field());
        assertTrue(e4.getMessage().contains("embedded, corrupt, second"), e4.getMessage());
        assertInstanceOf(JobEvent.Completed.class, await(good));
    }

    @Test
    void twoModelsInterleavedAndCorruptModelFailsOnlyItsRequests() throws Exception {
        Job a = asm.service().submit(req("embedded", List.of()), false);
        Job b = asm.service().submit(req("second", List.of()), false);
        ServeException bad = null;
        try {
            Job c = asm.service().submit(req("corrupt", List.of()), false);
            JobEvent e = await(c);
            bad = ((JobEvent.Ended) e).error();
        } catch (ServeException ex) {
            bad = ex;
        }
        assertEquals(ServeException.Code.FAILED_PRECONDITION, bad.code(), bad.getMessage());
        assertTrue(bad.getMessage().contains("corrupt"), bad.getMessage());
        // same weights, same request: the same image from both models
        assertEquals(0, maxChannelDiff(pixels(await(a)), pixels(await(b))));
        assertTrue(engine.isResident("embedded") && engine.isResident("second"));
    }

    @Test
    void evictionUnderSmallBudget() throws Exception {
        try {
            pixels(await(asm.service().submit(req("embedded", List.of()), false)));
            long one = engine.residentBytes() / Math.max(1, engine.resident().size());
            engine.memoryBudgetBytes(one + one / 2);
            long ev = engine.evictions();
            engine.unload("second");
            pixels(await(asm.service().submit(req("second", List.of()), false)));
            assertEquals(List.of("second"), engine.resident());
            assertEquals(ev + 1, engine.evictions());
            pixels(await(asm.service().submit(req("embedded", List.of()), false)));
            assertEquals(List.of("embedded"), engine.resident());
            assertTrue(engine.residentBytes() <= one + one / 2);
        } finally {
            engine.memoryBudgetBytes(0);
        }
    }

    @Test
    void pinnedModelSurvivesEvictionUnderASmallBudgetAndLoadsRunOffTheSchedulerThread() throws Exception {
        try {
            pixels(await(asm.service().submit(req("embedded", List.of()), false)));
            long one = engine.residentBytes("embedded");
            assertTrue(one > 0);
            engine.memoryBudgetBytes(one + one / 2); // room for one model
            asm.models().pin("embedded", true);
            asm.models().unload("second");
            long ev = engine.evictions();
            Job b = asm.service().submit(req("second", List.of()), false);
            pixels(await(b));
            // the pinned model stayed; the newly loaded one is resident too (the budget yields to pins)
            assertTrue(engine.isResident("embedded") && engine.isResident("second"), engine.resident().toString());
            assertEquals(ev, engine.evictions());
            // unpinned, the next load evicts it
            asm.models().pin("embedded", false);
            assertFalse(asm.models().get("embedded").pinned());
            asm.models().unload("second");
            pixels(await(asm.service().submit(req("second", List.of()), false)));
            assertEquals(List.of("second"), engine.resident());
            assertEquals(ev + 1, engine.evictions());
            var st = asm.models().get("second");
            assertTrue(st.resident() && st.memoryBytes() == one && st.lastLoadMillis() != null, st.toString());
        } finally {
            engine.memoryBudgetBytes(0);
            asm.models().pin("embedded", false);
        }
    }
}
