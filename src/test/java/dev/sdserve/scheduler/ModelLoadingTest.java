package dev.sdserve.scheduler;

import dev.sdserve.engine.Stage;
import dev.sdserve.clock.Clock;
import dev.sdserve.job.GenerationRequest;
import dev.sdserve.job.Job;
import dev.sdserve.job.JobEvent;
import dev.sdserve.job.JobState;
import dev.sdserve.job.ServeException;
import dev.sdserve.job.SloClass;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.function.BooleanSupplier;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Models load off the scheduler thread: a cold model's load never stalls another model's steps, its jobs wait
 * (deadlines counting) and start when it is resident; failed or timed-out loads end only the jobs waiting for that
 * model and open its circuit breaker. Fake engine on a simulated clock (loads complete when simulated time reaches
 * their end, which other models' steps move), except the timeout/breaker cases, which SmallRye runs in real time.
 */
class ModelLoadingTest {

    /** One engine call: model, stage, simulated start (ms). */
    record Call(String model, Stage stage, double atMs) {
    }

    static Harness harness(List<Call> calls) {
        Harness h = new Harness();
        h.engine.config().models(8, 64, "a", "b");
        h.engine.config().cost((m, s, sh, b) -> {
            calls.add(new Call(m, s, h.clock.nanoTime() / 1e6));
            return Harness.COSTS.predictMillis(m, s, sh, b);
        });
        return h;
    }

    static GenerationRequest req(Harness h, String model, int steps, long deadlineMs) {
        return Harness.req("p-" + model, 1, steps).withModel(model)
                .withDeadline(SloClass.STANDARD, h.clock.currentTimeMillis() + deadlineMs, false);
    }

    static void awaitReal(BooleanSupplier c, String what) {
        long end = System.currentTimeMillis() + 10_000;
        while (!c.getAsBoolean()) {
            if (System.currentTimeMillis() > end) {
                throw new AssertionError("timed out waiting for " + what);
            }
            try {
                Thread.sleep(1);
            } catch (InterruptedException e) {
                throw new AssertionError(e);
            }
        }
    }

    /** Runs iterations; when nothing is runnable (all waiting for a load) lets 5 ms of simulated time pass. */
    static void runUntil(Harness h, BooleanSupplier done) {
        for (int i = 0; i < 200_000 && !done.getAsBoolean(); i++) {
            if (!h.service.runOnce()) {
                h.clock.advanceMillis(5);
                Thread.yield();
            }
        }
        assertTrue(done.getAsBoolean(), "did not settle");
    }

    @Test
    void coldModelLoadsWhileAnotherModelKeepsSteppingThenTheyInterleave() {
        List<Call> calls = Collections.synchronizedList(new ArrayList<>());
        Harness h = harness(calls);
        h.engine.config().cold("b", 3000);
        h.build();
        assertTrue(h.engine.isResident("a"));
        assertTrue(!h.engine.isResident("b"));
        Job a = h.service.submit(req(h, "a", 120, 60_000), false);
        Job b = h.service.submit(req(h, "b", 20, 60_000), false);
        // the submission started b's load on the loader thread (simulated time has not moved)
        awaitReal(() -> h.engine.loadsStarted.containsKey("b"), "b's load to start");
        assertEquals(0.0, h.clock.nanoTime() / 1e6);
        runUntil(h, () -> a.terminalEvent() != null && b.terminalEvent() != null);
        Harness.completed(a);
        Harness.completed(b);
        assertEquals(1, h.engine.loadsStarted.get("b"), "one load");

        List<Call> denoise = calls.stream().filter(c -> c.stage() == Stage.DENOISE).toList();
        List<Call> aSteps = denoise.stream().filter(c -> c.model().equals("a")).toList();
        Call firstB = calls.stream().filter(c -> c.model().equals("b")).findFirst().orElseThrow();
        // a's steps went on during b's 3 s load, back to back (41-42 ms each: no stall)
        long aDuringLoad = aSteps.stream().filter(c -> c.atMs() < 3000).count();
        assertTrue(aDuringLoad >= 60, "a stepped " + aDuringLoad + " times during b's load");
        for (int i = 1; i < aSteps.size() && aSteps.get(i).atMs() < 3000; i++) {
            double gap = aSteps.get(i).atMs() - aSteps.get(i - 1).atMs();
            assertTrue(gap <= 42 + 1e-9, "gap " + gap + " ms between a's steps at " + aSteps.get(i).atMs());
        }
        // b started as soon as its load completed (not before; within one step of it)
        assertTrue(firstB.atMs() >= 3000 && firstB.atMs() <= 3000 + 42 + 5, "b's first call at " + firstB.atMs());
        // then the two models' steps interleave (each switches many times while both denoise)
        double bEnd = denoise.stream().filter(c -> c.model().equals("b")).mapToDouble(Call::atMs).max().orElseThrow();
        int switches = 0;
        String prev = null;
        for (Call c : denoise) {
            if (c.atMs() >= 3000 && c.atMs() <= bEnd) {
                if (prev != null && !prev.equals(c.model())) {
                    switches++;
                }
                prev = c.model();
            }
        }
        assertTrue(switches >= 10, "steps of a and b interleaved " + switches + " times");
    }

    @Test
    void admissionCountsTheLoadTimeAndAWaitingJobsDeadlineStillCounts() {
        List<Call> calls = Collections.synchronizedList(new ArrayList<>());
        Harness h = harness(calls);
        h.engine.config().cold("b", 5000);
        h.build();
        // 20 steps take ~1 s: fine on a resident model, impossible behind a 5 s load
        ServeException refused = assertThrows(ServeException.class, () -> h.service.submit(req(h, "b", 20, 3000), false));
        assertEquals(ServeException.Code.RESOURCE_EXHAUSTED, refused.code(), refused.getMessage());
        assertNotNull(h.service.submit(req(h, "a", 20, 3000), false));
        // a job admitted with a deadline the load then misses (load slower than predicted) ends DEADLINE_EXCEEDED
        h.engine.config().cold("b", 12_000); // the load turns out slower than the 5 s predicted
        h.engine.config().predictedLoadMillis.put("b", 5000.0);
        Job slow = h.service.submit(req(h, "b", 2, 9000), false);
        awaitReal(() -> h.engine.loadsStarted.containsKey("b"), "b's load to start");
        runUntil(h, () -> slow.terminalEvent() != null);
        JobEvent.Ended e = assertInstanceOf(JobEvent.Ended.class, slow.terminalEvent());
        assertEquals(ServeException.Code.DEADLINE_EXCEEDED, e.error().code());
        assertTrue(e.error().getMessage().contains("waiting for model 'b' to load"), e.error().getMessage());
    }

    @Test
    void failedLoadEndsOnlyItsWaitingJobsAndTheOpenBreakerRefusesFast() throws Exception {
        List<Call> calls = Collections.synchronizedList(new ArrayList<>());
        Harness h = harness(calls);
        h.engine.config().cold("b", 500).failLoads("b", "header of b.safetensors is truncated");
        h.config.loadBreakerDelayMillis = 400;
        h.build();
        Job a = h.service.submit(req(h, "a", 40, 60_000), false);
        Job b1 = h.service.submit(req(h, "b", 10, 60_000), false);
        Job b2 = h.service.submit(req(h, "b", 10, 60_000), false);
        runUntil(h, () -> a.terminalEvent() != null && b1.terminalEvent() != null && b2.terminalEvent() != null);
        Harness.completed(a);
        for (Job b : List.of(b1, b2)) {
            JobEvent.Ended e = assertInstanceOf(JobEvent.Ended.class, b.terminalEvent());
            assertEquals(JobState.FAILED, e.state());
            assertEquals(ServeException.Code.FAILED_PRECONDITION, e.error().code());
            assertTrue(e.error().getMessage().contains("b.safetensors") && e.error().getMessage().contains("truncated"),
                    e.error().getMessage());
        }
        assertEquals(1, h.engine.loadsStarted.get("b"), "the two waiting jobs shared one load");
        // breaker open: refused at once with a retry hint, no new load
        ServeException fast = assertThrows(ServeException.class, () -> h.service.submit(req(h, "b", 10, 60_000), false));
        assertEquals(ServeException.Code.UNAVAILABLE, fast.code());
        assertNotNull(fast.retryAfterMillis());
        assertTrue(fast.retryAfterMillis() > 0 && fast.retryAfterMillis() <= 400, "retry after " + fast.retryAfterMillis());
        assertTrue(fast.getMessage().contains("truncated"), fast.getMessage());
        assertEquals("open", h.service.loader().status("b").breaker());
        assertEquals(1, h.engine.loadsStarted.get("b"));
        // after the delay (real time) the next request is admitted and its load is the trial; the file is fixed now
        Thread.sleep(450);
        h.engine.config().loadFailures.remove("b");
        assertNull(h.service.loader().refusal("b"));
        Job b3 = h.service.submit(req(h, "b", 10, 60_000), false);
        runUntil(h, () -> b3.terminalEvent() != null);
        Harness.completed(b3);
        assertEquals(2, h.engine.loadsStarted.get("b"));
        // the successful trial load closes the breaker (its completion is reported on the loader's thread)
        awaitReal(() -> h.service.loader().status("b").breaker().equals("closed"), "the breaker to close");
    }

    @Test
    void loadTimeoutEndsWaitingJobsWithUnavailableAndOpensTheBreaker() throws Exception {
        // real clock: SmallRye's timeout runs in real time
        Harness h = new Harness();
        dev.sdserve.engine.fake.FakeEngine fake = new dev.sdserve.engine.fake.FakeEngine(new dev.sdserve.engine.fake.FakeEngine.Config()
                .models(8, 64, "a", "b").cold("b", 3000).clock(Clock.system()));
        h.config.loadTimeoutMillis = 150;
        h.config.loadBreakerDelayMillis = 60_000;
        h.config.costPrior = (m, s, sh, b) -> 1.0;
        try (SchedulerService svc = new SchedulerService(fake, h.config, Clock.system())) {
            svc.start();
            Job warm = svc.submit(Harness.req("w", 1, 2).withModel("a"), false); // class loading off the clock
            awaitReal(() -> warm.terminalEvent() != null, "warm-up");
            long t0 = System.nanoTime();
            Job b = svc.submit(Harness.req("x", 1, 4).withModel("b"), false);
            Job a = svc.submit(Harness.req("y", 1, 4).withModel("a"), false);
            awaitReal(() -> b.terminalEvent() != null, "b to end");
            double ms = (System.nanoTime() - t0) / 1e6;
            awaitReal(() -> a.terminalEvent() != null, "a to end");
            Harness.completed(a);
            JobEvent.Ended e = assertInstanceOf(JobEvent.Ended.class, b.terminalEvent());
            assertEquals(ServeException.Code.UNAVAILABLE, e.error().code());
            assertTrue(e.error().getMessage().contains("did not load within 150 ms"), e.error().getMessage());
            assertTrue(ms < 2000, "ended at the timeout, not when the load finished: " + ms + " ms");
            ServeException fast = assertThrows(ServeException.class, () -> svc.submit(Harness.req("x", 1, 4).withModel("b"), false));
            assertEquals(ServeException.Code.UNAVAILABLE, fast.code());
            assertTrue(fast.retryAfterMillis() > 50_000, "retry after " + fast.retryAfterMillis());
        }
    }
}
