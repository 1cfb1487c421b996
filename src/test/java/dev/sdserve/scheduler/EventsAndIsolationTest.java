package dev.sdserve.scheduler;

import dev.sdserve.sampler.LibrarySamplers;
import dev.sdserve.engine.DenoiseItem;
import dev.sdserve.engine.EncodeItem;
import dev.sdserve.engine.LatentShape;
import dev.sdserve.engine.ModelInfo;
import dev.sdserve.engine.fake.FakeEngine;
import dev.sdserve.job.GenerationRequest;
import dev.sdserve.job.Job;
import dev.sdserve.job.JobEvent;
import dev.sdserve.job.JobState;
import dev.sdserve.job.Mailbox;
import dev.sdserve.job.PreviewOptions;
import dev.sdserve.job.ResolvedRequest;
import dev.sdserve.preview.Png;
import dev.sdserve.sampler.Sampler;
import dev.sdserve.sampler.SamplerState;
import org.junit.jupiter.api.Test;

import javax.imageio.ImageIO;
import java.awt.image.BufferedImage;
import java.io.ByteArrayInputStream;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

class EventsAndIsolationTest {

    @Test
    void eventOrderQueuedStartedStepsCompleted() throws Exception {
        Harness h = new Harness();
        SchedulerService s = h.build();
        Job job = s.submit(GenerationRequest.ofPrompt("a red fox").withSeed(7L).withSteps(6)
                .withPreview(new PreviewOptions(2, "png", 32)), false);
        Mailbox m = job.watch();
        List<JobEvent> ev = new java.util.ArrayList<>(Harness.drain(m));
        while (s.runOnce()) {
            ev.addAll(Harness.drain(m)); // a consumer that keeps up sees every step
        }
        ev.addAll(Harness.drain(m));
        assertInstanceOf(JobEvent.Queued.class, ev.get(0), ev.toString());
        assertInstanceOf(JobEvent.Started.class, ev.get(1));
        for (int i = 0; i < 6; i++) {
            JobEvent.Step st = assertInstanceOf(JobEvent.Step.class, ev.get(2 + i));
            assertEquals(i + 1, st.index());
            assertEquals(6, st.total());
            assertEquals(42.0, st.stepMillis(), 1e-6, "one guided image = 2 UNet samples: 40 + 2 ms");
            if ((i + 1) % 2 == 0) {
                assertNotNull(st.preview(), "preview due at step " + (i + 1));
                BufferedImage p = ImageIO.read(new ByteArrayInputStream(st.preview()));
                assertEquals(32, Math.max(p.getWidth(), p.getHeight()));
            } else {
                assertNull(st.preview(), "no preview at step " + (i + 1));
            }
        }
        JobEvent.Completed c = assertInstanceOf(JobEvent.Completed.class, ev.get(8));
        assertEquals(9, ev.size());
        assertEquals(JobState.COMPLETED, job.state());
        assertEquals(List.of(7L), c.seeds());
        BufferedImage img = ImageIO.read(new ByteArrayInputStream(c.images().get(0)));
        assertEquals(64, img.getWidth());
        assertEquals(64, img.getHeight());
        // encode 5 + 6 steps × (40 + 2) + decode 20
        assertEquals(5 + 6 * 42 + 20, c.timingsMillis().get("total"), 1e-6);
    }

    /** The image the fake engine must produce for a request, computed without the scheduler. */
    static byte[] naive(ResolvedRequest r, int image, ModelInfo info) {
        LatentShape shape = LatentShape.forImage(info, r.width(), r.height());
        return Png.encode(FakeEngine.image(info, shape, naiveState(r, image, info, Integer.MAX_VALUE).latents()), r.width(), r.height());
    }

    /** The sampler state of image {@code image} of {@code r} computed alone, after at most {@code evals} evaluations. */
    static SamplerState naiveState(ResolvedRequest r, int image, ModelInfo info, int evals) {
        EncodeItem ci = new EncodeItem(r.prompt(), r.clipSkip(), r.loras());
        float[] cond = FakeEngine.conditioning(info, ci);
        boolean guided = r.guidance() > 1;
        float[] uncond = guided ? FakeEngine.conditioning(info, new EncodeItem(r.negativePrompt(), r.clipSkip(), r.loras())) : null;
        LatentShape shape = LatentShape.forImage(info, r.width(), r.height());
        dev.sdserve.sampler.TorchGenerator noise = new dev.sdserve.sampler.TorchGenerator(r.seedOf(image));
        float[] init = new float[shape.size()];
        noise.fill(init);
        Sampler sampler = new LibrarySamplers().find(r.sampler());
        SamplerState st = sampler.start(r.steps(), init, noise);
        while (!st.done() && st.evaluation() < evals) {
            st.advance(FakeEngine.eps(new DenoiseItem(st.modelInput(), st.timestep(), cond, uncond, r.guidance(), r.loras())));
        }
        return st;
    }

    @Test
    void concurrentRequestsShareUnetCallsAndEachGetsItsOwnResult() {
        Harness h = new Harness();
        SchedulerService s = h.build();
        GenerationRequest a = Harness.req("a lighthouse at dusk", 11, 8).withSampler("euler_a").withGuidance(7.5);
        GenerationRequest b = Harness.req("a bowl of cherries", 12, 5).withSampler("euler").withGuidance(3.0)
                .withSize(96, 64);
        GenerationRequest c = Harness.req("a cat", 13, 12).withSampler("euler").withGuidance(1.0);
        GenerationRequest d = new GenerationRequest("two dogs", "blurry", null, null, null, null, 7, "euler_a", 9.0,
                100L, null, 3, PreviewOptions.OFF, null, null, null, null, null);
        Job ja = s.submit(a, false);
        Job jb = s.submit(b, false);
        Job jc = s.submit(c, false);
        Job jd = s.submit(d, false);
        h.runAll();
        ModelInfo info = h.engine.describe("embedded");
        for (Job j : List.of(ja, jb, jc, jd)) {
            JobEvent.Completed done = Harness.completed(j);
            assertEquals(j.request().images(), done.images().size());
            for (int i = 0; i < j.request().images(); i++) {
                assertArrayEquals(Harness.pixels(naive(j.request(), i, info)), Harness.pixels(done.images().get(i)),
                        "image " + i + " of " + j.request().prompt() + " differs from the same request computed alone");
            }
        }
        assertEquals(List.of(100L, 101L, 102L), Harness.completed(jd).seeds());
        // a, c and d share the 64x64 bucket; b (96x64) runs in its own. Shared calls => mean batch > 1.
        assertTrue(h.engine.stats().meanDenoiseBatch() > 1.5, "mean batch " + h.engine.stats().meanDenoiseBatch());
        assertTrue(h.engine.stats().denoiseCalls.get() < 8 + 5 + 12 + 7, "calls " + h.engine.stats().denoiseCalls.get());
    }

    @Test
    void resultEqualsResultWhenRunAlone() {
        GenerationRequest a = Harness.req("alone or together", 5, 10).withSampler("euler_a");
        Harness alone = new Harness();
        Job j1 = alone.build().submit(a, false);
        alone.runAll();
        Harness together = new Harness();
        SchedulerService s = together.build();
        s.submit(Harness.req("noise neighbour", 6, 4), false);
        together.runOnce3();
        Job j2 = s.submit(a, false);
        s.submit(Harness.req("another neighbour", 7, 20).withGuidance(12.0), false);
        together.runAll();
        assertArrayEquals(Harness.pixels(Harness.completed(j1).images().get(0)), Harness.pixels(Harness.completed(j2).images().get(0)));
        assertTrue(together.engine.stats().meanDenoiseBatch() > 1.2);
    }
}
