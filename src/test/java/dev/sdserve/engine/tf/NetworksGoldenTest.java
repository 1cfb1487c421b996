package dev.sdserve.engine.tf;

import dev.sdserve.model.GoldenSet;

import dev.sdserve.testutil.Shared;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Each network against the golden references of sd15-tiny (diffusers float32 outputs). */
class NetworksGoldenTest {
    static GoldenSet g;
    static TfModel model;

    @BeforeAll
    static void load() throws Exception {
        Path dir = Shared.golden("sd15-tiny");
        g = GoldenSet.open(dir);
        model = TfModel.load("tiny", dir.resolve("tiny-sd15.safetensors"), g.config());
    }

    @AfterAll
    static void close() {
        if (model != null) {
            model.close();
        }
        if (g != null) {
            g.close();
        }
    }

    static double relErr(float[][] out, float[] ref) {
        double num = 0, den = 0;
        int k = 0;
        for (float[] o : out) {
            for (float v : o) {
                double d = v - ref[k];
                num += d * d;
                den += (double) ref[k] * ref[k];
                k++;
            }
        }
        if (k != ref.length) {
            throw new AssertionError("output has " + k + " values, reference " + ref.length);
        }
        return Math.sqrt(num / den);
    }

    int[][] ids() throws Exception {
        int[] flat = g.ints("te.input_ids");
        long[] s = g.shape("te.input_ids");
        int b = (int) s[0], t = (int) s[1];
        int[][] ids = new int[b][t];
        for (int i = 0; i < b; i++) {
            System.arraycopy(flat, i * t, ids[i], 0, t);
        }
        return ids;
    }

    @Test
    void textEncoderLastAndClipSkip2() throws Exception {
        double e1 = relErr(model.encodeTokens(ids(), 1), g.tensor("te.last_hidden_state"));
        double e2 = relErr(model.encodeTokens(ids(), 2), g.tensor("te.penultimate_normed"));
        System.out.printf("te.last %.3e  te.skip2 %.3e%n", e1, e2);
        assertTrue(e1 < 1e-4, "last hidden state rel err " + e1);
        assertTrue(e2 < 1e-4, "clip skip 2 rel err " + e2);
    }

    @Test
    void unetBatchWithDifferentTimesteps() throws Exception {
        int[] ti = g.ints("unet.t");
        float[] t = new float[ti.length];
        for (int i = 0; i < t.length; i++) {
            t[i] = ti[i];
        }
        long[] s = g.shape("unet.x");
        float[][] eps = model.unet(List.of(g.row("unet.x", 0), g.row("unet.x", 1)), t,
                List.of(g.row("unet.ctx", 0), g.row("unet.ctx", 1)), (int) s[2], (int) s[3]);
        double e = relErr(eps, g.tensor("unet.eps"));
        System.out.printf("unet.batch2 %.3e%n", e);
        assertTrue(e < 1e-4, "unet rel err " + e);
    }

    @Test
    void unetNonSquare() throws Exception {
        long[] s = g.shape("unet.x_24x16");
        float t = (float) g.params().get("unet_24x16_timestep").asDouble();
        float[][] eps = model.unet(List.of(g.row("unet.x_24x16", 0)), new float[]{t}, List.of(g.row("unet.ctx", 0)),
                (int) s[2], (int) s[3]);
        double e = relErr(eps, g.tensor("unet.eps_24x16"));
        System.out.printf("unet.24x16 %.3e%n", e);
        assertTrue(e < 1e-4, "unet 24x16 rel err " + e);
    }

    @Test
    void vaeDecodeAndEncode() throws Exception {
        long[] zs = g.shape("vae.z");
        double ed = relErr(model.decodeRaw(List.of(g.row("vae.z", 0)), (int) zs[2], (int) zs[3]), g.tensor("vae.decoded"));
        long[] is = g.shape("vae.image");
        double ee = relErr(model.encodeImages(List.of(g.row("vae.image", 0)), (int) is[2], (int) is[3]),
                g.tensor("vae.encoded_mean_scaled"));
        System.out.printf("vae.decode %.3e  vae.encode %.3e%n", ed, ee);
        assertTrue(ed < 1e-4, "vae decode rel err " + ed);
        assertTrue(ee < 1e-4, "vae encode rel err " + ee);
    }

    @Test
    void halfStorageGivesTheSameNumbersAsFloat32Storage() throws Exception {
        // the fp16 file held as stored (the default: cast to float32 in the graph before each layer) and fully
        // converted to float32 at load
        Path f16 = Shared.golden("sd15-tiny").resolve("tiny-sd15-fp16.safetensors");
        assertFalse(Weights.HalfPolicy.configured().keepsHalf(UNetNet.PREFIX + "out.2.weight"),
                "default policy: float32 weights, no per-call casts");
        long[] s = g.shape("unet.x");
        float[] t = {(float) g.ints("unet.t")[0]};
        float[][][] out = new float[2][][];
        long[] bytes = new long[2];
        int k = 0;
        for (Weights.HalfPolicy p : new Weights.HalfPolicy[]{Weights.HalfPolicy.ALL, Weights.HalfPolicy.NONE}) {
            try (dev.sdserve.model.SafeTensors st = dev.sdserve.model.SafeTensors.open(f16);
                 TfModel m = new TfModel("tiny-" + k, g.config(), Weights.load(st, p), 0)) {
                bytes[k] = m.weights().bytes();
                out[k++] = m.unet(List.of(g.row("unet.x", 0)), t, List.of(g.row("unet.ctx", 0)), (int) s[2],
                        (int) s[3]);
            }
        }
        assertTrue(bytes[0] * 10 < bytes[1] * 6, "half storage " + bytes[0] + " B vs float32 " + bytes[1] + " B");
        // the same values enter the same layers; TF fuses ops differently around the casts (e.g. MatMul + BiasAdd),
        // so the sums round differently: rounding-level, far under the 1e-4 tolerance against diffusers
        float[] ref = out[1][0];
        double e = relErr(out[0], ref);
        System.out.printf("unet half storage vs float32 storage: rel diff %.2e%n", e);
        assertTrue(e < 1e-5, "half vs float32 storage rel diff " + e);
    }
}
