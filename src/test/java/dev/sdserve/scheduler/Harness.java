package dev.sdserve.scheduler;

import dev.sdserve.engine.CostModel;
import dev.sdserve.clock.SimClock;
import dev.sdserve.engine.fake.FakeEngine;
import dev.sdserve.job.GenerationRequest;
import dev.sdserve.job.Job;
import dev.sdserve.job.JobEvent;
import dev.sdserve.job.Mailbox;
import dev.sdserve.job.PreviewOptions;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/** Test fixtures: a fake engine with known costs on a simulated clock, events published synchronously. */
final class Harness {
    /**
     * Denoise: 40 ms + 1 ms per UNet sample; encode 5 ms; decode 10 ms + 10 ms per image; image encode 5 ms + 5 ms per
     * image; decoder preview 2 ms + 1 ms per image.
     */
    static final CostModel COSTS = (m, s, sh, b) -> switch (s) {
        case ENCODE -> 5.0;
        case DENOISE -> 40.0 + b;
        case DECODE -> 10.0 + 10.0 * b;
        case IMAGE_ENCODE -> 5.0 + 5.0 * b;
        case PREVIEW -> 2.0 + b;
    };

    final SimClock clock = new SimClock();
    final FakeEngine engine;
    final ServiceConfig config;
    SchedulerService service;

    Harness() {
        engine = new FakeEngine(new FakeEngine.Config().clock(clock).cost(COSTS));
        config = new ServiceConfig();
        config.publishExecutor = Runnable::run;
        config.costPrior = COSTS;
        config.randomSeed = () -> 42;
        config.parallelSamplerImages = 2; // exercise the parallel sampler path: results must not change
    }

    SchedulerService build() {
        service = new SchedulerService(engine, config, clock);
        return service;
    }

    void runOnce3() {
        for (int i = 0; i < 3; i++) {
            service.runOnce();
        }
    }

    /** Runs iterations until nothing is left (bounded). */
    int runAll() {
        int n = 0;
        while (service.runOnce()) {
            if (++n > 100_000) {
                throw new AssertionError("scheduler did not settle");
            }
        }
        return n;
    }

    static GenerationRequest req(String prompt, long seed, int steps) {
        return GenerationRequest.ofPrompt(prompt).withSeed(seed).withSteps(steps).withPreview(PreviewOptions.OFF);
    }

    /** Events already queued in a mailbox (publishing is synchronous in these tests). */
    static List<JobEvent> drain(Mailbox m) {
        List<JobEvent> out = new ArrayList<>();
        while (m.queued() > 0) {
            try {
                out.add(m.next().get(1, TimeUnit.SECONDS));
            } catch (Exception e) {
                throw new AssertionError(e);
            }
        }
        return out;
    }

    static JobEvent terminal(Job j) {
        JobEvent e = j.terminalEvent();
        if (e == null) {
            throw new AssertionError("job " + j.id() + " has not ended (state " + j.state() + ")");
        }
        return e;
    }

    static JobEvent.Completed completed(Job j) {
        JobEvent e = terminal(j);
        if (!(e instanceof JobEvent.Completed c)) {
            throw new AssertionError("job " + j.id() + " ended with " + e);
        }
        return c;
    }

    /** Decoded RGB pixels of a PNG (metadata chunks ignored), for comparing results by content. */
    static int[] pixels(byte[] png) {
        try {
            java.awt.image.BufferedImage img = javax.imageio.ImageIO.read(new java.io.ByteArrayInputStream(png));
            return img.getRGB(0, 0, img.getWidth(), img.getHeight(), null, 0, img.getWidth());
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }
}
