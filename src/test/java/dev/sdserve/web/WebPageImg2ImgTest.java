package dev.sdserve.web;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.quarkus.test.common.http.TestHTTPResource;
import io.quarkus.test.junit.QuarkusTest;
import org.junit.jupiter.api.Test;

import javax.imageio.ImageIO;
import java.awt.image.BufferedImage;
import java.io.ByteArrayOutputStream;
import java.net.URL;
import java.util.Base64;

import static org.junit.jupiter.api.Assertions.*;

/**
 * The web page's img2img / inpainting form against the server in Chromium (fake engine): a file chosen in the
 * upload input (through its change handler), a stroke painted on the mask with pointer events, Generate; the request
 * carries the image, strength and a mask PNG of the image's size, and the result comes back at the image's size.
 */
@QuarkusTest
class WebPageImg2ImgTest {
    @TestHTTPResource("/")
    URL root;

    @Test
    void uploadPaintAndGenerate() throws Exception {
        BufferedImage img = new BufferedImage(72, 64, BufferedImage.TYPE_INT_RGB);
        for (int y = 0; y < 64; y++) {
            for (int x = 0; x < 72; x++) {
                img.setRGB(x, y, 0x2040c0 + x);
            }
        }
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ImageIO.write(img, "png", out);
        String b64 = Base64.getEncoder().encodeToString(out.toByteArray());
        try (HeadlessChromium c = HeadlessChromium.start(1280, 1400)) {
            c.open(root.toString());
            assertTrue(c.waitFor("return document.querySelectorAll('#sampler option').length > 1", 15_000).asBoolean());
            c.type("#prompt", "a red circle");
            c.js("window.__bodies = []; const f0 = window.fetch;"
                    + "window.fetch = (u, o) => { if (o && o.method === 'POST' && o.body) window.__bodies.push(o.body); return f0(u, o); };"
                    + "const s = document.getElementById('steps'); s.value = 8; s.dispatchEvent(new Event('input'));"
                    + "const st = document.getElementById('strength'); st.value = 0.5; st.dispatchEvent(new Event('input'));"
                    + "const bytes = Uint8Array.from(atob(arguments[0]), ch => ch.charCodeAt(0));"
                    + "const dt = new DataTransfer(); dt.items.add(new File([bytes], 'init.png', {type: 'image/png'}));"
                    + "const input = document.getElementById('init-file'); input.files = dt.files;"
                    + "input.dispatchEvent(new Event('change')); return true;", b64);
            assertTrue(c.waitFor("return !document.getElementById('mask-editor').hidden", 10_000).asBoolean(),
                    "the mask editor opens with the uploaded image");
            c.js("const m = document.getElementById('mask-canvas'); m.scrollIntoView(); const r = m.getBoundingClientRect();"
                    + "const ev = (t, fx, fy) => m.dispatchEvent(new PointerEvent(t, {clientX: r.left + fx * r.width,"
                    + " clientY: r.top + fy * r.height, pointerId: 1, bubbles: true}));"
                    + "ev('pointerdown', 0.3, 0.5); ev('pointermove', 0.5, 0.5); ev('pointermove', 0.7, 0.5); ev('pointerup', 0.7, 0.5);"
                    + "return true;");
            c.click("#generate");
            JsonNode done = c.waitFor("return window.sdServe.completed >= 1 || "
                    + "document.getElementById('status').classList.contains('bad')", 45_000);
            JsonNode s = c.js("return {completed: window.sdServe.completed,"
                    + " status: document.getElementById('status').textContent,"
                    + " w: document.getElementById('result').naturalWidth, h: document.getElementById('result').naturalHeight,"
                    + " body: window.__bodies.find(b => String(b).includes('init_image')) || ''}");
            assertTrue(done.asBoolean(), "job finished: " + s);
            assertEquals("Done", s.get("status").asText(), s.toString());
            assertEquals(72, s.get("w").asInt(), "size from the image: " + s);
            assertEquals(64, s.get("h").asInt(), s.toString());
            JsonNode body = new ObjectMapper().readTree(s.get("body").asText());
            assertEquals(b64, body.get("init_image").asText(), "the file's bytes as sent");
            assertEquals(0.5, body.get("strength").asDouble());
            BufferedImage mask = ImageIO.read(new java.io.ByteArrayInputStream(
                    Base64.getDecoder().decode(body.get("mask_image").asText())));
            assertEquals(72, mask.getWidth());
            assertEquals(0xffffff, mask.getRGB(36, 32) & 0xffffff, "painted stroke is white in the mask");
            assertEquals(0, mask.getRGB(2, 2) & 0xffffff, "unpainted is black");
        }
    }
}
