package dev.sdserve.web;

import com.fasterxml.jackson.databind.JsonNode;
import io.quarkus.test.common.http.TestHTTPResource;
import io.quarkus.test.junit.QuarkusTest;
import io.quarkus.test.junit.QuarkusTestProfile;
import io.quarkus.test.junit.TestProfile;
import org.junit.jupiter.api.Test;

import java.net.URL;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

/**
 * The page with auth on (the prod default): without a key it says so and points at the key field; with the key typed
 * in it loads the catalog, streams the previews (fetch + header, not EventSource) and shows the image. The key is
 * kept in localStorage and never appears in a URL the page requested. Leaves target/web-page-auth.png.
 */
@QuarkusTest
@TestProfile(WebPageAuthTest.AuthOn.class)
class WebPageAuthTest {
    static final String KEY = "page-key-0123";

    public static class AuthOn implements QuarkusTestProfile {
        @Override
        public Map<String, String> getConfigOverrides() {
            return Map.of("sdserve.auth.enabled", "true", "sdserve.auth.keys", KEY + ":page");
        }
    }

    @TestHTTPResource("/")
    URL root;

    @Test
    void theKeyFieldUnlocksThePage() throws Exception {
        try (HeadlessChromium c = HeadlessChromium.start(1280, 1000)) {
            c.open(root.toString());
            assertTrue(c.waitFor("return !document.getElementById('form-error').hidden", 15_000).asBoolean(),
                    "the page says it needs a key");
            JsonNode before = c.js("return {error: document.getElementById('form-error').textContent,"
                    + " keyMarked: document.getElementById('api-key').classList.contains('invalid')}");
            assertTrue(before.get("error").asText().contains("API key"), before.toString());
            assertTrue(before.get("keyMarked").asBoolean(), before.toString());

            c.type("#api-key", KEY);
            c.js("document.getElementById('api-key').dispatchEvent(new Event('change')); return true;");
            assertTrue(c.waitFor("return document.querySelectorAll('#sampler option').length > 1", 15_000).asBoolean(),
                    "samplers load once the key is set");
            c.type("#prompt", "a red circle");
            c.js("const s = document.getElementById('steps'); s.value = 40; s.dispatchEvent(new Event('input'));"
                    + "document.getElementById('width').value = 64; document.getElementById('height').value = 64;"
                    + "document.getElementById('seed').value = 7; return true;");
            c.click("#generate");
            JsonNode done = c.waitFor("return window.sdServe.completed >= 1 || "
                    + "document.getElementById('status').classList.contains('bad')", 45_000);
            JsonNode s = c.js("return {frames: window.sdServe.totalFrames, completed: window.sdServe.completed,"
                    + " status: document.getElementById('status').textContent,"
                    + " w: document.getElementById('result').naturalWidth,"
                    + " stored: localStorage.getItem('sdserve.apiKey'),"
                    + " urls: performance.getEntriesByType('resource').map(e => e.name)}");
            assertTrue(done.asBoolean(), "job finished: " + s);
            assertEquals("Done", s.get("status").asText(), s.toString());
            assertTrue(s.get("frames").asInt() >= 2, "live previews through the fetch-read event stream: " + s);
            assertEquals(64, s.get("w").asInt(), s.toString());
            assertEquals(KEY, s.get("stored").asText(), "kept in this browser's storage");
            assertTrue(s.get("urls").toString().contains("/events"), "the event stream was requested: " + s);
            assertFalse(s.get("urls").toString().contains(KEY), "the key is in no URL: " + s.get("urls"));
            Path out = Path.of("target", "web-page-auth.png");
            Files.createDirectories(out.getParent());
            Files.write(out, c.screenshot());
        }
    }
}
