package dev.sdserve.cli;

import io.quarkus.test.junit.QuarkusTest;
import io.restassured.http.ContentType;
import org.eclipse.microprofile.config.ConfigProvider;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import javax.imageio.ImageIO;
import java.awt.image.BufferedImage;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static io.restassured.RestAssured.given;
import static org.junit.jupiter.api.Assertions.*;

/** The CLI against a running server over gRPC: generate --server, models, loras. */
@QuarkusTest
class RemoteCliTest {
    @TempDir
    Path tmp;

    private static String server() {
        return "localhost:" + ConfigProvider.getConfig().getOptionalValue("quarkus.grpc.server.test-port", Integer.class).orElse(9001);
    }

    private record Run(int code, String out, String err) {
    }

    private static Run generate(String... argv) throws Exception {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        List<String> args = new ArrayList<>(List.of(argv));
        int code = RemoteGenerate.run(Args.parse(args, RemoteGenerate.VALUED, RemoteGenerate.FLAGS),
                new PrintStream(out, true, StandardCharsets.UTF_8), new PrintStream(err, true, StandardCharsets.UTF_8));
        return new Run(code, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
    }

    private static Run command(CliCommand c, String... argv) throws Exception {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        int code = c.run(List.of(argv), new PrintStream(out, true, StandardCharsets.UTF_8));
        return new Run(code, out.toString(StandardCharsets.UTF_8), "");
    }

    @Test
    void generateOnTheServerWritesThePngAndPrintsSeedAndPath() throws Exception {
        Path file = tmp.resolve("fox.png");
        Run r = generate("--server", server(), "--prompt", "a red fox", "--steps", "6", "--seed", "11",
                "--width", "64", "--height", "64", "--sampler", "Euler a", "--out", file.toString());
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().contains("seed: 11"), r.out());
        assertTrue(r.out().contains("wrote: " + file), r.out());
        assertTrue(r.err().contains("6/6"), "progress bar drawn on stderr: " + r.err());
        assertTrue(r.err().contains("ETA"), r.err());
        BufferedImage mine = ImageIO.read(file.toFile());
        assertEquals(64, mine.getWidth());

        // The same request over REST: identical pixels (the CLI sent exactly these parameters).
        String id = given().contentType(ContentType.JSON).body(Map.of("prompt", "a red fox", "steps", 6, "seed", 11,
                "width", 64, "height", 64, "sampler", "euler_a")).when().post("/v1/generations")
                .then().statusCode(202).extract().path("id");
        byte[] ref = given().when().get("/v1/generations/" + id + "/image?wait=60").then().statusCode(200).extract().asByteArray();
        BufferedImage other = ImageIO.read(new ByteArrayInputStream(ref));
        for (int y = 0; y < 64; y++) {
            for (int x = 0; x < 64; x++) {
                assertEquals(other.getRGB(x, y), mine.getRGB(x, y), "pixel " + x + "," + y);
            }
        }
    }

    @Test
    void previewFileShowsThePictureFormingOnTheServer() throws Exception {
        Path file = tmp.resolve("out.png");
        Path preview = tmp.resolve("live.png");
        Run r = generate("--server", server(), "--prompt", "a preview file", "--steps", "4", "--seed", "5",
                "--width", "64", "--height", "64", "--out", file.toString(), "--preview", preview.toString());
        assertEquals(0, r.code(), r.err());
        BufferedImage p = ImageIO.read(preview.toFile());
        assertNotNull(p, "the last step's preview is a PNG");
        assertEquals(64, p.getWidth());
        try (var files = Files.list(tmp)) {
            assertEquals(0, files.filter(f -> f.getFileName().toString().endsWith(".tmp")).count(), "no temporary files left");
        }
    }

    @Test
    void severalImagesGetNumberedFiles() throws Exception {
        Path file = tmp.resolve("batch.png");
        Run r = generate("--server", server(), "a castle", "--steps", "2", "--seed", "100", "--images", "2",
                "--width", "64", "--height", "64", "--out", file.toString(), "--quiet");
        assertEquals(0, r.code(), r.err());
        assertTrue(Files.exists(tmp.resolve("batch-1.png")) && Files.exists(tmp.resolve("batch-2.png")), r.out());
        assertTrue(r.out().contains("seed: 100") && r.out().contains("seed: 101"), r.out());
        assertFalse(r.err().contains("ETA"), "--quiet draws no bar: " + r.err());
    }

    @Test
    void errorsAreOneClearLine() throws Exception {
        Run bad = generate("--server", server(), "--prompt", "x", "--width", "100", "--out", tmp.resolve("x.png").toString());
        assertEquals(1, bad.code());
        assertTrue(bad.err().contains("INVALID_ARGUMENT") && bad.err().contains("width"), bad.err());
        Run down = generate("--server", "localhost:1", "--prompt", "x", "--out", tmp.resolve("y.png").toString());
        assertEquals(1, down.code());
        assertTrue(down.err().contains("cannot reach") && down.err().contains("localhost:1"), down.err());
        assertThrows(IllegalArgumentException.class, () -> generate("--server", server(), "--prompt", "x", "--lora", ":0.5"));
        assertThrows(IllegalArgumentException.class, () -> generate("--server", "localhost:99999", "--prompt", "x"));
    }

    @Test
    void modelsAndLorasListWhatTheServerHas() throws Exception {
        Run m = command(new ListCommands.Models(), "--server", server());
        assertEquals(0, m.code());
        assertTrue(m.out().startsWith("NAME"), m.out());
        assertTrue(m.out().lines().anyMatch(l -> l.startsWith("embedded") && l.contains("default")), m.out());
        Run l = command(new ListCommands.Loras(), "--server", server());
        assertEquals(0, l.code());
        assertTrue(l.out().startsWith("NAME"), l.out());
        assertTrue(Commands.find("models").isPresent() && Commands.find("loras").isPresent());
    }

    @Test
    void loraArgumentParsing() {
        assertEquals("film", RemoteGenerate.lora("film:0.8").getName());
        assertEquals(0.8, RemoteGenerate.lora("film:0.8").getWeight());
        assertEquals("a:b", RemoteGenerate.lora("a:b").getName());
        assertEquals(1.0, RemoteGenerate.lora("a:b").getWeight());
        assertEquals("a:b", RemoteGenerate.lora("a:b:-0.5").getName());
        assertEquals("localhost:9000", GrpcTarget.normalize("localhost"));
        assertEquals("10.0.0.2:9100", GrpcTarget.normalize("http://10.0.0.2:9100/"));
    }
}
