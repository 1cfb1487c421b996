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
    private static Path file;

    @FuzzTest(maxDuration = "60s")
    void openAnyBytes(FuzzedDataProvider data) throws IOException {
        if (file == null) {
            file = Files.createTempFile("fuzz", ".safetensors");
            file.toFile().deleteOnExit();
        }
        Files.write(file, data.consumeRemainingAsBytes());
        try (SafeTensors st = SafeTensors.open(file)) {
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
}
