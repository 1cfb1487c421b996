package dev.sdserve.preview;

import dev.sdserve.app.Assembly;
import dev.sdserve.job.GenerationRequest;
import dev.sdserve.job.Job;
import dev.sdserve.job.JobEvent;
import dev.sdserve.job.Mailbox;
import dev.sdserve.job.PreviewOptions;

import javax.imageio.ImageIO;
import java.awt.image.BufferedImage;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;

/**
 * The figure previews are judged by (issue 14): one generation with a preview after every step, and for each step
 * the mean absolute difference between that step's preview and the final image, both brought to the same size
 * (bilinear), over every pixel and the three channels, on the 0–255 scale. Works on the previews as the service
 * streams them (the {@code Step} events' images), so it measures whatever the service sends.
 */
public final class PreviewErrorTable {
    /** One step's preview and its distance from the final image. */
    public record Row(int index, int total, float[] preview, double meanAbs255) {
    }

    /** The run: the final image and a row per step that carried a preview (in index order). */
    public record Result(float[] finalImage, int size, List<Row> rows, List<Integer> indicesSeen) {
        public Row row(int index) {
            for (Row r : rows) {
                if (r.index == index) {
                    return r;
                }
            }
            throw new IllegalArgumentException("no preview for step " + index + "; steps with previews: "
                    + rows.stream().map(Row::index).toList());
        }

        public void print(PrintStream out, String title) {
            out.println("| step | " + title + " |");
            out.println("|---|---|");
            for (Row r : rows) {
                out.printf(Locale.ROOT, "| %d/%d | %.1f |%n", r.index, r.total, r.meanAbs255);
            }
        }
    }

    private PreviewErrorTable() {
    }

    /**
     * Runs {@code req} (its preview options are replaced: PNG, every step, {@code size} pixels) on the assembly and
     * measures every preview against the final image at {@code size}×{@code size}.
     */
    public static Result measure(Assembly asm, GenerationRequest req, int size) throws Exception {
        return measure(asm, req, size, 0);
    }

    /** As {@link #measure(Assembly, GenerationRequest, int)}, with a full preview (VAE decode) every {@code fullEvery} steps. */
    public static Result measure(Assembly asm, GenerationRequest req, int size, int fullEvery) throws Exception {
        GenerationRequest r = req.withPreview(new PreviewOptions(1, "png", size, PreviewOptions.DENOISED, fullEvery));
        Job job = asm.service().submit(r, false);
        Mailbox mb = job.watch();
        TreeMap<Integer, JobEvent.Step> steps = new TreeMap<>();
        List<Integer> seen = new ArrayList<>();
        while (true) {
            JobEvent e = mb.next().get(30, TimeUnit.MINUTES);
            if (e instanceof JobEvent.Step s) {
                seen.add(s.index());
                if (s.preview() != null) {
                    steps.put(s.index(), s);
                }
            } else if (e instanceof JobEvent.Completed c) {
                float[] fin = toSize(decode(c.images().get(0)), size);
                List<Row> rows = new ArrayList<>();
                for (JobEvent.Step s : steps.values()) {
                    float[] p = toSize(decode(s.preview()), size);
                    rows.add(new Row(s.index(), s.total(), p, meanAbs255(p, fin)));
                }
                return new Result(fin, size, rows, seen);
            } else if (e instanceof JobEvent.Ended end) {
                throw new IllegalStateException("generation ended " + end.state() + ": " + end.error());
            }
        }
    }

    /**
     * Writes the final image and the previews of the given steps as PNGs into {@code dir} (prefix-stepNN.png), and
     * all of them side by side, the final image last, as prefix-strip.png. Steps without a preview are left out.
     */
    public static void save(Result res, Path dir, String prefix, int... wanted) throws IOException {
        Files.createDirectories(dir);
        int[] stepIndices = java.util.Arrays.stream(wanted)
                .filter(i -> res.rows.stream().anyMatch(r -> r.index == i)).toArray();
        int n = res.size;
        Files.write(dir.resolve(prefix + "-final.png"), Png.encode(res.finalImage, n, n));
        float[] strip = new float[(stepIndices.length + 1) * n * n * 3];
        int stripW = (stepIndices.length + 1) * n;
        for (int k = 0; k <= stepIndices.length; k++) {
            float[] img = k < stepIndices.length ? res.row(stepIndices[k]).preview : res.finalImage;
            if (k < stepIndices.length) {
                Files.write(dir.resolve(String.format(Locale.ROOT, "%s-step%02d.png", prefix, stepIndices[k])), Png.encode(img, n, n));
            }
            for (int y = 0; y < n; y++) {
                System.arraycopy(img, y * n * 3, strip, (y * stripW + k * n) * 3, n * 3);
            }
        }
        Files.write(dir.resolve(prefix + "-strip.png"), Png.encode(strip, stripW, n));
    }

    /** Mean |a − b| over all values, on the 0–255 scale (both HWC in [0, 1]). */
    public static double meanAbs255(float[] a, float[] b) {
        if (a.length != b.length) {
            throw new IllegalArgumentException(a.length + " vs " + b.length + " values");
        }
        double s = 0;
        for (int i = 0; i < a.length; i++) {
            s += Math.abs(a[i] - b[i]);
        }
        return 255.0 * s / a.length;
    }

    /** A decoded image, HWC in [0, 1]. */
    private record Image(float[] rgb, int width, int height) {
    }

    private static Image decode(byte[] encoded) throws IOException {
        BufferedImage img = ImageIO.read(new ByteArrayInputStream(encoded));
        if (img == null) {
            throw new IOException("not an image (" + encoded.length + " bytes)");
        }
        int w = img.getWidth(), h = img.getHeight();
        float[] rgb = new float[w * h * 3];
        for (int y = 0; y < h; y++) {
            for (int x = 0; x < w; x++) {
                int p = img.getRGB(x, y);
                int i = (y * w + x) * 3;
                rgb[i] = (p >> 16 & 0xFF) / 255f;
                rgb[i + 1] = (p >> 8 & 0xFF) / 255f;
                rgb[i + 2] = (p & 0xFF) / 255f;
            }
        }
        return new Image(rgb, w, h);
    }

    private static float[] toSize(Image img, int size) {
        return Previews.resize(img.rgb, img.width, img.height, size, size);
    }
}
