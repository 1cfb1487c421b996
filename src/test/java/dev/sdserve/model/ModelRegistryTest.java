package dev.sdserve.model;

import dev.sdserve.job.ServeException;
import dev.sdserve.testutil.Shared;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.*;

class ModelRegistryTest {
    @TempDir
    Path tmp;

    private Path models() throws IOException {
        Path d = Files.createDirectories(tmp.resolve("models"));
        Files.createDirectories(d.resolve("loras/styles"));
        return d;
    }

    @Test
    void listsCheckpointsAndLorasWithArchitectureDtypeAndSize() throws IOException {
        Path d = models();
        Path ckpt = EmbeddedModel.path(tmp.resolve("cache"));
        Files.copy(ckpt, d.resolve("tiny.safetensors"));
        Path lora;
        try (GoldenSet g = GoldenSet.open(Shared.golden("sd15-tiny"))) {
            lora = g.lora().orElseThrow().file();
        }
        Files.copy(lora, d.resolve("loras/styles/golden.safetensors"));
        Files.writeString(d.resolve("notes.txt"), "ignored");
        try (ModelRegistry r = new ModelRegistry(d, Map.of("embedded", ckpt), "embedded", n -> n.equals("embedded"))) {
            var ms = r.models();
            assertEquals(2, ms.size());
            assertEquals("embedded", ms.get(0).name());
            assertTrue(ms.get(0).isDefault());
            assertTrue(ms.get(0).resident());
            var tiny = ms.get(1);
            assertEquals("tiny", tiny.name());
            assertEquals("sd1", tiny.architecture());
            assertEquals("F32", tiny.dtype());
            assertEquals(Files.size(ckpt), tiny.sizeBytes());
            assertEquals("", tiny.shortHash(), "hash not computed before asked (it reads the whole file)");
            var ls = r.loras();
            assertEquals(1, ls.size());
            assertEquals("styles/golden", ls.get(0).name());
            assertEquals(Files.size(lora), ls.get(0).sizeBytes());
            assertTrue(ls.get(0).rank() > 0);
            assertEquals(d.resolve("loras/styles/golden.safetensors"), r.resolveLora("styles/golden"));
            // hash, then listed
            String h = r.shortHash(r.resolveModel("tiny"));
            assertEquals(ModelRegistry.sha256(ckpt).substring(0, 10).toUpperCase(), h);
            assertEquals(h, r.models().get(1).shortHash());
        }
    }

    @Test
    void autoV2HashIsFirstTenHexOfSha256() throws IOException {
        Path d = models();
        Files.writeString(d.resolve("abc.safetensors"), "abc", StandardCharsets.US_ASCII);
        try (ModelRegistry r = new ModelRegistry(d, Map.of(), "x", null)) {
            // SHA-256("abc") = ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad (FIPS 180-2 example)
            assertEquals("BA7816BF8F", r.shortHash(d.resolve("abc.safetensors")));
            // not a safetensors file: listed with a clear error, not thrown
            assertTrue(r.models().get(0).architecture().startsWith("unreadable"), r.models().get(0).architecture());
            // the cache follows (size, mtime): a changed file gets a new hash
            Files.writeString(d.resolve("abc.safetensors"), "abcd", StandardCharsets.US_ASCII);
            Files.setLastModifiedTime(d.resolve("abc.safetensors"), java.nio.file.attribute.FileTime.fromMillis(1000));
            // SHA-256("abcd") = 88d4266fd4e6338d13b845fcf289579d209c897823b9217da3e161936f031589
            assertEquals("88D4266FD4", r.shortHash(d.resolve("abc.safetensors")));
        }
    }

    @Test
    void picksUpAddedAndRemovedFiles() throws IOException {
        Path d = models();
        try (ModelRegistry r = new ModelRegistry(d, Map.of(), "x", null)) {
            assertTrue(r.models().isEmpty());
            Files.writeString(d.resolve("a.safetensors"), "x");
            Files.writeString(d.resolve("loras/b.safetensors"), "x");
            assertThrows(ServeException.class, () -> r.resolveModel("b"));
            assertTrue(r.rescan());
            assertEquals(Set.of("a"), r.modelFiles().keySet());
            assertEquals(Set.of("b"), r.loraFiles().keySet());
            assertFalse(r.rescan());
            Files.delete(d.resolve("a.safetensors"));
            assertTrue(r.rescan());
            assertTrue(r.modelFiles().isEmpty());
            assertEquals(ServeException.Code.NOT_FOUND, assertThrows(ServeException.class, () -> r.resolveModel("a")).code());
        }
    }

    @Test
    void periodicRescanPicksUpNewFiles() throws Exception {
        Path d = models();
        try (ModelRegistry r = new ModelRegistry(d, Map.of(), "x", null)) {
            r.startPeriodicRescan(1);
            Files.writeString(d.resolve("late.safetensors"), "x");
            long end = System.currentTimeMillis() + 5000;
            while (!r.modelFiles().containsKey("late") && System.currentTimeMillis() < end) {
                Thread.sleep(50);
            }
            assertTrue(r.modelFiles().containsKey("late"));
        }
    }

    @Test
    void namesResolveOnlyInsideTheDirectory() throws IOException {
        Path d = models();
        Files.writeString(tmp.resolve("secret.safetensors"), "x");
        Files.writeString(d.resolve("ok.safetensors"), "x");
        Files.writeString(d.resolve("loras/l.safetensors"), "x");
        Files.createSymbolicLink(d.resolve("escape.safetensors"), tmp.resolve("secret.safetensors"));
        Files.createSymbolicLink(d.resolve("loras/escape.safetensors"), tmp.resolve("secret.safetensors"));
        Files.createSymbolicLink(d.resolve("inner.safetensors"), d.resolve("ok.safetensors"));
        try (ModelRegistry r = new ModelRegistry(d, Map.of(), "x", null)) {
            assertEquals(d.resolve("ok.safetensors"), r.resolveModel("ok"));
            assertEquals(d.resolve("inner.safetensors"), r.resolveModel("inner"), "a link inside the directory is fine");
            // traversal
            assertInvalid(() -> r.resolveModel("../secret"));
            assertInvalid(() -> r.resolveLora("../../secret"));
            assertInvalid(() -> r.resolveLora("a/../../ok"));
            // absolute paths
            assertInvalid(() -> r.resolveModel(tmp.resolve("secret").toString()));
            assertInvalid(() -> r.resolveLora("/etc/passwd"));
            // a checkpoint name is a top-level file only (not a LoRA through loras/)
            assertInvalid(() -> r.resolveModel("loras/l"));
            // symlink escape: not listed, and refused by name
            assertFalse(r.modelFiles().containsKey("escape"));
            assertFalse(r.loraFiles().containsKey("escape"));
            assertTrue(r.modelFiles().containsKey("inner"));
            assertInvalid(() -> r.resolveModel("escape"));
            assertInvalid(() -> r.resolveLora("escape"));
            assertInvalid(() -> r.resolveModel("a\\..\\b"));
            assertInvalid(() -> r.resolveModel("x\u0000y"));
        }
    }

    private static void assertInvalid(org.junit.jupiter.api.function.Executable e) {
        ServeException ex = assertThrows(ServeException.class, e);
        assertEquals(ServeException.Code.INVALID_ARGUMENT, ex.code(), ex.getMessage());
    }
}
