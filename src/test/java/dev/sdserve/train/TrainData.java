package dev.sdserve.train;

import dev.sdserve.engine.tf.TfModel;
import dev.sdserve.model.ClipTokenizer;
import dev.sdserve.model.EmbeddedModel;

import java.io.IOException;
import java.util.ArrayList;
import java.util.List;

/** A tiny captioned set for tests: 4 synthetic 64×64 images (solid shapes on backgrounds), VAE-encoded once. */
final class TrainData {
    static final int SIZE = 64;
    static final String[] CAPTIONS = {"a red square on a blue background", "a green circle on white",
            "a yellow stripe on black", "a purple triangle on grey"};

    private TrainData() {
    }

    static TfModel tinyModel() throws IOException {
        return TfModel.load(EmbeddedModel.NAME, EmbeddedModel.path(), EmbeddedModel.CONFIG);
    }

    /** NCHW image in [-1, 1]. */
    static float[] image(int kind) {
        float[] img = new float[3 * SIZE * SIZE];
        float[][] fg = {{1, -1, -1}, {-1, 1, -1}, {1, 1, -1}, {0.6f, -1, 0.6f}};
        float[][] bg = {{-1, -1, 1}, {1, 1, 1}, {-1, -1, -1}, {0, 0, 0}};
        for (int y = 0; y < SIZE; y++) {
            for (int x = 0; x < SIZE; x++) {
                boolean in = switch (kind) {
                    case 0 -> x >= 16 && x < 48 && y >= 16 && y < 48;
                    case 1 -> (x - 32) * (x - 32) + (y - 32) * (y - 32) < 18 * 18;
                    case 2 -> y >= 24 && y < 40;
                    default -> y >= 12 && y < 52 && Math.abs(x - 32) <= (y - 12) / 2;
                };
                for (int c = 0; c < 3; c++) {
                    img[(c * SIZE + y) * SIZE + x] = in ? fg[kind][c] : bg[kind][c];
                }
            }
        }
        return img;
    }

    static List<LoraTrainer.Example> examples(TfModel m) {
        List<float[]> imgs = new ArrayList<>();
        int[][] ids = new int[CAPTIONS.length][];
        for (int i = 0; i < CAPTIONS.length; i++) {
            imgs.add(image(i));
            ids[i] = ClipTokenizer.get().tokenize(CAPTIONS[i], m.config().textEncoder());
        }
        float[][] lat = m.encodeImages(imgs, SIZE, SIZE);
        float[][] ctx = m.encodeTokens(ids, 1);
        List<LoraTrainer.Example> out = new ArrayList<>();
        for (int i = 0; i < CAPTIONS.length; i++) {
            out.add(new LoraTrainer.Example(lat[i], ctx[i]));
        }
        return out;
    }
}
