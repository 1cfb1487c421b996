package dev.sdserve.tools.simulate;

import dev.sdserve.cli.SimulateCommand;
import dev.sdserve.testutil.Shared;
import org.junit.jupiter.api.Test;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.*;

class SimulatorTest {
    private static Path costs() {
        return Shared.dir().resolve("gpu/h200-sd15-step-costs.json");
    }

    @Test
    void costTableInterpolatesBetweenMeasuredBatches() throws Exception {
        GpuCostTable t = GpuCostTable.load(costs(), "eager_sdpa");
        assertEquals(39.89, t.unetMillis(1), 1e-9);
        assertEquals((41.85 + 41.31) / 2, t.unetMillis(3), 1e-9);
        assertEquals(52.05 + (95.93 - 52.05) * 8 / 16, t.unetMillis(24), 1e-9);
        assertEquals(184.08 + (184.08 - 95.93) / 32 * 64, t.unetMillis(128), 1e-9, "linear beyond the table");
        assertEquals(22.7 + (62.24 - 22.7) / 3, t.decodeMillis(2), 1e-9);
        assertEquals(6.75, t.encodeMillis(2), 1e-9);
        assertEquals(6.75 + 20 * 41.85 + 22.7, t.isolatedMillis(20), 1e-9);
        GpuCostTable c = GpuCostTable.load(costs(), "torch_compile_cudagraphs");
        assertEquals(8.4, c.unetMillis(1), 1e-9, "flat below the smallest measured batch");
        assertEquals(8.4 + (35.87 - 8.4) * 6 / 14, c.unetMillis(8), 1e-9);
        assertEquals(22.7, c.decodeMillis(1), 1e-9, "decode from the eager table");
    }

    @Test
    void baselinesOnHandComputedTraces() throws Exception {
        GpuCostTable t = GpuCostTable.load(costs(), "eager_sdpa");
        Simulator sim = new Simulator(t, 20, 50);
        double iso20 = t.isolatedMillis(20);
        List<Simulator.Arrival> trace = List.of(new Simulator.Arrival(0, 20, 1e9), new Simulator.Arrival(100, 30, 1e9));
        Simulator.Result f = sim.runFcfs(trace);
        assertEquals(iso20, f.latencies()[0], 1e-9);
        assertEquals(iso20 + t.isolatedMillis(30) - 100, f.latencies()[1], 1e-9);

        // dynamic, max batch 2: dispatched when the second arrives (t = 100); steps 1..20 with 4 UNet samples,
        // 21..30 with 2; both results at the end.
        Simulator.Result d = sim.runDynamic(trace, 2, 200);
        double end = 100 + t.encodeMillis(4) + 20 * t.unetMillis(4) + 10 * t.unetMillis(2) + t.decodeMillis(2);
        assertEquals(end, d.latencies()[0], 1e-9);
        assertEquals(end - 100, d.latencies()[1], 1e-9);
        assertEquals(30.0 / 30 * (20 * 2 + 10) / 30, d.meanBatch(), 1e-9);
        // window 50 ms: the first goes alone at t = 50, the second waits for it
        Simulator.Result d2 = sim.runDynamic(trace, 2, 50);
        double end1 = 50 + iso20;
        assertEquals(end1, d2.latencies()[0], 1e-9);
        assertEquals(end1 + t.isolatedMillis(30) - 100, d2.latencies()[1], 1e-9);

        // sd-serve alone on an idle machine: the isolated latency
        Simulator.Result s = sim.runSdServe(List.of(new Simulator.Arrival(0, 20, 1e6))); // a generous deadline (admission caps them at 7 days)
        assertEquals(iso20, s.latencies()[0], 0.01);
    }

    @Test
    void tokenMergingCostsTheFactorAtTheTablesSize() throws Exception {
        GpuCostTable t = GpuCostTable.load(costs(), "eager_sdpa");
        // the table was timed at 512² (64×64 latents); the simulated requests run on 8×8 stand-ins
        double f = dev.sdserve.engine.TokenMerging.costFactor(0.5, new dev.sdserve.engine.LatentShape(4, 64, 64));
        assertTrue(f < 1, "ratio 0.5 at 4096 tokens is cheaper: " + f);
        dev.sdserve.engine.LatentShape standIn = new dev.sdserve.engine.LatentShape(4, 8, 8);
        assertEquals(f, t.tokenMergingFactor("sd15", standIn, 0.5), 1e-12);
        assertEquals(f, new dev.sdserve.scheduler.OnlineCostModel(t).tokenMergingFactor("sd15", standIn, 0.5), 1e-12,
                "the scheduler's learned model answers with its prior's factor");
        Simulator sim = new Simulator(t, 20, 50);
        sim.requestOption = r -> r.withTokenMerging(0.5);
        Simulator.Result s = sim.runSdServe(List.of(new Simulator.Arrival(0, 20, 1e6)));
        assertEquals(t.encodeMillis(2) + 20 * t.unetMillis(2) * f + t.decodeMillis(1), s.latencies()[0], 0.01);
    }

    @Test
    void simulateCommandPrintsTheComparison() throws Exception {
        ByteArrayOutputStream buf = new ByteArrayOutputStream();
        int code = new SimulateCommand().run(List.of("--costs", costs().toString(), "--table", "eager", "--slo", "3",
                "--requests", "150"), new PrintStream(buf, true, StandardCharsets.UTF_8));
        String out = buf.toString(StandardCharsets.UTF_8);
        System.out.print(out);
        assertEquals(0, code);
        String[] lines = out.strip().split("\n");
        Matcher m = Pattern.compile("simulate: goodput_vs_fcfs=([0-9.]+) goodput_vs_dynamic=([0-9.]+)").matcher(lines[lines.length - 1]);
        assertTrue(m.matches(), lines[lines.length - 1]);
        assertTrue(Double.parseDouble(m.group(1)) >= 4, "vs fcfs " + m.group(1));
        assertTrue(Double.parseDouble(m.group(2)) >= 1.5, "vs dynamic " + m.group(2));
        assertTrue(out.contains("sdserve") && out.contains("fcfs") && out.contains("dynamic"));
        assertEquals(2, new SimulateCommand().run(List.of("--table", "gpu"), new PrintStream(new ByteArrayOutputStream())));
    }
}
