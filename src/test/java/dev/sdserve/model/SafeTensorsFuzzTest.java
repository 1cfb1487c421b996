package dev.sdserve.model;

import com.code_intelligence.jazzer.api.FuzzedDataProvider;
import com.code_intelligence.jazzer.junit.FuzzTest;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Fuzzes the safetensors parser: any byte string must either open (and then every tensor reads) or fail with a
 * {@link SafeTensorsException}; never another exception, a crash or an unbounded allocation. Without JAZZER_FUZZ
 * the seed corpus in src/test/resources/dev/sdserve/model/SafeTensorsFuzzTestInputs runs as a regression test;
 * `scripts/fuzz.sh` fuzzes for a given time.
 */
class SafeTensorsFuzzTest {
    private static final java.util.concurrent.atomic.AtomicLong RUNS = new java.util.concurrent.atomic.AtomicLong();
    private static final java.util.concurrent.atomic.AtomicLong OPENED = new java.util.concurrent.atomic.AtomicLong();
    private static final long START = System.nanoTime();
    private static Path file;

    @FuzzTest(maxDuration = "30s")
    void openAnyBytes(FuzzedDataProvider data) throws IOException {
        RUNS.incrementAndGet();
        if (file == null) {
            file = Files.createTempFile("fuzz", ".safetensors");
            file.toFile().deleteOnExit();
        }
        Files.write(file, data.consumeRemainingAsBytes());
        try (SafeTensors st = SafeTensors.open(file)) {
            OPENED.incrementAndGet();
            for (SafeTensors.TensorInfo t : st.tensors().values()) {
                if (t.elements() > 1 << 20) {
                    continue;
                }
                if (t.dtype().floating()) {
                    st.floats(t.name());
                } else if (t.dtype() != DType.I64) {
                    st.ints(t.name());
                }
            }
        } catch (SafeTensorsException expected) {
            // a clear refusal is the right outcome for a malformed file
        }
    }

    /** Entry point of the standalone Jazzer driver (scripts/fuzz.sh): the same body as the JUnit fuzz test. */
    public static void fuzzerTestOneInput(FuzzedDataProvider data) throws IOException {
        new SafeTensorsFuzzTest().openAnyBytes(data);
    }

    @org.junit.jupiter.api.AfterAll
    static void report() {
        System.out.printf("SafeTensorsFuzzTest: %d executions (%d opened) in %.1f s%n", RUNS.get(), OPENED.get(),
                (System.nanoTime() - START) / 1e9);
    }
}
