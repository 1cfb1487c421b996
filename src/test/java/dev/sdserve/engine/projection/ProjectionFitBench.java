package dev.sdserve.engine.projection;

import dev.sdserve.app.Assembly;
import dev.sdserve.model.EmbeddedModel;
import dev.sdserve.testutil.Shared;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledIfSystemProperty;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Times the preview projection fit (manual: {@code -Dsdserve.preview.fitbench=true}, under the heavy lock): on the
 * demo model, the tiny golden models (SD 1.x, SD 2.x v-prediction, SDXL) and, when {@code bench} has written it, the full-size SD 1.5 random checkpoint.
 * Each model is fitted twice: the first includes building the UNet/VAE graphs for the fit's batch, the second not.
 */
@EnabledIfSystemProperty(named = "sdserve.preview.fitbench", matches = "true")
class ProjectionFitBench {
    @Test
    void table() {
        Map<String, Path> models = new LinkedHashMap<>();
        models.put("sd-shapes-tiny (demo)", Shared.dir().resolve("demo/sd-shapes-tiny.safetensors"));
        models.put("sd15-tiny (golden)", Shared.golden("sd15-tiny").resolve("tiny-sd15.safetensors"));
        models.put("sd2v-tiny (golden)", Shared.golden("sd2v-tiny").resolve("tiny-sd2v.safetensors"));
        models.put("sdxl-tiny (golden)", Shared.golden("sdxl-tiny").resolve("tiny-sdxl.safetensors"));
        Path full = EmbeddedModel.cacheDir().resolve("sd15-random-fp16.safetensors");
        if (Files.isRegularFile(full)) {
            models.put("SD 1.5 full size (random)", full);
        }
        System.out.println("| model | run | fit ms | UNet ms | VAE ms | latents | fit vs VAE /255 | SD 1.x vs VAE /255 | decoder readout vs VAE /255 |");
        System.out.println("|---|---|---|---|---|---|---|---|---|");
        for (var e : models.entrySet()) {
            Assembly.Settings s = new Assembly.Settings();
            s.modelsDir = Path.of("/nonexistent-models-dir");
            s.rescanSeconds = 0;
            s.extraModels.put("m", e.getValue());
            try (Assembly asm = Assembly.create(s)) {
                asm.engine().ensureLoaded("m");
                for (String run : new String[]{"first", "second"}) {
                    ProjectionFitter.Result r = ProjectionFitter.fit(asm.engine(), "m", ProjectionFitter.Settings.defaults());
                    System.out.printf(Locale.ROOT, "| %s | %s | %.0f | %.0f | %.0f | %d × %s | %.1f | %.1f | %.1f |%n", e.getKey(), run,
                            r.millis(), r.unetMillis(), r.decodeMillis(), r.latentsDecoded(), r.shape(), r.residualMean255(),
                            r.fallbackMean255(), r.decoderResidual255());
                    assertTrue(r.residualMean255() <= r.fallbackMean255() + 1e-9, "least squares beats the fallback on its own data");
                }
            }
        }
    }
}
