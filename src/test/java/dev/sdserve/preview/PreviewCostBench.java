package dev.sdserve.preview;

import dev.sdserve.app.Assembly;
import dev.sdserve.engine.DenoiseBatch;
import dev.sdserve.engine.DenoiseItem;
import dev.sdserve.engine.EncodeItem;
import dev.sdserve.engine.Engine;
import dev.sdserve.engine.LatentShape;
import dev.sdserve.engine.projection.LatentProjection;
import dev.sdserve.sampler.TorchGenerator;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledIfSystemProperty;

import java.util.List;
import java.util.Locale;

import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * What each preview kind costs on the demo model, beside a denoising step of one guided image (manual:
 * {@code -Dsdserve.preview.costbench=true}, under the heavy lock): a projected PNG and JPEG (256-pixel edge), the
 * latent format (float16), a decoder preview (the decoder's trunk and the fitted readout + PNG) and a full preview
 * (VAE decode + PNG). Median of 15 after 3 warm-ups, side by side.
 */
@EnabledIfSystemProperty(named = "sdserve.preview.costbench", matches = "true")
class PreviewCostBench {
    interface Op {
        Object run();
    }

    static double medianMillis(Op op) {
        for (int i = 0; i < 3; i++) {
            op.run();
        }
        double[] t = new double[15];
        for (int i = 0; i < t.length; i++) {
            long t0 = System.nanoTime();
            op.run();
            t[i] = (System.nanoTime() - t0) / 1e6;
        }
        java.util.Arrays.sort(t);
        return t[t.length / 2];
    }

    @Test
    void table() {
        try (Assembly asm = PreviewErrorTableTest.demoAssembly()) {
            Engine engine = asm.engine();
            String model = "sd-shapes-tiny";
            var entry = asm.previewProjections().ensure(model);
            LatentProjection proj = entry.projection();
            LatentProjection readout = entry.decoder();
            float[][] ctx = engine.encode(model, List.of(new EncodeItem(PreviewErrorTableTest.PROMPT), new EncodeItem("")));
            System.out.println("| image | denoise step (1 guided image) | projected PNG | projected JPEG | latent (float16) | decoder preview + PNG | full (VAE + PNG) |");
            System.out.println("|---|---|---|---|---|---|---|");
            for (int size : new int[]{128, 256, 512}) {
                LatentShape shape = new LatentShape(4, size / 8, size / 8);
                float[] x = new float[shape.size()];
                new TorchGenerator(3).fill(x);
                double step = medianMillis(() -> engine.denoise(new DenoiseBatch(model, shape,
                        List.of(new DenoiseItem(x, 500, ctx[0], ctx[1], 5.0, List.of())))));
                double png = medianMillis(() -> Previews.encode(x, shape, proj, size, size, 256, "png"));
                double jpg = medianMillis(() -> Previews.encode(x, shape, proj, size, size, 256, "jpeg"));
                double lat = medianMillis(() -> LatentProjection.float16(x));
                double dec = medianMillis(() -> Previews.encodeCells(engine.decoderPreview(model, shape, List.of(x),
                        readout)[0], shape, size, size, 256, "png"));
                double full = medianMillis(() -> Previews.encodeImage(engine.decode(model, shape, List.of(x))[0], size,
                        size, 256, "png"));
                System.out.printf(Locale.ROOT, "| %d² | %.1f ms | %.2f ms | %.2f ms | %.3f ms | %.1f ms | %.1f ms |%n",
                        size, step, png, jpg, lat, dec, full);
                assertTrue(step > 0 && full > 0);
            }
        }
    }
}
