package dev.sdserve.demo;

import dev.sdserve.app.Assembly;
import dev.sdserve.job.GenerationRequest;
import dev.sdserve.model.DemoModel;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import javax.imageio.ImageIO;
import java.awt.image.BufferedImage;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

import static dev.sdserve.demo.Pictures.*;
import static org.junit.jupiter.api.Assertions.*;

/**
 * The embedded default draws what its prompt says, judged by colour on the real engine through the scheduler (all
 * requests submitted at once, so their 20 DPM++ 2M steps at guidance 5 share UNet batches): 24 fixed pairs "a big
 * C1 circle in the center, C2 background" and 8 placements. Set {@code SDSERVE_DEMO_OUT=DIR} to keep the PNGs.
 */
class DemoPicturesTest {
    /** 24 fixed (shape colour, background colour) pairs: every colour twice as each, some neighbours among them. */
    static final List<String[]> PAIRS = new ArrayList<>();
    static final String[][] PLACES = {
            {"on the left", "a yellow square on the left, black background"},
            {"on the left", "a big blue circle on the left, white background"},
            {"on the right", "a red triangle on the right, white background"},
            {"on the right", "a big green circle on the right, black background"},
            {"at the top", "a white diamond at the top, blue background"},
            {"at the top", "a big orange circle at the top, purple background"},
            {"at the bottom", "a pink square at the bottom, green background"},
            {"at the bottom", "a big cyan circle at the bottom, brown background"},
    };

    static {
        List<String> c = DemoModel.COLOURS;
        for (int i = 0; i < 24; i++) {
            int a = i % 12;
            int b = (a + 1 + (i * 7) % 11) % 12; // an offset of 1..11: never the same colour
            PAIRS.add(new String[]{c.get(a), c.get(b)});
        }
    }

    @TempDir
    static Path tmp;
    static List<BufferedImage> colourImages;
    static List<BufferedImage> placeImages;
    static double seconds;

    @BeforeAll
    static void draw() throws Exception {
        Assembly.Settings s = new Assembly.Settings();
        s.modelsDir = Files.createDirectories(tmp.resolve("models"));
        s.rescanSeconds = 0;
        List<GenerationRequest> reqs = new ArrayList<>();
        for (int i = 0; i < PAIRS.size(); i++) {
            reqs.add(request("a big " + PAIRS.get(i)[0] + " circle in the center, " + PAIRS.get(i)[1] + " background", 100 + i));
        }
        for (int i = 0; i < PLACES.length; i++) {
            reqs.add(request(PLACES[i][1], 200 + i));
        }
        try (Assembly asm = Assembly.create(s)) {
            long t0 = System.nanoTime();
            List<BufferedImage> all = generate(asm.service(), reqs);
            seconds = (System.nanoTime() - t0) / 1e9;
            colourImages = all.subList(0, PAIRS.size());
            placeImages = all.subList(PAIRS.size(), all.size());
        }
        System.out.printf(Locale.ROOT, "demo pictures: %d images of 128×128, 20 steps dpmpp_2m, guidance 5, in %.1f s (load %s)%n",
                reqs.size(), seconds, loadAverage());
        String out = System.getProperty("sdserve.demo.out", System.getenv("SDSERVE_DEMO_OUT"));
        if (out != null) {
            Path d = Files.createDirectories(Path.of(out));
            for (int i = 0; i < reqs.size(); i++) {
                ImageIO.write(i < PAIRS.size() ? colourImages.get(i) : placeImages.get(i - PAIRS.size()), "png",
                        d.resolve(String.format("demo-%02d.png", i)).toFile());
            }
        }
    }

    static String loadAverage() {
        try {
            return Files.readString(Path.of("/proc/loadavg")).split(" ")[0];
        } catch (Exception e) {
            return "?";
        }
    }

    @AfterAll
    static void release() {
        colourImages = null;
        placeImages = null;
    }

    @Test
    void aBigC1CircleInTheCenterOnC2() {
        int loose = 0, strict = 0;
        StringBuilder table = new StringBuilder("pair (circle / background): centre, corners → nearest of 12; loose, strict\n");
        for (int i = 0; i < PAIRS.size(); i++) {
            BufferedImage img = colourImages.get(i);
            assertEquals(128, img.getWidth(), "the model's recommended size");
            int[] c1 = PALETTE.get(PAIRS.get(i)[0]);
            int[] c2 = PALETTE.get(PAIRS.get(i)[1]);
            double[] centre = mean(img, 56, 56, 16);
            double[][] corners = {mean(img, 4, 4, 12), mean(img, 112, 4, 12), mean(img, 4, 112, 12), mean(img, 112, 112, 12)};
            boolean ok = dist(centre, c1) < dist(centre, c2);
            boolean okStrict = nearest(centre).equals(PAIRS.get(i)[0]);
            StringBuilder cs = new StringBuilder();
            for (double[] k : corners) {
                ok &= dist(k, c2) < dist(k, c1);
                okStrict &= nearest(k).equals(PAIRS.get(i)[1]);
                cs.append(' ').append(hex(k)).append('/').append(nearest(k));
            }
            loose += ok ? 1 : 0;
            strict += okStrict ? 1 : 0;
            table.append(String.format(Locale.ROOT, "%2d %-6s / %-6s: %s/%s,%s; %s, %s%n", i, PAIRS.get(i)[0],
                    PAIRS.get(i)[1], hex(centre), nearest(centre), cs, ok ? "yes" : "NO", okStrict ? "yes" : "no"));
        }
        table.append(String.format(Locale.ROOT, "loose (centre nearer C1 than C2, each corner nearer C2 than C1): %d/24; "
                + "strict (centre and corners nearest to the named colours among 12): %d/24%n", loose, strict));
        System.out.print(table);
        assertTrue(loose >= 20, "at least 20 of 24 pairs:\n" + table);
    }

    @Test
    void shapesGoWhereThePromptPutsThem() {
        StringBuilder table = new StringBuilder("placement: share of shape-coloured pixels in the named half\n");
        int passed = 0;
        for (int i = 0; i < PLACES.length; i++) {
            String p = PLACES[i][1];
            String[] words = p.split("[ ,]+");
            String shapeColour = words[1].equals("big") || words[1].equals("small") ? words[2] : words[1];
            String bg = words[words.length - 2];
            int[] c1 = PALETTE.get(shapeColour), c2 = PALETTE.get(bg);
            BufferedImage img = placeImages.get(i);
            long in = 0, all = 0;
            for (int y = 0; y < img.getHeight(); y++) {
                for (int x = 0; x < img.getWidth(); x++) {
                    int[] c = rgb(img.getRGB(x, y));
                    if (dist(c, c1) < dist(c, c2)) {
                        all++;
                        boolean half = switch (PLACES[i][0]) {
                            case "on the left" -> x < 64;
                            case "on the right" -> x >= 64;
                            case "at the top" -> y < 64;
                            default -> y >= 64;
                        };
                        in += half ? 1 : 0;
                    }
                }
            }
            double share = all == 0 ? 0 : (double) in / all;
            boolean ok = all >= 100 && share >= 0.75;
            passed += ok ? 1 : 0;
            table.append(String.format(Locale.ROOT, "%-50s %5d px, %.0f%% %s%n", p, all, 100 * share, ok ? "" : "MISS"));
        }
        System.out.print(table);
        assertEquals(PLACES.length, passed, table.toString());
    }
}
