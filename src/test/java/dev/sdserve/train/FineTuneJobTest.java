package dev.sdserve.train;

import dev.sdserve.engine.tf.TfModel;
import dev.sdserve.model.Checkpoint;
import dev.sdserve.model.DType;
import dev.sdserve.model.EmbeddedModel;
import dev.sdserve.model.LoraFile;
import dev.sdserve.model.SafeTensorsWriter;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class FineTuneJobTest {
    static TfModel model;
    @TempDir
    static Path tmp;
    static Path dataDir;

    @BeforeAll
    static void setUp() throws IOException {
        model = TrainData.tinyModel();
        dataDir = tmp.resolve("data");
        TrainData.writeFolder(dataDir.resolve("shapes"));
    }

    @AfterAll
    static void close() {
        model.close();
    }

    static FineTuneJob.Spec spec(String id, int steps) {
        return new FineTuneJob.Spec(id, "lora-" + id, EmbeddedModel.NAME, "shapes", 4, 4, steps, 5e-3, 2, 42, 64, 5);
    }

    /** 10 steps, "crash" (drop the job), resume: the end state equals an uninterrupted 20-step run. */
    @Test
    void resumeFromCheckpointEqualsUninterruptedRun() throws IOException {
        Path loras = tmp.resolve("loras");
        LoraTrainer.State straight;
        List<FineTuneJob.Progress> events = new ArrayList<>();
        try (FineTuneJob a = FineTuneJob.open(spec("straight", 20), model, dataDir, loras, tmp.resolve("stA"))) {
            a.addListener(events::add);
            while (a.runStep()) {
            }
            assertEquals(FineTuneJob.Status.SUCCEEDED, a.status());
            straight = a.trainer().state();
        }
        assertEquals(20, events.stream().filter(e -> e.status() == FineTuneJob.Status.RUNNING).count());
        assertEquals(FineTuneJob.Status.SUCCEEDED, events.get(events.size() - 1).status());
        assertTrue(Double.isFinite(events.get(5).etaSeconds()));

        Path st = tmp.resolve("stB");
        FineTuneJob b = FineTuneJob.open(spec("resumed", 20), model, dataDir, loras, st);
        for (int i = 0; i < 12; i++) { // checkpoints at 5 and 10; steps 11-12 are lost in the "crash"
            b.runStep();
        }
        b.close(); // dropped without a final checkpoint
        try (FineTuneJob c = FineTuneJob.resume("resumed", model, dataDir, loras, st)) {
            assertEquals(10, c.stepsDone());
            while (c.runStep()) {
            }
            LoraTrainer.State resumed = c.trainer().state();
            double worst = 0;
            for (int i = 0; i < straight.up().size(); i++) {
                worst = Math.max(worst, maxDiff(straight.up().get(i), resumed.up().get(i)));
                worst = Math.max(worst, maxDiff(straight.down().get(i), resumed.down().get(i)));
            }
            System.out.printf("resume: max |param difference| after 20 steps = %.3e%n", worst);
            assertTrue(worst < 1e-4, "resumed run differs by " + worst);
        }
    }

    /**
     * The result is a kohya LoRA that LoraFile maps onto the model; merged into the checkpoint's weights
     * (W += alpha/r · up · down) it reproduces the training graph's own loss, and it changes the UNet's output.
     */
    @Test
    void resultLoadsAsKohyaLoraAndReproducesTrainingForward() throws IOException {
        Path loras = tmp.resolve("loras2");
        try (FineTuneJob job = FineTuneJob.open(spec("export", 15), model, dataDir, loras, tmp.resolve("stC"))) {
            while (job.runStep()) {
            }
            Path file = job.resultFile();
            assertTrue(Files.exists(file));
            LoraTrainer tr = job.trainer();
            Map<String, float[]> deltas = new HashMap<>();
            try (LoraFile lora = LoraFile.open(file, model.config())) {
                assertEquals(tr.modules().size(), lora.modules().size());
                for (LoraFile.Module m : lora.modules()) {
                    assertEquals(4, m.rank());
                    assertEquals(4.0, m.alpha(), 1e-6);
                    deltas.put(m.target(), lora.delta(m, 1.0));
                }
            }
            for (LoraTrainer.Module m : tr.modules()) {
                assertTrue(deltas.containsKey(m.weightKey()), "no LoRA delta for " + m.weightKey());
            }
            Path merged = tmp.resolve("merged.safetensors");
            SafeTensorsWriter w = new SafeTensorsWriter();
            try (Checkpoint c = Checkpoint.open(EmbeddedModel.path())) {
                for (String k : c.requiredKeys()) {
                    float[] v = c.floats(k);
                    float[] d = deltas.get(k);
                    if (d != null) {
                        for (int i = 0; i < v.length; i++) {
                            v[i] += d[i];
                        }
                    }
                    w.add(k, DType.F32, c.shape(k), v);
                }
            }
            w.write(merged);

            LoraTrainer.Batch batch = tr.batch(FineTuneJob.encode(model,
                    FineTuneJob.loadImages(dataDir, "shapes", 64), 64), 999);
            float trainerLoss = tr.loss(batch);
            float[] sa = new float[LoraTrainer.TRAIN_TIMESTEPS], s1a = new float[LoraTrainer.TRAIN_TIMESTEPS];
            LoraTrainer.schedule(sa, s1a);
            List<float[]> xt = new ArrayList<>();
            float[] t = new float[batch.timesteps().length];
            for (int i = 0; i < t.length; i++) {
                int ts = batch.timesteps()[i];
                t[i] = ts;
                float[] x0 = batch.latents().get(i), nz = batch.noise().get(i), x = new float[x0.length];
                for (int j = 0; j < x.length; j++) {
                    x[j] = sa[ts] * x0[j] + s1a[ts] * nz[j];
                }
                xt.add(x);
            }
            double mergedLoss, baseLoss;
            try (TfModel m = TfModel.load("merged", merged, model.config())) {
                mergedLoss = mse(m.unet(xt, t, batch.contexts(), 8, 8), batch.noise());
            }
            baseLoss = mse(model.unet(xt, t, batch.contexts(), 8, 8), batch.noise());
            System.out.printf("loss: training graph %.6f, merged kohya file %.6f, base model %.6f%n", trainerLoss,
                    mergedLoss, baseLoss);
            assertEquals(trainerLoss, mergedLoss, 2e-3 * trainerLoss);
            assertTrue(Math.abs(baseLoss - mergedLoss) > 20 * Math.abs(trainerLoss - mergedLoss),
                    "the LoRA barely changes the UNet");
        }
    }

    @Test
    void rejectsFolderOutsideDataDir() {
        assertThrows(IllegalArgumentException.class, () -> FineTuneJob.loadImages(dataDir, "../", 64));
        assertThrows(IllegalArgumentException.class, () -> FineTuneJob.loadImages(dataDir, "missing", 64));
        assertFalse(Files.exists(dataDir.resolve("missing")));
    }

    static double mse(float[][] eps, List<float[]> noise) {
        double s = 0;
        long n = 0;
        for (int i = 0; i < eps.length; i++) {
            for (int j = 0; j < eps[i].length; j++) {
                double d = eps[i][j] - noise.get(i)[j];
                s += d * d;
                n++;
            }
        }
        return s / n;
    }

    static double maxDiff(float[] a, float[] b) {
        double m = 0;
        for (int i = 0; i < a.length; i++) {
            m = Math.max(m, Math.abs(a[i] - b[i]));
        }
        return m;
    }
}
