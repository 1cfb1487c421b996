package dev.sdserve.model;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.sdserve.testutil.Shared;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;

import static org.junit.jupiter.api.Assertions.*;

class ClipTokenizerTest {
    @Test
    void everyGoldenTokenizerCaseGivesIdenticalIds() throws IOException {
        JsonNode g = new ObjectMapper().readTree(Shared.golden("sd15-tiny").resolve("golden.json").toFile());
        ClipTokenizer tok = ClipTokenizer.get();
        int cases = 0;
        for (JsonNode c : g.get("tokenizer")) {
            int[] expected = new int[c.get("ids").size()];
            for (int i = 0; i < expected.length; i++) {
                expected[i] = c.get("ids").get(i).asInt();
            }
            assertArrayEquals(expected, tok.tokenize(c.get("prompt").asText()), "prompt: " + c.get("prompt"));
            cases++;
        }
        assertEquals(9, cases);
    }

    /**
     * 30 harder prompts (scripts, emoji, entities, contractions in capitals, full-width, ligatures, odd whitespace)
     * against a Python port of CLIP's reference tokenizer using the {@code regex} module (clip_reference.py).
     */
    @Test
    void matchesThePythonReferenceOnHarderPrompts() throws IOException {
        JsonNode cases;
        try (InputStream in = getClass().getResourceAsStream("clip-reference-cases.json")) {
            cases = new ObjectMapper().readTree(in);
        }
        ClipTokenizer tok = ClipTokenizer.get();
        assertTrue(cases.size() >= 30);
        for (JsonNode c : cases) {
            int[] expected = new int[77];
            for (int i = 0; i < 77; i++) {
                expected[i] = c.get("ids").get(i).asInt();
            }
            assertArrayEquals(expected, tok.tokenize(c.get("prompt").asText()), "prompt: " + c.get("prompt"));
        }
    }

    @Test
    void vocabularyAndSpecialTokens() {
        ClipTokenizer tok = ClipTokenizer.get();
        assertEquals(49408, tok.vocabSize());
        assertEquals(49406, tok.startId());
        assertEquals(49407, tok.endId());
        // ids 0..255 are the byte symbols starting at "!", 256..511 the same with </w> (a lone word ends in </w>)
        assertArrayEquals(new int[]{256}, tok.encode("!"));
        assertArrayEquals(new int[]{49406, 49407}, tok.encode("<|startoftext|><|endoftext|>"));
        assertEquals("a photo of a cat ", tok.decode(tok.encode("A   photo of a   CAT")));
        assertEquals("l ' été à paris ", tok.decode(tok.encode("L’Été &agrave; Paris".replace("&agrave;", "à"))));
        // html entities are unescaped (twice), as html.unescape(html.unescape(text))
        assertArrayEquals(tok.encode("fish & chips"), tok.encode("fish &amp;amp; chips"));
        assertArrayEquals(tok.encode("it's"), tok.encode("it&#39;s"));
        // NFC: decomposed é equals composed é
        assertArrayEquals(tok.encode("caf\u00e9"), tok.encode("cafe\u0301"));
        // digits are single tokens
        assertEquals(4, tok.encode("2024").length);
    }

    @Test
    void vocabularyResourceAndLicenceAreShipped() throws IOException {
        for (String r : new String[]{ClipTokenizer.RESOURCE, "clip/LICENSE"}) {
            try (InputStream in = ClipTokenizer.class.getClassLoader().getResourceAsStream(r)) {
                assertNotNull(in, r);
                byte[] shipped = in.readAllBytes();
                byte[] ref = Files.readAllBytes(Shared.dir().resolve("clip").resolve(r.substring(5)));
                assertArrayEquals(ref, shipped, r);
            }
        }
    }
}
