package dev.sdserve.engine.tf;

import dev.sdserve.model.GoldenSet;
import dev.sdserve.testutil.Shared;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;

import java.nio.file.Path;
import java.util.Map;

/**
 * Base of engine tests on the tiny golden SD 1.5 set: {@link #g} the set, {@link #engine} a TfEngine on its model as
 * "tiny", opened once per test class.
 */
abstract class TinyGoldenEngine {
    static GoldenSet g;
    static TfEngine engine;

    @BeforeAll
    static void openTinyGoldenEngine() throws Exception {
        Path dir = Shared.golden("sd15-tiny");
        g = GoldenSet.open(dir);
        // the tiny text encoder has 4 heads, which shapes cannot tell (no config JSON beside the file): golden.json's
        var cfg = g.config();
        engine = new TfEngine(Map.of("tiny", dir.resolve("tiny-sd15.safetensors")), p -> cfg);
    }

    @AfterAll
    static void closeTinyGoldenEngine() {
        engine.close();
        g.close();
    }
}
