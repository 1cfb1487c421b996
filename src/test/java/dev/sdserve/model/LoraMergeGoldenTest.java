package dev.sdserve.model;

import dev.sdserve.engine.tf.TfModel;
import dev.sdserve.testutil.Shared;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

/**
 * The kohya → LDM mapping checked end to end against diffusers: merge the golden LoRA into the tiny checkpoint
 * (W += scale · alpha/rank · up · down on each mapped weight), run the text encoder and the UNet, and compare with
 * the golden set's LoRA outputs. A mapping that fits by shape but hits the wrong layer (attn1 vs attn2, q vs k, a
 * wrong block index) would miss the reference by far more than the 1e-4 tolerance.
 */
class LoraMergeGoldenTest {
    @TempDir
    Path tmp;

    @Test
    void mergedLoraReproducesDiffusersOutputs() throws IOException {
        try (GoldenSet g = GoldenSet.open(Shared.golden("sd15-tiny"))) {
            GoldenSet.LoraSettings s = g.lora().orElseThrow();
            Map<String, float[]> deltas = new HashMap<>();
            try (LoraFile lora = LoraFile.open(s.file(), g.config())) {
                for (LoraFile.Module m : lora.modules()) {
                    deltas.put(m.target(), lora.delta(m, s.scale()));
                }
            }
            Path merged = tmp.resolve("merged.safetensors");
            SafeTensorsWriter w = new SafeTensorsWriter();
            try (Checkpoint c = g.openModel()) {
                for (String k : c.requiredKeys()) {
                    float[] v = c.floats(k);
                    float[] d = deltas.get(k);
                    if (d != null) {
                        assertEquals(v.length, d.length, k);
                        for (int i = 0; i < v.length; i++) {
                            v[i] += d[i];
                        }
                    }
                    w.add(k, DType.F32, c.shape(k), v);
                }
            }
            w.write(merged);
            assertEquals(s.modules(), deltas.size());

            try (TfModel m = TfModel.load("lora-merged", merged, g.config())) {
                int[] flat = g.ints("te.input_ids");
                int[][] ids = {java.util.Arrays.copyOfRange(flat, 0, 77), java.util.Arrays.copyOfRange(flat, 77, 154)};
                float[][] te = m.encodeTokens(ids, 1);
                assertRelErr(g.tensor("lora.te.last_hidden_state"), concat(te), 1e-4, "text encoder + LoRA");

                int n = 4 * 16 * 16;
                float[] x = g.tensor("unet.x");
                float[] ctx = g.tensor("unet.ctx");
                int[] t = g.ints("unet.t");
                int cn = 77 * g.config().textEncoder().hiddenSize();
                float[][] eps = m.unet(List.of(java.util.Arrays.copyOfRange(x, 0, n), java.util.Arrays.copyOfRange(x, n, 2 * n)),
                        new float[]{t[0], t[1]},
                        List.of(java.util.Arrays.copyOfRange(ctx, 0, cn), java.util.Arrays.copyOfRange(ctx, cn, 2 * cn)), 16, 16);
                assertRelErr(g.tensor("lora.unet.eps"), concat(eps), 1e-4, "UNet + LoRA");
                // and the LoRA does change the outputs (the check above is not vacuous)
                assertTrue(relErr(g.tensor("unet.eps"), concat(eps)) > 1e-2);
            }
        }
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

    static double relErr(float[] ref, float[] out) {
        assertEquals(ref.length, out.length);
        double num = 0;
        double den = 0;
        for (int i = 0; i < ref.length; i++) {
            num += (out[i] - ref[i]) * (double) (out[i] - ref[i]);
            den += ref[i] * (double) ref[i];
        }
        return Math.sqrt(num / den);
    }

    static void assertRelErr(float[] ref, float[] out, double tol, String what) {
        double e = relErr(ref, out);
        System.out.printf("%s: relative error %.3g%n", what, e);
        assertTrue(e < tol, what + ": relative error " + e);
    }
}
