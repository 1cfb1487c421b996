package dev.sdserve.train;

import dev.sdserve.engine.tf.TfModel;
import dev.sdserve.model.EmbeddedModel;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class LoraTrainerTest {
    static TfModel model;
    static List<LoraTrainer.Example> data;
    static final int LATENT = TrainData.SIZE / 8;

    @BeforeAll
    static void load() throws Exception {
        model = TrainData.tinyModel();
        data = TrainData.examples(model);
    }

    @AfterAll
    static void close() {
        model.close();
    }

    static LoraTrainer trainer(LoraTrainer.Config c) {
        return new LoraTrainer(model.weights(), EmbeddedModel.CONFIG.unet(), LATENT, LATENT, 77,
                EmbeddedModel.CONFIG.unet().crossAttentionDim(), c);
    }

    @Test
    void findsEveryAttentionProjection() {
        try (LoraTrainer tr = trainer(LoraTrainer.Config.of(4, 4, 1e-3, 1, 1))) {
            // tiny UNet: 2 transformers in each of 3 cross-attn down levels... count: per transformer block 8 projections
            long transformers = model.weights().keys().stream()
                    .filter(k -> k.matches(".*transformer_blocks\\.\\d+\\.norm1\\.weight")).count();
            assertTrue(transformers > 0);
            assertEquals(8 * transformers, tr.modules().size());
        }
    }

    /** TF's graph gradients against central finite differences of the loss, on parameters of both factors. */
    @Test
    void gradientsMatchFiniteDifferences() {
        try (LoraTrainer tr = trainer(LoraTrainer.Config.of(4, 8, 1e-3, 2, 7))) {
            // non-zero up (B) so that the down (A) gradients are non-zero too
            LoraTrainer.State s0 = tr.initialState();
            Random rnd = new Random(3);
            for (float[] up : s0.up()) {
                for (int i = 0; i < up.length; i++) {
                    up[i] = (float) (rnd.nextGaussian() * 0.1);
                }
            }
            tr.setState(s0);
            LoraTrainer.Batch b = tr.batch(data, 0);
            List<float[]> g = tr.gradients(b);
            int n = tr.modules().size();
            double worst = 0;
            // a few modules spread over the network; in each the largest-gradient entry of down and of up
            for (int mi : new int[]{0, n / 3, 2 * n / 3, n - 1}) {
                for (int which = 0; which < 2; which++) {
                    float[] gv = g.get(2 * mi + which);
                    int best = 0;
                    for (int i = 1; i < gv.length; i++) {
                        if (Math.abs(gv[i]) > Math.abs(gv[best])) {
                            best = i;
                        }
                    }
                    float h = 1e-2f;
                    double fd = (lossWith(tr, s0, mi, which, best, h, b) - lossWith(tr, s0, mi, which, best, -h, b))
                            / (2 * h);
                    double rel = Math.abs(fd - gv[best]) / Math.max(Math.abs(fd), Math.abs(gv[best]));
                    System.out.printf("grad check %s.%s[%d]: tf %.6e fd %.6e rel %.2e%n",
                            tr.modules().get(mi).prefix(), which == 0 ? "down" : "up", best, gv[best], fd, rel);
                    worst = Math.max(worst, rel);
                    assertTrue(Math.abs(gv[best]) > 1e-6, "gradient vanishingly small");
                    assertTrue(rel < 1e-2, "relative error " + rel);
                }
            }
            System.out.printf("grad check worst relative error %.2e%n", worst);
        }
    }

    private static double lossWith(LoraTrainer tr, LoraTrainer.State s0, int module, int which, int idx, float h,
                                   LoraTrainer.Batch b) {
        List<float[]> down = new ArrayList<>(s0.down());
        List<float[]> up = new ArrayList<>(s0.up());
        List<float[]> target = which == 0 ? down : up;
        float[] p = target.get(module).clone();
        p[idx] += h;
        target.set(module, p);
        tr.setState(new LoraTrainer.State(0, down, up, s0.downM(), s0.downV(), s0.upM(), s0.upV()));
        return tr.loss(b);
    }

    /** The training loss falls on the small captioned set. */
    @Test
    void lossFalls() {
        try (LoraTrainer tr = trainer(LoraTrainer.Config.of(8, 8, 1e-2, 4, 11))) {
            // fixed evaluation batches (all examples, several timesteps) measured before and after
            List<LoraTrainer.Batch> eval = new ArrayList<>();
            for (int s = 0; s < 4; s++) {
                eval.add(tr.batch(data, 1_000_000 + s));
            }
            double before = eval.stream().mapToDouble(tr::loss).average().orElseThrow();
            float[] curve = new float[50];
            long t0 = System.nanoTime();
            for (int i = 0; i < curve.length; i++) {
                curve[i] = tr.step(data);
            }
            double secs = (System.nanoTime() - t0) / 1e9;
            double after = eval.stream().mapToDouble(tr::loss).average().orElseThrow();
            StringBuilder sb = new StringBuilder();
            for (int i = 0; i < curve.length; i++) {
                sb.append(String.format("%.4f ", curve[i]));
            }
            System.out.println("loss curve: " + sb);
            System.out.printf("eval loss before %.5f after %.5f; %.2f steps/s (batch 4)%n", before, after,
                    curve.length / secs);
            assertTrue(after < 0.9 * before, "eval loss " + before + " -> " + after);
        }
    }
}
