package dev.sdserve.engine.tf;

import dev.sdserve.engine.DenoiseBatch;
import dev.sdserve.engine.DenoiseItem;
import dev.sdserve.engine.LatentShape;
import dev.sdserve.engine.LoraWeight;
import dev.sdserve.job.ServeException;
import dev.sdserve.model.DType;
import dev.sdserve.model.GoldenSet;
import dev.sdserve.model.ModelRegistry;
import dev.sdserve.model.SafeTensorsWriter;
import dev.sdserve.testutil.Shared;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

/**
 * LoRA in the TF engine against the golden set: the text encoder and UNet with the golden LoRA at 0.8 reproduce
 * diffusers on the merged and on the unmerged low-rank path; a batch mixing no LoRA, 0.8 and 0.4 (with and without
 * guidance) gives each sample what it gets alone; clear errors for unknown and mismatched LoRAs.
 */
class TfLoraTest {
    @TempDir
    static Path tmp;
    static GoldenSet g;
    static TfEngine engine;
    static Path bad;

    @BeforeAll
    static void setUp() throws IOException {
        g = GoldenSet.open(Shared.golden("sd15-tiny"));
        Path lora = g.lora().orElseThrow().file();
        bad = tmp.resolve("sdxl.safetensors");
        SafeTensorsWriter w = new SafeTensorsWriter();
        w.add("lora_te1_text_model_encoder_layers_0_self_attn_q_proj.lora_down.weight", DType.F32, new long[]{2, 32}, new float[64]);
        w.add("lora_te1_text_model_encoder_layers_0_self_attn_q_proj.lora_up.weight", DType.F32, new long[]{32, 2}, new float[64]);
        w.write(bad);
        Path other = tmp.resolve("other.safetensors");
        SafeTensorsWriter w2 = new SafeTensorsWriter();
        w2.add("lora_unet_some_block_that_does_not_exist.lora_down.weight", DType.F32, new long[]{2, 32}, new float[64]);
        w2.add("lora_unet_some_block_that_does_not_exist.lora_up.weight", DType.F32, new long[]{32, 2}, new float[64]);
        w2.write(other);
        Map<String, Path> loras = Map.of("tiny", lora, "sdxl", bad, "other", other);
        engine = new TfEngine(name -> {
            if (!name.equals("m")) {
                throw ServeException.notFound("unknown model " + name);
            }
            return g.modelFile();
        }, p -> g.config(), null, new LoraLibrary.Source() {
            @Override
            public Path resolve(String name) {
                Path p = loras.get(name);
                if (p == null) {
                    throw ServeException.notFound("unknown LoRA '" + name + "'");
                }
                return p;
            }

            @Override
            public String hash(Path file) {
                return ModelRegistry.sha256(file);
            }
        });
    }

    @AfterAll
    static void tearDown() {
        engine.close();
        g.close();
    }

    static List<LoraWeight> at(double w) {
        return List.of(new LoraWeight("tiny", w));
    }

    private int[][] ids() throws IOException {
        int[] flat = g.ints("te.input_ids");
        return new int[][]{Arrays.copyOfRange(flat, 0, 77), Arrays.copyOfRange(flat, 77, 154)};
    }

    private float[] row(String name, int i) throws IOException {
        long[] s = g.shape(name);
        int n = (int) (Arrays.stream(s).reduce(1, (a, b) -> a * b) / s[0]);
        return Arrays.copyOfRange(g.tensor(name), i * n, (i + 1) * n);
    }

    @Test
    void goldenLoraOnBothPaths() throws IOException {
        double scale = g.lora().orElseThrow().scale();
        for (TfEngine.LoraPath path : List.of(TfEngine.LoraPath.MERGED, TfEngine.LoraPath.LOW_RANK)) {
            engine.loraPath(path);
            try {
                long[] before = engine.loraCalls();
                float[][] te = engine.encodeTokens("m", ids(), new int[]{1, 1}, List.of(at(scale), at(scale)));
                assertRelErr(g.tensor("lora.te.last_hidden_state"), concat(te), 1e-4, path + " text encoder");
                int[] t = g.ints("unet.t");
                List<DenoiseItem> items = new ArrayList<>();
                for (int i = 0; i < 2; i++) {
                    items.add(new DenoiseItem(row("unet.x", i), t[i], row("unet.ctx", i), null, 1.0, at(scale)));
                }
                float[][] eps = engine.denoise(new DenoiseBatch("m", new LatentShape(4, 16, 16), items));
                assertRelErr(g.tensor("lora.unet.eps"), concat(eps), 1e-4, path + " UNet");
                long[] after = engine.loraCalls();
                int idx = path == TfEngine.LoraPath.LOW_RANK ? 0 : 1;
                assertEquals(before[idx] + 2, after[idx], "both calls ran on the " + path + " path");
            } finally {
                engine.loraPath(TfEngine.LoraPath.AUTO);
            }
        }
    }

    @Test
    void mixedBatchGivesEachSampleWhatItGetsAlone() throws IOException {
        int[] t = g.ints("unet.t");
        float[] x0 = row("unet.x", 0), x1 = row("unet.x", 1);
        float[] c0 = row("unet.ctx", 0), c1 = row("unet.ctx", 1);
        List<DenoiseItem> items = List.of(
                new DenoiseItem(x0, t[0], c0, null, 1.0, List.of()),
                new DenoiseItem(x1, t[1], c1, c0, 7.5, at(0.8)),
                new DenoiseItem(x0, t[1], c1, null, 1.0, at(0.4)),
                new DenoiseItem(x1, t[0], c0, c1, 3.0, List.of()));
        LatentShape shape = new LatentShape(4, 16, 16);
        long[] before = engine.loraCalls();
        float[][] mixed = engine.denoise(new DenoiseBatch("m", shape, items));
        assertEquals(before[0] + 1, engine.loraCalls()[0], "one unmerged UNet call for the mixed batch");
        for (int i = 0; i < items.size(); i++) {
            float[] alone = engine.denoise(new DenoiseBatch("m", shape, List.of(items.get(i))))[0];
            assertTrue(maxAbs(alone, mixed[i]) <= 1e-4, "sample " + i + ": max |Δ| " + maxAbs(alone, mixed[i]));
        }
        // the LoRA matters: 0.8 and 0.4 differ from no LoRA on the same inputs
        float[] none = engine.denoise(new DenoiseBatch("m", shape, List.of(
                new DenoiseItem(x0, t[1], c1, null, 1.0, List.of()))))[0];
        assertTrue(maxAbs(none, mixed[2]) > 1e-3);
        // text encoder: mixed rows equal rows alone
        int[][] ids = ids();
        float[][] te = engine.encodeTokens("m", new int[][]{ids[0], ids[1], ids[0]}, new int[]{1, 1, 1},
                List.of(List.of(), at(0.8), at(0.4)));
        for (int i = 0; i < 3; i++) {
            List<LoraWeight> l = i == 0 ? List.of() : at(i == 1 ? 0.8 : 0.4);
            float[] alone = engine.encodeTokens("m", new int[][]{ids[i == 1 ? 1 : 0]}, new int[]{1}, List.of(l))[0];
            assertTrue(maxAbs(alone, te[i]) <= 1e-4, "te row " + i + ": " + maxAbs(alone, te[i]));
        }
    }

    @Test
    void unknownAndMismatchedLorasAreClearErrors() throws IOException {
        LatentShape shape = new LatentShape(4, 16, 16);
        DenoiseItem ok = new DenoiseItem(row("unet.x", 0), 10, row("unet.ctx", 0), null, 1.0, List.of());
        ServeException nf = assertThrows(ServeException.class, () -> engine.denoise(new DenoiseBatch("m", shape,
                List.of(ok, new DenoiseItem(ok.latentInput(), 10, ok.cond(), null, 1.0, List.of(new LoraWeight("nope", 1)))))));
        assertEquals(ServeException.Code.NOT_FOUND, nf.code());
        assertTrue(nf.getMessage().contains("nope"), nf.getMessage());
        for (String name : List.of("sdxl", "other")) {
            ServeException ex = assertThrows(ServeException.class, () -> engine.denoise(new DenoiseBatch("m", shape,
                    List.of(new DenoiseItem(ok.latentInput(), 10, ok.cond(), null, 1.0, List.of(new LoraWeight(name, 1)))))));
            assertEquals(ServeException.Code.INVALID_ARGUMENT, ex.code(), ex.getMessage());
            assertTrue(ex.getMessage().contains("'" + name + "'"), ex.getMessage());
            System.out.println(ex.getMessage());
        }
        assertEquals(ServeException.Code.NOT_FOUND, assertThrows(ServeException.class, () -> engine.model("zzz")).code());
    }

    @Test
    void loraTensorsAreCachedByHash() throws IOException {
        LatentShape shape = new LatentShape(4, 16, 16);
        DenoiseItem it = new DenoiseItem(row("unet.x", 0), 10, row("unet.ctx", 0), null, 1.0, at(0.3));
        engine.denoise(new DenoiseBatch("m", shape, List.of(it)));
        long loads = engine.loras().loads();
        engine.denoise(new DenoiseBatch("m", shape, List.of(it, new DenoiseItem(it.latentInput(), 10, it.cond(), null, 1.0, at(0.6)))));
        assertEquals(loads, engine.loras().loads());
    }

    static float maxAbs(float[] a, float[] b) {
        assertEquals(a.length, b.length);
        float m = 0;
        for (int i = 0; i < a.length; i++) {
            m = Math.max(m, Math.abs(a[i] - b[i]));
        }
        return m;
    }

    static float[] concat(float[][] a) {
        int n = 0;
        for (float[] r : a) {
            n += r.length;
        }
        float[] out = new float[n];
        int o = 0;
        for (float[] r : a) {
            System.arraycopy(r, 0, out, o, r.length);
            o += r.length;
        }
        return out;
    }

    static void assertRelErr(float[] ref, float[] out, double tol, String what) {
        assertEquals(ref.length, out.length);
        double num = 0, den = 0;
        for (int i = 0; i < ref.length; i++) {
            num += (out[i] - ref[i]) * (double) (out[i] - ref[i]);
            den += ref[i] * (double) ref[i];
        }
        double e = Math.sqrt(num / den);
        System.out.printf("%s: relative error %.3g%n", what, e);
        assertTrue(e < tol, what + ": relative error " + e);
    }
}
