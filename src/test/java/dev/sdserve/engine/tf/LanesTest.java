package dev.sdserve.engine.tf;

import dev.sdserve.model.GoldenSet;
import dev.sdserve.testutil.Props;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.tensorflow.Graph;
import org.tensorflow.Operand;
import org.tensorflow.Result;
import org.tensorflow.Session;
import org.tensorflow.ndarray.Shape;
import org.tensorflow.ndarray.buffer.DataBuffers;
import org.tensorflow.op.Ops;
import org.tensorflow.op.core.Placeholder;
import org.tensorflow.types.TFloat32;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Per-sample lanes ({@link Lanes}): the split, the choice by batch, and lane graphs against the plain ones. */
class LanesTest {
    static TinyThreadedModel tiny;
    static GoldenSet g;
    static TfModel model;

    @BeforeAll
    static void load() throws Exception {
        tiny = TinyThreadedModel.open("tiny-lanes", 2); // a thread per lane
        g = tiny.golden;
        model = tiny.model;
    }

    @AfterAll
    static void close() {
        if (tiny != null) {
            tiny.close();
        }
    }

    @Test
    void splitCutsTheBatchIntoConsecutiveEqualPartsAndJoinRestoresIt() {
        float[] data = new float[4 * 3];
        for (int i = 0; i < data.length; i++) {
            data[i] = i;
        }
        try (Graph graph = new Graph(); Session s = new Session(graph, SessionConfigs.cpu(1));
             TFloat32 fed = TFloat32.tensorOf(Shape.of(4, 3), DataBuffers.of(data, true, false))) {
            Ops tf = Ops.create(graph);
            Placeholder<TFloat32> x = tf.placeholder(TFloat32.class, Placeholder.shape(Shape.of(-1, 3)));
            Map<String, Operand<TFloat32>> in = new LinkedHashMap<>();
            in.put("x", x);
            List<Map<String, Operand<TFloat32>>> parts = Lanes.split(tf, in, 2);
            assertEquals(2, parts.size());
            for (Map<String, Operand<TFloat32>> p : parts) {
                assertArrayEquals(new long[]{-1, 3}, p.get("x").shape().asArray(), "a part keeps the input's static shape");
            }
            Operand<TFloat32> joined = Lanes.join(tf, parts).get("x");
            try (Result r = s.runner().feed(x, fed).fetch(parts.get(0).get("x")).fetch(parts.get(1).get("x"))
                    .fetch(joined).run()) {
                assertArrayEquals(new float[]{0, 1, 2, 3, 4, 5}, values(r, 0), "lane 0: the first half's rows");
                assertArrayEquals(new float[]{6, 7, 8, 9, 10, 11}, values(r, 1), "lane 1: the second half's rows");
                assertArrayEquals(data, values(r, 2), "joined in lane order");
            }
        }
    }

    @Test
    void lanesOnlyForBatchesThatDivideEvenlyAndWorkThatPays() {
        assertTrue(Lanes.perSessionPools(), "the process's sessions have their own thread pools");
        long sd15 = Lanes.unetWork(32, 32, 320);
        assertEquals(1, Lanes.forBatch(1, sd15, Lanes.UNET_MIN_WORK));
        assertEquals(2, Lanes.forBatch(2, sd15, Lanes.UNET_MIN_WORK));
        assertEquals(1, Lanes.forBatch(3, sd15, Lanes.UNET_MIN_WORK), "an odd batch runs in the plain graph");
        assertEquals(2, Lanes.forBatch(4, sd15, Lanes.UNET_MIN_WORK));
        assertEquals(2, Lanes.forBatch(2, Lanes.textWork(77, 768, 12), Lanes.TEXT_MIN_WORK), "CLIP-L");
        Props.with("sdserve.lanes.anySize", null, () -> {
            assertEquals(1, Lanes.forBatch(2, Lanes.unetWork(16, 16, 64), Lanes.UNET_MIN_WORK),
                    "the demo model's 16×16 latent: the plain graph");
            assertEquals(1, Lanes.forBatch(2, Lanes.textWork(77, 256, 4), Lanes.TEXT_MIN_WORK), "a small text tower");
            return null;
        });
        assertEquals(2, Lanes.forBatch(2, Lanes.unetWork(16, 16, 64), Lanes.UNET_MIN_WORK), "anySize");
        withLanes("1", () -> {
            assertEquals(1, Lanes.forBatch(2, sd15, Lanes.UNET_MIN_WORK), "-Dsdserve.lanes=1 turns lanes off");
            return null;
        });
        assertEquals(1, Props.with("sdserve.threads", "1", () -> Lanes.forBatch(2, sd15, Lanes.UNET_MIN_WORK)),
                "one thread: no lanes");
        assertEquals(2, Lanes.threadsPerLane(4, 2));
        assertEquals(1, Lanes.threadsPerLane(1, 2));
    }

    @Test
    void unetInLanesComputesWhatThePlainGraphComputes() throws Exception {
        long[] s = g.shape("unet.x");
        int h = (int) s[2], w = (int) s[3];
        List<float[]> x = List.of(g.row("unet.x", 0), g.row("unet.x", 1), g.row("unet.x", 1), g.row("unet.x", 0));
        float[] t = {999, 500, 21, 1};
        List<float[]> ctx = List.of(g.row("unet.ctx", 0), g.row("unet.ctx", 1), g.row("unet.ctx", 0),
                g.row("unet.ctx", 1));
        int before = model.graphCount();
        float[][] lanes = model.unet(x, t, ctx, h, w);
        assertEquals(before + 1, model.graphCount(), "a batch of 4 builds one graph");
        float[][] plain = withLanes("1", () -> model.unet(x, t, ctx, h, w));
        assertEquals(before + 2, model.graphCount(), "the plain graph is another");
        assertClose(plain, lanes, "UNet batch 4");
        // masked contexts (padded to one length), and DeepCache's two graphs
        int n = ctx.get(0).length / g.config().unet().crossAttentionDim(); // context tokens
        float[][] bias = new float[4][n];
        bias[1][n - 1] = -1e30f;
        bias[3][n - 2] = -1e30f;
        assertClose(withLanes("1", () -> model.unet(x, t, ctx, bias, h, w, Map.of(), null)),
                model.unet(x, t, ctx, bias, h, w, Map.of(), null), "UNet batch 4, masked contexts");
        float[][][] capLanes = model.unetDeepCache(x, t, ctx, null, null, h, w, Map.of(), null, null);
        float[][][] capPlain = withLanes("1", () -> model.unetDeepCache(x, t, ctx, null, null, h, w, Map.of(), null,
                null));
        assertClose(capPlain[0], capLanes[0], "DeepCache full step, eps");
        assertClose(capPlain[1], capLanes[1], "DeepCache full step, deep feature");
        List<float[]> deeps = new ArrayList<>();
        for (float[] d : capPlain[1]) {
            deeps.add(d);
        }
        assertClose(withLanes("1", () -> model.unetDeepCache(x, t, ctx, null, null, h, w, Map.of(), null, deeps))[0],
                model.unetDeepCache(x, t, ctx, null, null, h, w, Map.of(), null, deeps)[0], "DeepCache shallow step");
    }

    @Test
    void textEncoderInLanesComputesWhatThePlainGraphComputes() throws Exception {
        int[] flat = g.ints("te.input_ids");
        long[] s = g.shape("te.input_ids");
        int b = (int) s[0], t = (int) s[1];
        int[][] ids = new int[2 * b][t];
        for (int i = 0; i < 2 * b; i++) {
            System.arraycopy(flat, (i % b) * t, ids[i], 0, t);
        }
        ids[1][1] = ids[0][2]; // the rows differ from each other
        for (int skip : new int[]{1, 2}) {
            float[][] lanes = model.encodeTokens(ids, skip);
            float[][] plain = withLanes("1", () -> model.encodeTokens(ids, skip));
            assertClose(plain, lanes, "text encoder, clip skip " + skip);
        }
    }

    private static void assertClose(float[][] ref, float[][] got, String what) {
        assertEquals(ref.length, got.length, what + ": rows");
        for (int r = 0; r < ref.length; r++) {
            double num = 0, den = 0;
            assertEquals(ref[r].length, got[r].length, what + ": row " + r + " length");
            for (int i = 0; i < ref[r].length; i++) {
                double d = got[r][i] - ref[r][i];
                num += d * d;
                den += (double) ref[r][i] * ref[r][i];
            }
            double rel = Math.sqrt(num / Math.max(den, 1e-30));
            assertTrue(rel < 1e-5, what + ": row " + r + " relative difference " + rel);
        }
    }

    private static float[] values(Result r, int i) {
        TFloat32 t = (TFloat32) r.get(i);
        float[] out = new float[Math.toIntExact(t.shape().size())];
        t.asRawTensor().data().asFloats().read(out);
        return out;
    }

    private static <T> T withLanes(String value, java.util.function.Supplier<T> body) {
        return Props.with("sdserve.lanes", value, body);
    }
}
