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
}
