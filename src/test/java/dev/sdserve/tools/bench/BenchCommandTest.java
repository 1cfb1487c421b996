package dev.sdserve.tools.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sdserve.cli.BenchCommand;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.List;

import org.junit.jupiter.api.Test;

class BenchCommandTest {
    @Test
    void helpAndBadUsage() throws Exception {
        ByteArrayOutputStream buf = new ByteArrayOutputStream();
        PrintStream out = new PrintStream(buf, true, StandardCharsets.UTF_8);
        BenchCommand b = new BenchCommand();
        assertEquals("bench", b.name());
        assertEquals(0, b.run(List.of("--help"), out));
        assertTrue(buf.toString(StandardCharsets.UTF_8).contains("--threads"));
        assertEquals(2, b.run(List.of("--cases", "unet99"), out));
        assertEquals(2, b.run(List.of("--threads", "0"), out));
        assertEquals(2, b.run(List.of("--threads"), out));
        assertEquals(2, b.run(List.of("--bogus"), out));
    }

    @Test
    void fmaPeakIsPositiveAndNamesItsMethod() {
        FmaPeak.Peak p = FmaPeak.measure(1, 20);
        assertTrue(p.gflops() > 1, p.toString());
        assertEquals(1, p.threads());
        assertTrue(p.method().contains("gcc") || p.method().contains("fallback"), p.method());
    }

    @Test
    void aTracedRunNamesItsOpTypesWithTheirTimes() {
        // the --profile view: milliseconds per op type from TF's step stats, largest first
        try (GraphTimer g = new GraphTimer(dev.sdserve.engine.tf.SessionConfigs.cpu(1),
                List.of(org.tensorflow.ndarray.Shape.of(256, 256), org.tensorflow.ndarray.Shape.of(256, 256)),
                in -> {
                    var tf = org.tensorflow.op.Ops.create(in.get(0).env());
                    return tf.math.tanh(tf.linalg.matMul(in.get(0), in.get(1)));
                }, 3)) {
            java.util.LinkedHashMap<String, Double> byType = g.profile(1);
            assertTrue(byType.containsKey("MatMul"), byType.toString());
            assertTrue(byType.containsKey("Tanh"), byType.toString());
            assertTrue(byType.get("MatMul") > 0, byType.toString());
            List<Double> ms = List.copyOf(byType.values());
            for (int i = 1; i < ms.size(); i++) {
                assertTrue(ms.get(i - 1) >= ms.get(i), "largest first: " + byType);
            }
        }
    }

    @Test
    void busyIsTheUnionOfTheOpsTimesAndSpanFirstStartToLastEnd() {
        // ops at [0, 10), [5, 20) (overlapping: another thread), [30, 40) and [35, 36) (inside): busy 20 + 10 ms
        var stats = org.tensorflow.proto.DeviceStepStats.newBuilder();
        long[][] iv = {{30_000, 10_000}, {0, 10_000}, {5_000, 15_000}, {35_000, 1_000}};
        for (long[] a : iv) {
            stats.addNodeStats(org.tensorflow.proto.NodeExecStats.newBuilder().setNodeName("n" + a[0])
                    .setAllStartMicros(a[0]).setAllEndRelMicros(a[1]));
        }
        var md = org.tensorflow.proto.RunMetadata.newBuilder()
                .setStepStats(org.tensorflow.proto.StepStats.newBuilder().addDevStats(stats)).build();
        java.util.Map<String, Double> b = dev.sdserve.engine.tf.TfGraph.busy(md);
        assertEquals(40.0, b.get(dev.sdserve.engine.tf.TfGraph.SPAN), 1e-9);
        assertEquals(30.0, b.get(dev.sdserve.engine.tf.TfGraph.BUSY), 1e-9);
    }

    @Test
    void abPropsParseKeyValuePairsAndRestoreTheProperties() throws Exception {
        assertEquals(java.util.Map.of("sdserve.a", "1", "sdserve.b", "x=y"), EngineBench.props("sdserve.a=1, sdserve.b=x=y"));
        assertTrue(EngineBench.props("-").isEmpty());
        assertTrue(EngineBench.props("").isEmpty());
        org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class, () -> EngineBench.props("novalue"));
        System.setProperty("sdserve.test.ab", "before");
        String seen = EngineBench.withProps(java.util.Map.of("sdserve.test.ab", "inside", "sdserve.test.ab2", "2"),
                () -> System.getProperty("sdserve.test.ab") + System.getProperty("sdserve.test.ab2"));
        assertEquals("inside2", seen);
        assertEquals("before", System.getProperty("sdserve.test.ab"));
        assertEquals(null, System.getProperty("sdserve.test.ab2"));
        System.clearProperty("sdserve.test.ab");
        ByteArrayOutputStream buf = new ByteArrayOutputStream();
        assertEquals(2, new BenchCommand().run(List.of("--ab-props", "a=1"), new PrintStream(buf, true,
                StandardCharsets.UTF_8)), "A;B needs its two sides");
    }
}
