package dev.sdserve.scheduler;

import dev.sdserve.clock.Clock;
import dev.sdserve.engine.tf.TfEngine;
import dev.sdserve.job.GenerationRequest;
import dev.sdserve.job.Job;
import dev.sdserve.job.JobEvent;
import dev.sdserve.job.PreviewOptions;
import dev.sdserve.model.Checkpoint;
import dev.sdserve.model.ClipTokenizer;
import dev.sdserve.model.ModelConfig;
import dev.sdserve.testutil.Shared;
import org.junit.jupiter.api.Test;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import static org.junit.jupiter.api.Assertions.*;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;


/**
 * Guidance truncation on the real TensorFlow engine (tiny golden model): off is bit-identical to a request without
 * the option, on changes the image, and less than dropping guidance altogether does.
 */
class GuidanceCutoffEngineTest {

    private static GenerationRequest req(double guidance) {
        return GenerationRequest.ofPrompt("a red fox in the snow").withModel("tiny").withSampler("dpmpp_2m")
                .withSteps(8).withGuidance(guidance).withSeed(11L).withPreview(PreviewOptions.OFF);
    }

    private static double meanAbs(float[] a, float[] b) {
        double s = 0;
        for (int i = 0; i < a.length; i++) {
            s += Math.abs(a[i] - b[i]);
        }
        return s / a.length;
    }

    @Test
    void offIsBitIdenticalAndOnMovesTowardsTheUnguidedImage() throws Exception {
        Path file = Shared.golden("sd15-tiny").resolve("tiny-sd15.safetensors");
        ModelConfig cfg;
        try (Checkpoint c = Checkpoint.open(file)) {
            cfg = c.config();
        }
        try (TfEngine engine = new TfEngine(Map.of("tiny", file), p -> cfg, ClipTokenizer.get())) {
            Map<Job, List<float[]>> images = new IdentityHashMap<>();
            ServiceConfig sc = new ServiceConfig();
            sc.publishExecutor = Runnable::run;
            sc.imageListener = images::put;
            sc.admission.defaultModel = "tiny";
            engine.ensureLoaded("tiny");
            try (SchedulerService s = new SchedulerService(engine, sc, Clock.system())) {
                List<float[]> out = new ArrayList<>();
                for (GenerationRequest r : List.of(req(7.5), req(7.5).withGuidanceCutoff(1.0),
                        req(7.5).withGuidanceCutoff(0.5), req(1.0))) {
                    Job j = s.submit(r, false);
                    while (s.runOnce()) {
                        // run to the end
                    }
                    assertInstanceOf(JobEvent.Completed.class, j.terminalEvent(), () -> String.valueOf(j.terminalEvent()));
                    out.add(images.get(j).get(0));
                }
                float[] full = out.get(0), off = out.get(1), half = out.get(2), unguided = out.get(3);
                assertArrayEquals(full, off, "guidance_cutoff 1 = no truncation, bit for bit");
                double dHalf = meanAbs(full, half), dNone = meanAbs(full, unguided);
                assertTrue(dHalf > 0, "truncation changes the image");
                assertTrue(dHalf < dNone, "half the steps guided is closer to full guidance (" + dHalf
                        + ") than none (" + dNone + ")");
            }
        }
    }
}
