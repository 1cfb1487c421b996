package dev.sdserve.model;

import dev.sdserve.testutil.Shared;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

import static org.junit.jupiter.api.Assertions.*;

class RandomCheckpointTest {
    @TempDir
    Path tmp;

    static ModelConfig tiny() throws IOException {
        try (GoldenSet g = GoldenSet.open(Shared.golden("sd15-tiny"))) {
            return g.config();
        }
    }

    @Test
    void configJsonRoundTrips() throws IOException {
        for (ModelConfig c : List.of(tiny(), ModelConfigs.sd15(), EmbeddedModel.CONFIG)) {
            var shapes = CheckpointLayout.shapes(CheckpointLayout.full(c, DType.F16));
            assertEquals(c, ModelConfigs.fromShapes(shapes, ModelConfigs.toJson(c)));
        }
    }

    @Test
    void writesALoadableTinyCheckpointWithTheGoldenKeys() throws IOException {
        ModelConfig cfg = tiny();
        Path p = tmp.resolve("r.safetensors");
        RandomCheckpoint.write(p, cfg, DType.F16, 7);
        try (Checkpoint c = Checkpoint.open(p);
             SafeTensors golden = SafeTensors.open(Shared.golden("sd15-tiny").resolve("tiny-sd15.safetensors"))) {
            assertEquals(cfg, c.config()); // heads etc. from the JSON written beside it
            assertEquals(tmp.resolve("r.json"), c.configFile().orElseThrow());
            Set<String> expected = new TreeSet<>(golden.names());
            expected.add(CheckpointLayout.POSITION_IDS);
            expected.addAll(CheckpointLayout.SCHEDULE_BUFFERS);
            assertEquals(expected, new TreeSet<>(c.file().names()));
            for (String k : golden.names()) {
                assertArrayEquals(golden.shape(k), c.shape(k), k);
                assertEquals(DType.F16, c.dtype(k));
            }
            assertArrayEquals(new int[]{0, 1, 2, 76}, pick(c.file().ints(CheckpointLayout.POSITION_IDS), 0, 1, 2, 76));
            assertEquals(DType.I64, c.dtype(CheckpointLayout.POSITION_IDS));
        }
    }

    static int[] pick(int[] a, int... idx) {
        int[] out = new int[idx.length];
        for (int i = 0; i < idx.length; i++) {
            out[i] = a[idx[i]];
        }
        return out;
    }

    @Test
    void weightStatisticsKeepActivationsOrderOne() throws IOException {
        Path p = tmp.resolve("s.safetensors");
        RandomCheckpoint.write(p, tiny(), DType.F32, 1);
        try (SafeTensors st = SafeTensors.open(p)) {
            // conv 3x3 64 → 64: fan_in 576, std 1/24
            checkStats(st.floats("model.diffusion_model.output_blocks.0.0.out_layers.3.weight"), 0, 1 / 24.0);
            // linear 128 → 32: std 1/sqrt(128)
            checkStats(st.floats("model.diffusion_model.input_blocks.1.0.emb_layers.1.weight"), 0, 1 / Math.sqrt(128));
            checkStats(st.floats("cond_stage_model.transformer.text_model.embeddings.token_embedding.weight"), 0, 1);
            checkStats(st.floats("model.diffusion_model.middle_block.1.transformer_blocks.0.norm1.weight"), 1, 0.05);
            float[] bias = st.floats("first_stage_model.decoder.up.1.block.0.conv1.bias");
            for (float b : bias) {
                assertTrue(Math.abs(b) < 0.1, "bias " + b);
            }
        }
    }

    static void checkStats(float[] v, double mean, double std) {
        double s = 0;
        double s2 = 0;
        for (float x : v) {
            s += x;
        }
        double m = s / v.length;
        for (float x : v) {
            s2 += (x - m) * (x - m);
        }
        double sd = Math.sqrt(s2 / v.length);
        assertEquals(mean, m, 5 * std / Math.sqrt(v.length) + 1e-9, "mean");
        assertEquals(std, sd, 0.05 * std, "std");
    }

    @Test
    void scheduleBuffersAreTheSdSchedule() throws IOException {
        Path p = tmp.resolve("sched.safetensors");
        RandomCheckpoint.write(p, EmbeddedModel.CONFIG, DType.F32, 1);
        try (SafeTensors st = SafeTensors.open(p);
             GoldenSet g = GoldenSet.open(Shared.golden("sd15-tiny"))) {
            float[] betas = st.floats("betas");
            float[] ac = st.floats("alphas_cumprod");
            assertEquals(0.00085, betas[0], 1e-9);
            assertEquals(0.012, betas[999], 1e-9);
            // diffusers' Euler (linspace spacing) starts at sigma(999) = sqrt((1 − ᾱ)/ᾱ) = init_noise_sigma
            double sigmaMax = g.pipeline("euler").get("init_noise_sigma").asDouble();
            assertEquals(sigmaMax, Math.sqrt((1 - ac[999]) / ac[999]), 2e-6 * sigmaMax);
            float[] prev = st.floats("alphas_cumprod_prev");
            float[] sqrtAc = st.floats("sqrt_alphas_cumprod");
            float[] recipm1 = st.floats("sqrt_recipm1_alphas_cumprod");
            float[] pv = st.floats("posterior_variance");
            float[] plv = st.floats("posterior_log_variance_clipped");
            float[] c1 = st.floats("posterior_mean_coef1");
            float[] c2 = st.floats("posterior_mean_coef2");
            assertEquals(1.0, prev[0]);
            assertEquals(0.0, pv[0]);
            assertEquals(Math.log(1e-20), plv[0], 1e-4);
            for (int t = 1; t < 1000; t++) {
                assertEquals(ac[t - 1], prev[t], 1e-7);
                assertEquals(ac[t], (1 - betas[t]) * ac[t - 1], 1e-6);
                assertEquals(ac[t], sqrtAc[t] * sqrtAc[t], 1e-6);
                assertEquals((1 - ac[t]) / ac[t], recipm1[t] * recipm1[t], 1e-4 * recipm1[t] * recipm1[t]);
                // DDPM posterior q(x_{t-1} | x_t, x_0): variance β̃_t and the two mean coefficients (recomputed here from
                // float32 ᾱ, where 1 − ᾱ near t = 0 loses ~4 digits: hence 1e-4)
                double expPv = betas[t] * (1 - ac[t - 1]) / (1 - ac[t]);
                assertEquals(expPv, pv[t], 1e-4 * expPv);
                assertEquals(Math.log(expPv), plv[t], 1e-4);
                assertEquals(betas[t] * Math.sqrt(ac[t - 1]) / (1 - ac[t]), c1[t], 1e-4 * c1[t]);
                assertEquals((1 - ac[t - 1]) * Math.sqrt(1 - betas[t]) / (1 - ac[t]), c2[t], 1e-4 * c2[t]);
            }
        }
    }

    @Test
    void deterministicAndReusedWhenValid() throws Exception {
        ModelConfig cfg = EmbeddedModel.CONFIG;
        Path a = tmp.resolve("a/m.safetensors");
        Path b = tmp.resolve("b/m.safetensors");
        RandomCheckpoint.ensure(a, cfg, DType.F16, 5);
        RandomCheckpoint.ensure(b, cfg, DType.F16, 5);
        assertArrayEquals(Files.readAllBytes(a), Files.readAllBytes(b));
        var modified = Files.getLastModifiedTime(a);
        Thread.sleep(20);
        RandomCheckpoint.ensure(a, cfg, DType.F16, 5);
        assertEquals(modified, Files.getLastModifiedTime(a), "valid file is reused, not rewritten");
        assertTrue(RandomCheckpoint.isValid(a, cfg, DType.F16, 5));
        assertFalse(RandomCheckpoint.isValid(a, cfg, DType.F16, 6));
        assertFalse(RandomCheckpoint.isValid(a, cfg, DType.F32, 5));
        assertFalse(RandomCheckpoint.isValid(a, ModelConfigs.sd15(), DType.F16, 5));
        RandomCheckpoint.ensure(a, cfg, DType.F16, 6);
        assertFalse(java.util.Arrays.equals(Files.readAllBytes(a), Files.readAllBytes(b)));
        Files.write(b, new byte[]{1, 2, 3}); // corrupt: rewritten
        RandomCheckpoint.ensure(b, cfg, DType.F16, 6);
        assertArrayEquals(Files.readAllBytes(a), Files.readAllBytes(b));
    }

    @Test
    void embeddedModelIsMadeOnceUnderConcurrency() throws Exception {
        Path dir = tmp.resolve("cache");
        ExecutorService ex = Executors.newFixedThreadPool(4);
        try {
            List<Future<Path>> fs = new ArrayList<>();
            for (int i = 0; i < 4; i++) {
                fs.add(ex.submit(() -> EmbeddedModel.path(dir)));
            }
            Path first = fs.get(0).get();
            for (Future<Path> f : fs) {
                assertEquals(first, f.get());
            }
        } finally {
            ex.shutdown();
        }
        Path p = EmbeddedModel.path(dir);
        try (Checkpoint c = Checkpoint.open(p)) {
            assertEquals(EmbeddedModel.CONFIG, c.config());
            assertEquals(tiny(), c.config()); // same architecture as the golden tiny model
        }
        try (var s = Files.list(dir)) {
            assertEquals(Set.of(EmbeddedModel.FILE, "embedded-sd1-tiny-v1.json", EmbeddedModel.FILE + ".lock"),
                    Set.copyOf(s.map(x -> x.getFileName().toString()).toList()));
        }
    }
}
