package dev.sdserve.preview;

import dev.sdserve.app.Assembly;
import dev.sdserve.job.GenerationRequest;
import dev.sdserve.testutil.Shared;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledIfSystemProperty;

import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * Prints issue 14's figure on the demo model: per-step mean absolute difference between each step's preview and the
 * final image (0–255, 128²), and writes the previews of steps 1, 3, 5, 8, 12 and 20 to the directory given.
 * Manual: {@code -Dsdserve.preview.table=/tmp/dir} (about 40 s).
 */
@EnabledIfSystemProperty(named = "sdserve.preview.table", matches = ".+")
class PreviewErrorTableTest {
    static final String PROMPT = "a big orange triangle in the center, purple background";

    /** The demo model on the tf engine, in-process. */
    static Assembly demoAssembly() {
        Assembly.Settings s = new Assembly.Settings();
        s.engine = "tf";
        s.modelsDir = Path.of("/nonexistent-models-dir");
        s.extraModels.put("sd-shapes-tiny", Shared.dir().resolve("demo/sd-shapes-tiny.safetensors"));
        s.rescanSeconds = 0;
        s.projectionCacheDir = null; // fitted in memory: every run fits again
        return Assembly.create(s);
    }

    static GenerationRequest demoRequest() {
        return GenerationRequest.ofPrompt(PROMPT).withModel("sd-shapes-tiny").withSampler("dpmpp_2m").withSteps(20)
                .withGuidance(5.0).withSeed(1L);
    }

    @Test
    void table() throws Exception {
        Path dir = Path.of(System.getProperty("sdserve.preview.table"));
        try (Assembly asm = demoAssembly()) {
            // the previews as they are once the model's fit is ready (the fallback's meanwhile)
            System.out.println("projection: " + asm.previewProjections().ensure("sd-shapes-tiny"));
            PreviewErrorTable.Result r = PreviewErrorTable.measure(asm, demoRequest(), 128);
            r.print(System.out, "mean |preview − final|, 0–255, 128²");
            System.out.println("step indices received: " + r.indicesSeen());
            PreviewErrorTable.save(r, dir, "demo", 1, 3, 5, 8, 12, 20);
            assertEquals(20, r.rows().size(), "a preview for every step");
            PreviewErrorTable.Result full = PreviewErrorTable.measure(asm, demoRequest(), 128, 1);
            full.print(System.out, "full previews (VAE decode of x̂0; step 20: the projection)");
            PreviewErrorTable.save(full, dir, "demo-full", 1, 3, 5, 8, 12, 20);
        }
    }
}
