package dev.sdserve.demo;

import dev.sdserve.job.GenerationRequest;
import dev.sdserve.job.GenerationService;
import dev.sdserve.job.Job;
import dev.sdserve.job.JobEvent;
import dev.sdserve.job.PreviewOptions;
import dev.sdserve.job.SloClass;

import javax.imageio.ImageIO;
import java.awt.image.BufferedImage;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Judging the demo model's pictures by colour: the grammar's 12 colour names as CSS colour keywords (the training
 * program's exact palette is not published; its colours were jittered by ±12), patch means, nearest colours.
 */
final class Pictures {
    /** The grammar's colours (shared/demo/README.md) as CSS keywords, sRGB. */
    static final Map<String, int[]> PALETTE = new LinkedHashMap<>();

    static {
        PALETTE.put("red", new int[]{255, 0, 0});
        PALETTE.put("green", new int[]{0, 128, 0});
        PALETTE.put("blue", new int[]{0, 0, 255});
        PALETTE.put("yellow", new int[]{255, 255, 0});
        PALETTE.put("orange", new int[]{255, 165, 0});
        PALETTE.put("purple", new int[]{128, 0, 128});
        PALETTE.put("pink", new int[]{255, 192, 203});
        PALETTE.put("white", new int[]{255, 255, 255});
        PALETTE.put("black", new int[]{0, 0, 0});
        PALETTE.put("cyan", new int[]{0, 255, 255});
        PALETTE.put("gray", new int[]{128, 128, 128});
        PALETTE.put("brown", new int[]{165, 42, 42});
    }

    private Pictures() {
    }

    /** A request for the demo model with its recommended settings (left unset), a fixed seed, no previews. */
    static GenerationRequest request(String prompt, long seed) {
        return GenerationRequest.ofPrompt(prompt).withSeed(seed).withPreview(PreviewOptions.OFF)
                .withDeadline(SloClass.BATCH, null, true);
    }

    /** Submits every request at once (the scheduler batches their steps) and returns the images in order. */
    static List<BufferedImage> generate(GenerationService service, List<GenerationRequest> requests) throws Exception {
        List<Job> jobs = new ArrayList<>();
        for (GenerationRequest r : requests) {
            jobs.add(service.submit(r, false));
        }
        List<BufferedImage> out = new ArrayList<>();
        for (Job j : jobs) {
            out.add(image(await(j)));
        }
        return out;
    }

    static JobEvent await(Job j) throws InterruptedException {
        long end = System.currentTimeMillis() + 600_000;
        while (j.terminalEvent() == null && System.currentTimeMillis() < end) {
            Thread.sleep(10);
        }
        assertNotNull(j.terminalEvent(), "job " + j.id() + " did not end");
        return j.terminalEvent();
    }

    static BufferedImage image(JobEvent e) throws IOException {
        assertInstanceOf(JobEvent.Completed.class, e, String.valueOf(e));
        return ImageIO.read(new ByteArrayInputStream(((JobEvent.Completed) e).images().get(0)));
    }

    static int[] rgb(int p) {
        return new int[]{(p >> 16) & 255, (p >> 8) & 255, p & 255};
    }

    /** Mean colour of the square patch [x0, x0+n) × [y0, y0+n). */
    static double[] mean(BufferedImage img, int x0, int y0, int n) {
        double[] s = new double[3];
        for (int y = y0; y < y0 + n; y++) {
            for (int x = x0; x < x0 + n; x++) {
                int[] c = rgb(img.getRGB(x, y));
                for (int k = 0; k < 3; k++) {
                    s[k] += c[k];
                }
            }
        }
        for (int k = 0; k < 3; k++) {
            s[k] /= (double) n * n;
        }
        return s;
    }

    static double dist(double[] a, int[] b) {
        double d = 0;
        for (int k = 0; k < 3; k++) {
            d += (a[k] - b[k]) * (a[k] - b[k]);
        }
        return Math.sqrt(d);
    }

    static double dist(int[] a, int[] b) {
        return dist(new double[]{a[0], a[1], a[2]}, b);
    }

    /** The palette colour nearest to {@code c}. */
    static String nearest(double[] c) {
        String best = null;
        double bd = Double.MAX_VALUE;
        for (var e : PALETTE.entrySet()) {
            double d = dist(c, e.getValue());
            if (d < bd) {
                bd = d;
                best = e.getKey();
            }
        }
        return best;
    }

    static String hex(double[] c) {
        return String.format("#%02x%02x%02x", Math.round(c[0]), Math.round(c[1]), Math.round(c[2]));
    }
}
