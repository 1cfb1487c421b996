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

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;

import static org.junit.jupiter.api.Assertions.assertInstanceOf;

/**
 * Test fixture: a real engine served by a {@link SchedulerService} on the system clock, events published on the
 * scheduler's thread and each job's images kept. Runs requests alone (one after the other) or together.
 */
final class RealEngineServing implements AutoCloseable {
    /**
     * How far a request's image (floats in [0, 1]) or relative latents may move between running alone and running
     * in a batch with others: the same sums in other orders (1.3e-5 measured). The tiny model runs no per-sample
     * lanes ({@code Lanes}: below the work that pays); with lanes, alone (a guided step, batch 2) and in an odd batch
     * would run in different graphs, one thread inside each op against two, and differ by up to 1.3e-4.
     */
    static final double BATCHED_VS_SOLO = 1e-4;

    final TfEngine engine;
    final Map<Job, List<float[]>> images = new IdentityHashMap<>();
    final SchedulerService service;

    /** Serves {@code engine} with {@code model} as the default; {@code tune} adjusts the service's settings. */
    RealEngineServing(TfEngine engine, String model, Consumer<ServiceConfig> tune) {
        this.engine = engine;
        ServiceConfig sc = new ServiceConfig();
        sc.publishExecutor = Runnable::run;
        sc.imageListener = images::put;
        sc.admission.defaultModel = model;
        tune.accept(sc);
        service = new SchedulerService(engine, sc, Clock.system());
    }

    RealEngineServing(TfEngine engine, String model) {
        this(engine, model, sc -> {
        });
    }

    /** The tiny golden SD 1.5 model as "tiny" (its checkpoint's config, CLIP's tokenizer), loaded. */
    static TfEngine tinyEngine() throws IOException {
        Path file = Shared.golden("sd15-tiny").resolve("tiny-sd15.safetensors");
        ModelConfig cfg;
        try (Checkpoint c = Checkpoint.open(file)) {
            cfg = c.config();
        }
        TfEngine engine = new TfEngine(Map.of("tiny", file), p -> cfg, ClipTokenizer.get());
        engine.ensureLoaded("tiny"); // models load off the scheduler thread: runOnce() plans nothing until then
        return engine;
    }

    /** A request for the "tiny" model, previews off. */
    static GenerationRequest tinyRequest(String prompt, String sampler, int steps, double guidance, long seed) {
        return GenerationRequest.ofPrompt(prompt).withModel("tiny").withSampler(sampler).withSteps(steps)
                .withGuidance(guidance).withSeed(seed).withPreview(PreviewOptions.OFF);
    }

    /** Each request alone, one after the other, run to completion: their first images, in order. */
    List<float[]> alone(List<GenerationRequest> reqs) {
        List<float[]> out = new ArrayList<>();
        for (GenerationRequest r : reqs) {
            Job j = service.submit(r, false);
            runToTheEnd();
            out.add(imageOf(j));
        }
        return out;
    }

    /** The requests submitted at once and run to completion together. */
    Together together(List<GenerationRequest> reqs) {
        long calls0 = engine.stats().denoiseCalls.get();
        long items0 = engine.stats().denoiseItems.get();
        List<Job> jobs = new ArrayList<>();
        for (GenerationRequest r : reqs) {
            jobs.add(service.submit(r, false));
        }
        runToTheEnd();
        double meanBatch = (engine.stats().denoiseItems.get() - items0)
                / (double) (engine.stats().denoiseCalls.get() - calls0);
        return new Together(jobs.stream().map(this::imageOf).toList(), meanBatch);
    }

    /** Images of requests run together, in submission order, and the mean UNet batch (jobs per denoise call). */
    record Together(List<float[]> images, double meanBatch) {
    }

    private void runToTheEnd() {
        while (service.runOnce()) {
            // run to the end
        }
    }

    private float[] imageOf(Job j) {
        assertInstanceOf(JobEvent.Completed.class, j.terminalEvent(), () -> String.valueOf(j.terminalEvent()));
        return images.get(j).get(0);
    }

    @Override
    public void close() {
        service.close();
    }
}
