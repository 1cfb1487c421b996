package dev.sdserve.api.a1111;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.sdserve.auth.Auth;
import dev.sdserve.clock.Clock;
import dev.sdserve.engine.LatentShape;
import dev.sdserve.engine.tf.TfEngine;
import dev.sdserve.image.InfoText;
import dev.sdserve.image.PngText;
import dev.sdserve.job.PreviewOptions;
import dev.sdserve.model.Checkpoint;
import dev.sdserve.model.ClipTokenizer;
import dev.sdserve.model.ModelCatalog;
import dev.sdserve.model.ModelConfig;
import dev.sdserve.scheduler.SchedulerService;
import dev.sdserve.scheduler.ServiceConfig;
import dev.sdserve.testutil.Shared;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import javax.imageio.ImageIO;
import java.awt.image.BufferedImage;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Base64;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

/**
 * A1111's {@code /sdapi/v1/img2img} (transport-free: {@link A1111Service} over the scheduler) on the embedded demo
 * model (sd-shapes, 128²) with the real TensorFlow engine: an inpainting call keeps the unmasked area within the
 * VAE's own round-trip error, and "a big red circle" inpainted into a masked square of a blue picture is red there.
 * About 10 s.
 */
class Img2ImgDemoTest {
    static final int S = 128;
    static final int X0 = 32, X1 = 96; // the masked square [32, 96)²
    static TfEngine engine;
    static SchedulerService service;
    static A1111Service a1111;

    @BeforeAll
    static void start() throws Exception {
        Path file = Shared.dir().resolve("demo").resolve("sd-shapes-tiny.safetensors");
        ModelConfig cfg;
        try (Checkpoint c = Checkpoint.open(file)) {
            cfg = c.config();
        }
        engine = new TfEngine(Map.of("demo", file), p -> cfg, ClipTokenizer.get());
        engine.ensureLoaded("demo");
        ServiceConfig sc = new ServiceConfig();
        sc.admission.defaultModel = "demo";
        service = new SchedulerService(engine, sc, Clock.system());
        service.start();
        ModelCatalog catalog = ModelCatalog.of(List.of(new ModelCatalog.ModelEntry("demo", "sd1", 42, "fp32", "", true, true)),
                List.of());
        a1111 = new A1111Service(service, catalog, PreviewOptions.OFF, Path.of("models"));
    }

    @AfterAll
    static void stop() {
        if (service != null) {
            service.close();
        }
        if (engine != null) {
            engine.close();
        }
    }

    /** A blue picture with a lighter diagonal band (so the round trip has structure to lose). */
    static BufferedImage bluePicture() {
        BufferedImage img = new BufferedImage(S, S, BufferedImage.TYPE_INT_RGB);
        for (int y = 0; y < S; y++) {
            for (int x = 0; x < S; x++) {
                boolean band = Math.abs(x - y) < 12;
                img.setRGB(x, y, band ? 0x5078e6 : 0x1e3cc8);
            }
        }
        return img;
    }

    static BufferedImage squareMask() {
        BufferedImage m = new BufferedImage(S, S, BufferedImage.TYPE_INT_RGB);
        for (int y = X0; y < X1; y++) {
            for (int x = X0; x < X1; x++) {
                m.setRGB(x, y, 0xffffff);
            }
        }
        return m;
    }

    static String b64(BufferedImage img) throws Exception {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ImageIO.write(img, "png", out);
        return Base64.getEncoder().encodeToString(out.toByteArray());
    }

    static float[] rgb01(BufferedImage img) {
        float[] f = new float[S * S * 3];
        for (int y = 0; y < S; y++) {
            for (int x = 0; x < S; x++) {
                int p = img.getRGB(x, y);
                f[(y * S + x) * 3] = ((p >> 16) & 255) / 255f;
                f[(y * S + x) * 3 + 1] = ((p >> 8) & 255) / 255f;
                f[(y * S + x) * 3 + 2] = (p & 255) / 255f;
            }
        }
        return f;
    }

    /** Far from the square (beyond the blurred mask's reach): what A1111 leaves untouched. */
    static boolean unmasked(int x, int y) {
        int margin = 16;
        return x < X0 - margin || x >= X1 + margin || y < X0 - margin || y >= X1 + margin;
    }

    static double meanAbs(float[] a, float[] b, boolean outside) {
        double sum = 0;
        int n = 0;
        for (int y = 0; y < S; y++) {
            for (int x = 0; x < S; x++) {
                boolean in = x >= X0 + 8 && x < X1 - 8 && y >= X0 + 8 && y < X1 - 8;
                if (outside ? unmasked(x, y) : in) {
                    for (int c = 0; c < 3; c++) {
                        int i = (y * S + x) * 3 + c;
                        sum += Math.abs(a[i] - b[i]);
                        n++;
                    }
                }
            }
        }
        return sum / n;
    }

    JsonNode call(String prompt, double strength, long seed) throws Exception {
        ObjectNode body = A1111Service.JSON.createObjectNode();
        body.putArray("init_images").add(b64(bluePicture()));
        body.put("mask", b64(squareMask()));
        body.put("prompt", prompt);
        body.put("denoising_strength", strength);
        body.put("steps", 20);
        body.put("cfg_scale", 5);
        body.put("sampler_name", "DPM++ 2M");
        body.put("seed", seed);
        body.put("width", S);
        body.put("height", S);
        body.put("mask_blur", 4);
        body.put("inpainting_fill", 1);
        A1111Service.Txt2ImgResult r = a1111.img2img(Img2ImgRequest.from(body), null, Auth.Permit.NONE)
                .await().atMost(Duration.ofMinutes(3));
        ObjectNode out = A1111Service.JSON.createObjectNode();
        out.put("image", r.images().get(0));
        out.put("info", r.info());
        out.set("parameters", r.parameters());
        return out;
    }

    @Test
    void unmaskedAreaMatchesTheInitImageWithinTheVaeRoundTripError() throws Exception {
        float[] init = rgb01(bluePicture());
        LatentShape shape = new LatentShape(4, S / 8, S / 8);
        // the posterior mean, scaled as the sampler's latents are (what the server's image encoding gives)
        float[] latent = engine.encodeImage("demo", shape, List.of(init), java.util.Collections.singletonList(null))[0];
        float[] roundTrip = engine.decode("demo", shape, List.of(latent))[0];
        double vae = meanAbs(roundTrip, init, true);

        JsonNode res = call("a big red circle in the center, blue background", 0.75, 11);
        byte[] png = Base64.getDecoder().decode(res.get("image").asText());
        float[] out = rgb01(ImageIO.read(new ByteArrayInputStream(png)));
        double unmasked = meanAbs(out, init, true);
        System.out.printf("img2img with mask, demo model 128²: unmasked mean |Δ| %.5f, VAE round trip %.5f%n", unmasked, vae);
        assertTrue(vae > 0.002, "the VAE round trip loses something (" + vae + ")");
        assertTrue(unmasked <= vae, "unmasked " + unmasked + " within the VAE round trip " + vae);

        String infotext = PngText.get(png, InfoText.KEYWORD).orElseThrow();
        assertEquals("0.75", InfoText.parse(infotext).parameters().get("Denoising strength"), infotext);
        assertEquals("4", InfoText.parse(infotext).parameters().get("Mask blur"), infotext);
        JsonNode info = A1111Service.JSON.readTree(res.get("info").asText());
        assertEquals(0.75, info.get("denoising_strength").asDouble());
        assertTrue(res.get("parameters").get("init_images").isNull(), "init images echoed only with include_init_images");
    }

    @Test
    void inpaintingARedCircleIntoABlueSquareMakesItRed() throws Exception {
        JsonNode res = call("a big red circle in the center, blue background", 1.0, 3);
        byte[] png = Base64.getDecoder().decode(res.get("image").asText());
        Files.createDirectories(Path.of("target"));
        Files.write(Path.of("target", "img2img-demo-red-circle.png"), png);
        BufferedImage img = ImageIO.read(new ByteArrayInputStream(png));
        double[] in = new double[3], out = new double[3];
        int nIn = 0, nOut = 0;
        for (int y = 0; y < S; y++) {
            for (int x = 0; x < S; x++) {
                int p = img.getRGB(x, y);
                double[] acc;
                if (x >= 48 && x < 80 && y >= 48 && y < 80) { // the square's centre
                    acc = in;
                    nIn++;
                } else if (unmasked(x, y)) {
                    acc = out;
                    nOut++;
                } else {
                    continue;
                }
                acc[0] += (p >> 16) & 255;
                acc[1] += (p >> 8) & 255;
                acc[2] += p & 255;
            }
        }
        for (int c = 0; c < 3; c++) {
            in[c] /= nIn;
            out[c] /= nOut;
        }
        System.out.printf("inpaint 'a big red circle': centre of the square mean RGB (%.0f, %.0f, %.0f), outside (%.0f, %.0f, %.0f)%n",
                in[0], in[1], in[2], out[0], out[1], out[2]);
        assertTrue(in[0] > 150 && in[0] > in[1] + 60 && in[0] > in[2] + 60, "the centre is red: " + java.util.Arrays.toString(in));
        assertTrue(out[2] > out[0] + 60, "outside stays blue: " + java.util.Arrays.toString(out));
    }
}
