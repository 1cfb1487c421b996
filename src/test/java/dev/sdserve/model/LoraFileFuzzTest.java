package dev.sdserve.model;

import com.code_intelligence.jazzer.api.FuzzedDataProvider;
import com.code_intelligence.jazzer.junit.FuzzTest;
import org.junit.jupiter.api.AfterAll;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Fuzzes the kohya LoRA parser ({@link LoraFile#open} onto an SD 1.x architecture, then {@link LoraFile#delta} of
 * every module): any input must either open, with every module's delta shaped like its target weight and finite, or
 * fail with an {@link IOException} (a {@link CheckpointException} or {@link SafeTensorsException} naming the
 * problem); never another exception, a crash or an unbounded allocation.
 *
 * <p>Half of the inputs are raw file bytes; the other half build a LoRA from real kohya module names of the
 * architecture, with shapes, ranks, dtypes, alphas and values chosen by the fuzzer (right, or wrong in one of several
 * ways), so that the fuzzer reaches the mapping and merging code and not only the JSON header. Without JAZZER_FUZZ
 * the seeds in src/test/resources/dev/sdserve/model/LoraFileFuzzTestInputs run as a regression test.
 */
class LoraFileFuzzTest {
    // the embedded tiny SD 1.x architecture: every SD 1.x module name, small weights (fast merges, many executions)
    private static final ModelConfig CFG = EmbeddedModel.CONFIG;
    private static final List<String> MODULES = new ArrayList<>(new java.util.TreeSet<>(LdmNames.kohyaTargets(CFG).keySet()));
    private static final Map<String, long[]> LAYOUT = CheckpointLayout.shapes(CheckpointLayout.weights(CFG, DType.F32));
    private static final Map<String, String> TARGETS = LdmNames.kohyaTargets(CFG);
    private static final DType[] DTYPES = {DType.F32, DType.F16, DType.BF16};
    private static final AtomicLong RUNS = new AtomicLong(), OPENED = new AtomicLong();
    private static final long START = System.nanoTime();
    private static Path file;

    @FuzzTest(maxDuration = "30s")
    void openAnyLora(FuzzedDataProvider data) throws IOException {
        RUNS.incrementAndGet();
        if (file == null) {
            file = Files.createTempFile("fuzz-lora", ".safetensors");
            file.toFile().deleteOnExit();
        }
        if (!data.consumeBoolean()) {
            Files.write(file, data.consumeRemainingAsBytes());
        } else {
            structured(data).write(file);
        }
        double scale = 0.8;
        try (LoraFile lora = LoraFile.open(file, CFG)) {
            OPENED.incrementAndGet();
            for (LoraFile.Module m : lora.modules()) {
                long n = 1;
                for (long d : m.targetShape()) {
                    n *= d;
                }
                if (m.rank() <= 0 || !Double.isFinite(m.alpha())) {
                    throw new AssertionError("module " + m.name() + " opened with rank " + m.rank() + ", alpha " + m.alpha());
                }
                float[] delta;
                try {
                    delta = lora.delta(m, scale);
                } catch (IOException refused) {
                    continue; // non-finite weights or an overflowing product: refused with a message
                }
                if (delta.length != n) {
                    throw new AssertionError("delta of " + m.name() + " has " + delta.length + " values, target " + n);
                }
                for (float v : delta) {
                    if (!Float.isFinite(v)) {
                        throw new AssertionError("delta of " + m.name() + " is not finite: a NaN/Inf would reach the model");
                    }
                }
            }
        } catch (IOException expected) {
            // a clear refusal is the right outcome for a malformed or foreign LoRA
        }
    }

    /** A LoRA of 1..4 modules with fuzzer-chosen names, shapes (right or wrong), dtypes, alphas and values. */
    private static SafeTensorsWriter structured(FuzzedDataProvider data) {
        SafeTensorsWriter w = new SafeTensorsWriter();
        int modules = data.consumeInt(1, 4);
        for (int i = 0; i < modules; i++) {
            int pick = data.consumeInt(0, 9);
            String module = pick == 0 ? "lora_" + data.consumeAsciiString(40)
                    : pick == 1 ? "lora_te1_text_model_encoder_layers_0_mlp_fc1" // SDXL
                    : MODULES.get(data.consumeInt(0, MODULES.size() - 1));
            String target = TARGETS.get(module);
            long[] t = target == null ? new long[]{data.consumeInt(1, 64), data.consumeInt(1, 64)} : LAYOUT.get(target);
            int rank = data.consumeInt(1, 4);
            long out = t[0], in = t.length > 1 ? t[1] : 1;
            long k = t.length == 4 ? t[2] : 1;
            long[] down = k == 1 ? new long[]{rank, in} : new long[]{rank, in, k, k};
            long[] up = new long[]{out, rank};
            switch (data.consumeInt(0, 7)) {
                case 1 -> up = new long[]{out, rank + 1}; // ranks disagree
                case 2 -> down = new long[]{rank, in + 1}; // wrong input width
                case 3 -> up = new long[]{out + 8, rank}; // wrong output width
                case 4 -> {
                    down = new long[]{rank, in, 1, 1}; // conv shapes on any weight
                    up = new long[]{out, rank, 1, 1};
                }
                case 5 -> down = new long[]{rank}; // a vector
                case 6 -> up = null; // lora_up missing
                default -> {
                }
            }
            DType dt = DTYPES[data.consumeInt(0, DTYPES.length - 1)];
            w.add(module + ".lora_down.weight", dt, down, values(data, down));
            if (up != null) {
                w.add(module + ".lora_up.weight", dt, up, values(data, up));
            }
            switch (data.consumeInt(0, 3)) {
                case 0 -> w.add(module + ".alpha", DType.F32, new long[]{}, new float[]{data.consumeFloat()});
                case 1 -> w.add(module + ".alpha", DType.F32, new long[]{2}, new float[]{1, 2});
                case 2 -> w.add(module + ".hada_w1_a", DType.F32, new long[]{1}, new float[]{1}); // LoHa
                default -> {
                }
            }
        }
        return w;
    }

    /** A few fuzzer floats (NaN, ±Inf, huge, tiny included), repeated over the tensor. */
    private static float[] values(FuzzedDataProvider data, long[] shape) {
        long n = 1;
        for (long d : shape) {
            n *= d;
        }
        float[] base = new float[data.consumeInt(1, 4)];
        for (int i = 0; i < base.length; i++) {
            base[i] = data.consumeBoolean() ? data.consumeFloat() : data.consumeInt(-64, 64) / 16f;
        }
        float[] v = new float[(int) n];
        for (int i = 0; i < v.length; i++) {
            v[i] = base[i % base.length];
        }
        return v;
    }

    /** Entry point of the standalone Jazzer driver (scripts/fuzz.sh): the same body as the JUnit fuzz test. */
    public static void fuzzerTestOneInput(FuzzedDataProvider data) throws IOException {
        new LoraFileFuzzTest().openAnyLora(data);
    }

    @AfterAll
    static void report() {
        System.out.printf("LoraFileFuzzTest: %d executions (%d opened) in %.1f s%n", RUNS.get(), OPENED.get(),
                (System.nanoTime() - START) / 1e9);
    }
}
