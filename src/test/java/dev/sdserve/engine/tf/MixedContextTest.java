package dev.sdserve.engine.tf;

import dev.sdserve.engine.DenoiseBatch;
import dev.sdserve.engine.DenoiseItem;
import dev.sdserve.engine.EncodeItem;
import dev.sdserve.engine.LatentShape;
import dev.sdserve.model.GoldenSet;
import dev.sdserve.testutil.Shared;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Long prompts in shared UNet batches: samples with 77-, 154- and 231-token contexts give their solo results. */
class MixedContextTest {
    static GoldenSet g;
    static TfEngine engine;

    @BeforeAll
    static void open() throws Exception {
        Path dir = Shared.golden("sd15-tiny");
        g = GoldenSet.open(dir);
        var cfg = g.config();
        engine = new TfEngine(Map.of("tiny", dir.resolve("tiny-sd15.safetensors")), p -> cfg);
    }

    @AfterAll
    static void close() {
        engine.close();
        g.close();
    }

    static String words(int n) {
        String[] w = {"red", "house", "tree", "river", "stone", "cloud", "light", "dark"};
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < n; i++) {
            sb.append(w[i % w.length]).append(i % 7 == 6 ? ", " : " ");
        }
        return sb.toString().strip();
    }

    @ParameterizedTest
    @EnumSource(MixedContexts.Mode.class)
    void mixedLengthsInOneBatchEqualTheirSoloRuns(MixedContexts.Mode mode) {
        engine.mixedContexts(mode.name());
        float[][] te = engine.encode("tiny", List.of(new EncodeItem("a (red:1.2) house"), new EncodeItem(words(100)),
                new EncodeItem("a cat BREAK a dog BREAK a (bird:0.8)"), new EncodeItem("")));
        assertEquals(77 * 32, te[0].length);
        assertEquals(154 * 32, te[1].length);
        assertEquals(231 * 32, te[2].length);
        LatentShape shape = new LatentShape(4, 16, 16);
        SplittableRandom rnd = new SplittableRandom(7);
        List<DenoiseItem> items = new ArrayList<>();
        float[][] pairs = {te[0], te[3], te[1], te[3], te[3], te[1], te[2], te[0], te[1], null};
        for (int i = 0; i < pairs.length; i += 2) {
            float[] x = new float[shape.size()];
            for (int k = 0; k < x.length; k++) {
                x[k] = (float) rnd.nextGaussian();
            }
            items.add(new DenoiseItem(x, 100 + 200 * i, pairs[i], pairs[i + 1], 7.5, null));
        }
        long calls0 = engine.stats().denoiseCalls.get();
        float[][] together = engine.denoise(new DenoiseBatch("tiny", shape, items));
        assertEquals(1, engine.stats().denoiseCalls.get() - calls0);
        for (int i = 0; i < items.size(); i++) {
            float[] solo = engine.denoise(new DenoiseBatch("tiny", shape, List.of(items.get(i))))[0];
            double err = Conformance.err(together[i], solo);
            assertTrue(err < 1e-4, mode + " item " + i + ": relative error " + err);
        }
        engine.mixedContexts(MixedContexts.DEFAULT.name());
    }
}
