package dev.sdserve.engine.tf;

import dev.sdserve.model.GoldenSet;
import dev.sdserve.testutil.Shared;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@code sdserve.compute-dtype=fp16}: every network of the tiny golden model built to compute in half precision
 * (the fp16 file, all its tensors kept F16) against diffusers' float32 references, at the README's half tolerance
 * (1e-2). On this CPU TensorFlow has a half kernel for every op the engine builds (BatchMatMulV3 has none, so
 * half attention uses BatchMatMulV2), so all three networks run in half.
 */
class Fp16ComputeTest {
    static GoldenSet g;
    static TfModel model;

    @BeforeAll
    static void load() throws Exception {
        g = GoldenSet.open(Shared.golden("sd15-tiny"));
        model = TfModel.load("tiny-fp16", g.fp16ModelFile().orElseThrow(), g.config(), ComputeDType.FP16);
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

    @Test
    void weightsStayHalfAndGraphsComputeInHalf() {
        assertEquals(ComputeDType.FP16, model.compute());
        long half = model.weights().keys().stream().filter(model.weights()::isHalf).count();
        assertEquals(model.weights().keys().size(), half, "every F16 tensor of the fp16 file stays F16");
    }

    /**
     * The one half kernel this CPU build lacks among the ops a net could use: {@code BatchMatMulV3} (what TF Java's
     * {@code batchMatMul} builds). The engine uses BatchMatMulV2 for half; a graph that still reaches a missing
     * kernel fails with a message naming the op and the way out.
     */
    @Test
    void missingHalfKernelIsNamed() {
        try (Weights none = Weights.empty("none");
             TfGraph graph = TfGraph.build("probe", none, ComputeDType.FP16, b -> {
                 var tf = b.tf;
                 var a = b.input("a", tf.placeholder(org.tensorflow.types.TFloat16.class));
                 b.output("y", tf.train.batchMatMul(a, a, org.tensorflow.types.TFloat16.class));
             });
             var a = org.tensorflow.types.TFloat16.tensorOf(org.tensorflow.ndarray.Shape.of(1, 2, 2))) {
            IllegalStateException e = org.junit.jupiter.api.Assertions.assertThrows(IllegalStateException.class,
                    () -> graph.run(java.util.Map.of("a", a), List.of("y")).close());
            assertTrue(e.getMessage().contains("no kernel for op BatchMatMulV3"), e.getMessage());
            assertTrue(e.getMessage().contains("sdserve.compute-dtype=fp32"), e.getMessage());
        }
    }

    @Test
    void textEncoder() throws Exception {
        long[] s = g.shape("te.input_ids");
        int[] flat = g.ints("te.input_ids");
        int[][] ids = new int[(int) s[0]][(int) s[1]];
        for (int i = 0; i < ids.length; i++) {
            System.arraycopy(flat, i * ids[i].length, ids[i], 0, ids[i].length);
        }
        double e1 = NetworksGoldenTest.relErr(model.encodeTokens(ids, 1), g.tensor("te.last_hidden_state"));
        double e2 = NetworksGoldenTest.relErr(model.encodeTokens(ids, 2), g.tensor("te.penultimate_normed"));
        System.out.printf("fp16 compute: te.last %.3e  te.skip2 %.3e%n", e1, e2);
        assertTrue(e1 < Conformance.HALF_TOLERANCE, "te rel err " + e1);
        assertTrue(e2 < Conformance.HALF_TOLERANCE, "te clip skip 2 rel err " + e2);
    }

    @Test
    void unetBatch() throws Exception {
        int[] ti = g.ints("unet.t");
        long[] s = g.shape("unet.x");
        float[] t = new float[ti.length];
        for (int i = 0; i < t.length; i++) {
            t[i] = ti[i];
        }
        float[][] eps = model.unet(List.of(g.row("unet.x", 0), g.row("unet.x", 1)), t,
                List.of(g.row("unet.ctx", 0), g.row("unet.ctx", 1)), (int) s[2], (int) s[3]);
        double e = NetworksGoldenTest.relErr(eps, g.tensor("unet.eps"));
        System.out.printf("fp16 compute: unet.batch %.3e%n", e);
        assertTrue(e < Conformance.HALF_TOLERANCE, "unet rel err " + e);
    }

    @Test
    void vaeDecodeAndEncode() throws Exception {
        long[] zs = g.shape("vae.z");
        double ed = NetworksGoldenTest.relErr(model.decodeRaw(List.of(g.row("vae.z", 0)), (int) zs[2], (int) zs[3]),
                g.tensor("vae.decoded"));
        long[] is = g.shape("vae.image");
        double ee = NetworksGoldenTest.relErr(model.encodeImages(List.of(g.row("vae.image", 0)), (int) is[2],
                (int) is[3]), g.tensor("vae.encoded_mean_scaled"));
        System.out.printf("fp16 compute: vae.decode %.3e  vae.encode %.3e%n", ed, ee);
        assertTrue(ed < Conformance.HALF_TOLERANCE, "vae decode rel err " + ed);
        assertTrue(ee < Conformance.HALF_TOLERANCE, "vae encode rel err " + ee);
    }
}
