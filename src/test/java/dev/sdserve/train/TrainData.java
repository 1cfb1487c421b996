package dev.sdserve.train;

import dev.sdserve.engine.tf.TfModel;
import dev.sdserve.model.ClipTokenizer;
import dev.sdserve.model.EmbeddedModel;

import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import javax.imageio.ImageIO;

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

    /** Image {@code kind} as an RGB picture (what a user would put in a training folder). */
    static BufferedImage png(int kind) {
        float[] nchw = image(kind);
        int s = SIZE;
        BufferedImage img = new BufferedImage(s, s, BufferedImage.TYPE_INT_RGB);
        for (int y = 0; y < s; y++) {
            for (int x = 0; x < s; x++) {
                int rgb = 0;
                for (int c = 0; c < 3; c++) {
                    int v = Math.round((nchw[(c * s + y) * s + x] + 1) * 127.5f);
                    rgb = (rgb << 8) | Math.max(0, Math.min(255, v));
                }
                img.setRGB(x, y, rgb);
            }
        }
        return img;
    }

    /** The set as a training folder: img{i}.png with img{i}.txt captions in {@code dir} (created). */
    static Path writeFolder(Path dir) throws IOException {
        Files.createDirectories(dir);
        for (int i = 0; i < CAPTIONS.length; i++) {
            ImageIO.write(png(i), "png", dir.resolve("img" + i + ".png").toFile());
            Files.writeString(dir.resolve("img" + i + ".txt"), CAPTIONS[i]);
        }
        return dir;
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
