package dev.sdserve.engine.tf;

import dev.sdserve.model.GoldenSet;
import dev.sdserve.testutil.Shared;

import java.nio.file.Path;

/**
 * The tiny golden SD 1.5 model for tests of the graph forms that give each core its own chain of ops (lanes, row
 * parts): loaded with {@code sdserve.threads} set, so there is a thread per chain whatever this machine has, and
 * with {@code sdserve.lanes.anySize} on, since the tiny model is below the work those forms pay for. Both properties
 * are restored on {@link #close}.
 */
final class TinyThreadedModel implements AutoCloseable {
    final GoldenSet golden;
    final TfModel model;
    private final String threadsBefore;

    private TinyThreadedModel(GoldenSet golden, TfModel model, String threadsBefore) {
        this.golden = golden;
        this.model = model;
        this.threadsBefore = threadsBefore;
    }

    static TinyThreadedModel open(String name, int threads) throws Exception {
        String before = System.getProperty("sdserve.threads");
        System.setProperty("sdserve.threads", Integer.toString(threads));
        System.setProperty("sdserve.lanes.anySize", "true");
        GoldenSet g = null;
        try {
            Path dir = Shared.golden("sd15-tiny");
            g = GoldenSet.open(dir);
            return new TinyThreadedModel(g, TfModel.load(name, dir.resolve("tiny-sd15.safetensors"), g.config()),
                    before);
        } catch (Exception | Error e) {
            if (g != null) {
                g.close();
            }
            restore(before);
            throw e;
        }
    }

    @Override
    public void close() {
        try {
            model.close();
            golden.close();
        } finally {
            restore(threadsBefore);
        }
    }

    private static void restore(String threads) {
        System.clearProperty("sdserve.lanes.anySize");
        if (threads == null) {
            System.clearProperty("sdserve.threads");
        } else {
            System.setProperty("sdserve.threads", threads);
        }
    }
}
