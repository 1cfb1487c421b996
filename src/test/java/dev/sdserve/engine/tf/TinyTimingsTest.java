package dev.sdserve.engine.tf;

import dev.sdserve.model.GoldenSet;

import dev.sdserve.testutil.Shared;
import org.junit.jupiter.api.Test;

import java.nio.file.Path;
import java.util.List;

/** Prints per-call timings on the tiny model (manual: -Dsdserve.timings=true; informational). */
@org.junit.jupiter.api.condition.EnabledIfSystemProperty(named = "sdserve.timings", matches = "true")
class TinyTimingsTest {
    @Test
    void timings() throws Exception {
        Path dir = Shared.golden("sd15-tiny");
        try (GoldenSet g = GoldenSet.open(dir)) {
            long t0 = System.nanoTime();
            try (TfModel m = TfModel.load("tiny", dir.resolve("tiny-sd15-fp16.safetensors"), g.config())) {
                System.out.printf("load fp16: %.1f ms, %s%n", (System.nanoTime() - t0) / 1e6, m.weights());
                float[] x = g.row("unet.x", 0), c = g.row("unet.ctx", 0);
                time("unet b1 16x16", 30, () -> m.unet(List.of(x), new float[]{999}, List.of(c), 16, 16));
                time("unet b2 16x16", 30, () -> m.unet(List.of(x, x), new float[]{999, 10}, List.of(c, c), 16, 16));
                time("unet b8 16x16", 10, () -> m.unet(List.of(x, x, x, x, x, x, x, x), new float[8],
                        List.of(c, c, c, c, c, c, c, c), 16, 16));
                int[][] ids = new int[2][77];
                time("te b2", 30, () -> m.encodeTokens(ids, 1));
                float[] z = g.row("vae.z", 0);
                time("vae decode 128x128", 10, () -> m.decodeImage(List.of(z), 16, 16));
                float[] img = g.row("vae.image", 0);
                time("vae encode 128x128", 10, () -> m.encodeImages(List.of(img), 128, 128));
            }
        }
    }

    static void time(String name, int n, Runnable r) {
        long b = System.nanoTime();
        r.run();
        long first = System.nanoTime() - b;
        r.run();
        long t = System.nanoTime();
        for (int i = 0; i < n; i++) {
            r.run();
        }
        System.out.printf("%-22s first %.1f ms, then %.2f ms/call%n", name, first / 1e6, (System.nanoTime() - t) / 1e6 / n);
    }
}
