package dev.sdserve.scheduler;

import dev.sdserve.engine.Stage;
import dev.sdserve.clock.Clock;
import dev.sdserve.engine.ModelInfo;
import dev.sdserve.engine.fake.FakeEngine;
import dev.sdserve.job.GenerationRequest;
import dev.sdserve.job.Job;
import dev.sdserve.job.JobEvent;
import dev.sdserve.job.JobState;
import dev.sdserve.job.Mailbox;
import dev.sdserve.job.PreviewOptions;
import dev.sdserve.job.ServeException;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.*;

/** Backpressure, draining, engine failures and the threaded service. */
class ServiceBehaviourTest {

    @Test
    void slowConsumerConflatesPreviewsKeepsEveryStepAndNeverStallsTheBatch() {
        Harness h = new Harness();
        h.config.stalledWatcherMillis = 0; // this test is about conflation only
        SchedulerService s = h.build();
        Job slow = s.submit(Harness.req("slow watcher", 1, 12).withPreview(new PreviewOptions(1, "jpeg", 32)), false);
        Job fast = s.submit(Harness.req("fast watcher", 2, 12), false);
        Mailbox lazy = slow.watch(); // never reads until the end
        Mailbox eager = fast.watch();
        int fastSteps = 0;
        while (s.runOnce()) {
            for (JobEvent e : Harness.drain(eager)) {
                if (e instanceof JobEvent.Step) {
                    fastSteps++;
                }
            }
        }
        assertEquals(12, fastSteps);
        assertEquals(12, h.engine.stats().denoiseCalls.get(), "both jobs shared every step: nobody waited");
        List<JobEvent> got = Harness.drain(lazy);
        // Queued, Started, every step (only the latest keeps its preview), Completed.
        assertEquals(15, got.size(), got.toString());
        for (int i = 1; i <= 12; i++) {
            JobEvent.Step st = assertInstanceOf(JobEvent.Step.class, got.get(i + 1));
            assertEquals(i, st.index());
            assertEquals(i < 12, st.previewDropped(), "step " + i);
        }
        JobEvent.Step last = assertInstanceOf(JobEvent.Step.class, got.get(13));
        assertEquals(12, last.index());
        assertNotNull(last.preview());
        assertEquals("jpeg", last.previewFormat());
        assertEquals(0xFF, last.preview()[0] & 0xFF, "JPEG magic");
        assertEquals(0xD8, last.preview()[1] & 0xFF);
        assertInstanceOf(JobEvent.Completed.class, got.get(14));
        assertTrue(lazy.conflated() >= 10, "conflated " + lazy.conflated());
    }

    @Test
    void stalledWatcherCancelsAnAttachedJobButNotADetachedOne() throws Exception {
        Harness h = new Harness();
        h.config.stalledWatcherMillis = 30;
        SchedulerService s = h.build();
        Job attached = s.submit(Harness.req("attached", 1, 50), false);
        Job detached = s.submit(Harness.req("detached", 2, 50), true);
        Mailbox a = attached.watch();
        Mailbox d = detached.watch();
        s.runOnce();
        s.runOnce();
        Thread.sleep(60); // real time: neither watcher takes its events
        s.runOnce();
        assertEquals(JobState.CANCELLED, attached.state());
        JobEvent.Ended end = assertInstanceOf(JobEvent.Ended.class, attached.terminalEvent());
        assertTrue(end.error().getMessage().contains("consumer"), end.error().getMessage());
        assertEquals(1, s.stats().stalledWatchersCancelled.get());
        assertEquals(JobState.DENOISING, detached.state());
        a.close();
        d.close();
        h.runAll();
        Harness.completed(detached);
    }

    @Test
    void drainStopsAdmittingFinishesWhatItCanThenCancelsTheRest() {
        Harness h = new Harness();
        SchedulerService s = h.build();
        Job shortJob = s.submit(Harness.req("short", 1, 3), false);
        Job longJob = s.submit(Harness.req("long", 2, 100), false);
        int cancelled = s.drain(1000); // simulated ms: enough for the short one (~150 ms), not the long (~4 s)
        assertEquals(1, cancelled);
        Harness.completed(shortJob);
        JobEvent.Ended end = assertInstanceOf(JobEvent.Ended.class, longJob.terminalEvent());
        assertEquals(JobState.CANCELLED, end.state());
        assertEquals(ServeException.Code.UNAVAILABLE, end.error().code());
        assertTrue(end.error().getMessage().contains("drain"), end.error().getMessage());
        ServeException e = assertThrows(ServeException.class, () -> s.submit(Harness.req("late", 3, 3), false));
        assertEquals(ServeException.Code.UNAVAILABLE, e.code());
    }

    @Test
    void aPoisonousRequestFailsAloneAndTheOthersComplete() {
        Harness h = new Harness();
        SchedulerService s = h.build();
        List<Job> good = new ArrayList<>();
        for (int i = 0; i < 3; i++) {
            good.add(s.submit(Harness.req("good " + i, i, 6), false));
        }
        Job bad = s.submit(Harness.req("bad <poison>", 9, 6), false);
        for (int i = 3; i < 5; i++) {
            good.add(s.submit(Harness.req("good " + i, i, 6), false));
        }
        h.runAll();
        JobEvent.Ended end = assertInstanceOf(JobEvent.Ended.class, bad.terminalEvent());
        assertEquals(JobState.FAILED, end.state());
        assertEquals(ServeException.Code.INTERNAL, end.error().code());
        assertTrue(end.error().getMessage().contains("poisoned"), end.error().getMessage());
        ModelInfo info = h.engine.describe("embedded");
        for (Job j : good) {
            assertArrayEquals(Harness.pixels(EventsAndIsolationTest.naive(j.request(), 0, info)), Harness.pixels(Harness.completed(j).images().get(0)));
        }
        assertTrue(s.stats().splitRetries.get() >= 1);
        assertEquals(1, s.stats().failed.get());
    }

    @Test
    void threadedServiceOnTheSystemClock() throws Exception {
        FakeEngine engine = new FakeEngine(new FakeEngine.Config().cost((m, st, sh, b) -> st == Stage.DENOISE ? 2.0 : 1.0));
        ServiceConfig cfg = new ServiceConfig();
        try (SchedulerService s = new SchedulerService(engine, cfg, Clock.system())) {
            s.start();
            List<Job> jobs = new ArrayList<>();
            List<Mailbox> boxes = new ArrayList<>();
            for (int i = 0; i < 4; i++) {
                Job j = s.submit(GenerationRequest.ofPrompt("threaded " + i).withSteps(10 + i), false);
                jobs.add(j);
                boxes.add(j.watch());
            }
            for (int i = 0; i < 4; i++) {
                JobEvent e;
                List<Class<?>> kinds = new ArrayList<>();
                do {
                    e = boxes.get(i).next().get(10, TimeUnit.SECONDS);
                    kinds.add(e.getClass());
                } while (!Job.isTerminal(e));
                JobEvent.Completed c = assertInstanceOf(JobEvent.Completed.class, e);
                assertEquals(1, c.images().size());
                assertTrue(c.seeds().get(0) >= 0 && c.seeds().get(0) <= 0xFFFFFFFFL);
                assertEquals(JobEvent.Started.class, kinds.contains(JobEvent.Queued.class) ? kinds.get(1) : kinds.get(0));
            }
            assertTrue(engine.stats().meanDenoiseBatch() > 1, "mean batch " + engine.stats().meanDenoiseBatch());
        }
    }
}
