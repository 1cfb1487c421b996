package dev.sdserve.web;

import com.fasterxml.jackson.databind.JsonNode;
import io.quarkus.test.common.http.TestHTTPResource;
import io.quarkus.test.junit.QuarkusTest;
import org.junit.jupiter.api.Test;

import javax.imageio.ImageIO;
import java.awt.image.BufferedImage;
import java.io.ByteArrayInputStream;
import java.net.URL;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.*;

/**
 * The page at / in headless Chromium: loads the catalog, submits a prompt, shows live preview frames from the SSE
 * stream, then the final image with its parameters, and remembers it in the history. Leaves a screenshot in
 * target/web-page.png.
 */
@QuarkusTest
class WebPageTest {
    @TestHTTPResource("/")
    URL root;

    @Test
    void generateWithLivePreviewsInChromium() throws Exception {
        try (HeadlessChromium c = HeadlessChromium.start(1280, 1400)) {
            c.open(root.toString());
            assertTrue(c.waitFor("return document.querySelectorAll('#sampler option').length > 1", 15_000).asBoolean(),
                    "samplers loaded into the form");
            assertEquals("sd-serve", c.js("return document.title").asText());
            c.type("#prompt", "a lighthouse at dusk, oil painting");
            c.type("#negative_prompt", "blurry");
            // 80 steps keep the job in flight long enough for the stream to show many frames on the fake engine.
            c.js("const s = document.getElementById('steps'); s.value = 80; s.dispatchEvent(new Event('input'));"
                    + "document.getElementById('width').value = 64; document.getElementById('height').value = 64;"
                    + "document.getElementById('seed').value = 1234;"
                    + "document.getElementById('sampler').value = 'euler_a'; return true;");
            c.click("#generate");
            JsonNode done = c.waitFor("return window.sdServe.completed >= 1 || "
                    + "document.getElementById('status').classList.contains('bad')", 45_000);
            JsonNode s = c.js("return {frames: window.sdServe.totalFrames, completed: window.sdServe.completed,"
                    + " status: document.getElementById('status').textContent,"
                    + " resultVisible: !document.getElementById('result').hidden,"
                    + " w: document.getElementById('result').naturalWidth, h: document.getElementById('result').naturalHeight,"
                    + " seed: document.getElementById('params').textContent,"
                    + " history: document.querySelectorAll('#history figure').length,"
                    + " stored: JSON.parse(localStorage.getItem('sdserve.history.v1') || '[]').length}");
            assertTrue(done.asBoolean(), "job finished: " + s);
            assertEquals(1, s.get("completed").asInt(), s.toString());
            assertTrue(s.get("frames").asInt() >= 2, "at least two live preview frames: " + s);
            assertTrue(s.get("resultVisible").asBoolean(), s.toString());
            assertEquals(64, s.get("w").asInt(), s.toString());
            assertEquals(64, s.get("h").asInt(), s.toString());
            assertEquals("Done", s.get("status").asText(), s.toString());
            assertTrue(s.get("seed").asText().contains("1234"), "parameters shown: " + s);
            assertTrue(s.get("history").asInt() >= 1 && s.get("stored").asInt() >= 1, "history kept: " + s);

            byte[] png = c.screenshot();
            Path out = Path.of("target", "web-page.png");
            Files.createDirectories(out.getParent());
            Files.write(out, png);
            BufferedImage shot = ImageIO.read(new ByteArrayInputStream(png));
            assertEquals(1280, shot.getWidth());
        }
    }
}
