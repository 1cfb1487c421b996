package dev.sdserve.scheduler;

import dev.sdserve.engine.ModelInfo;
import dev.sdserve.job.GenerationRequest;
import dev.sdserve.job.Job;
import dev.sdserve.job.JobEvent;
import dev.sdserve.job.JobState;
import dev.sdserve.job.Mailbox;
import dev.sdserve.job.ServeException;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

/** Ordering, admission, cancellation, preemption and fairness on the fake engine in simulated time. */
class SchedulingPolicyTest {

    /** A request with guidance 1 (one UNet sample per step) and an absolute deadline. */
    private static GenerationRequest unguided(String prompt, int steps, Long deadline, String tenant, boolean bestEffort) {
        return Harness.req(prompt, prompt.hashCode() & 0xffff, steps).withGuidance(1.0).withSampler("euler")
                .withDeadline(null, deadline, bestEffort).withTenant(tenant, null);
    }

    /** Completion time (sim ms since start) of each job, from its timings. */
    private static double finishedAt(Job j, long startMs) {
        JobEvent.Completed c = Harness.completed(j);
        return j.createdMillis() - startMs + c.timingsMillis().get("total");
    }

    @Test
    void leastSlackFirstMeetsDeadlinesThatArrivalOrderWouldMiss() {
        Harness h = new Harness();
        h.config.maxLatentBatch = 1; // one job per UNet call: the order is the whole story
        SchedulerService s = h.build();
        long now = h.clock.currentTimeMillis();
        // step = 41 ms. Arrival order X, Y, Z. X: 30 steps, deadline +5 s (slack ~3.7 s);
        // Y: 5 steps, +2 s (slack ~1.8 s); Z: 40 steps, +3 s (slack ~1.3 s, the least, although not the earliest deadline).
        Job x = s.submit(unguided("x", 30, now + 5000, "t", false), false);
        Job y = s.submit(unguided("y", 5, now + 2000, "t", false), false);
        Job z = s.submit(unguided("z", 40, now + 3000, "t", false), false);
        Mailbox mz = z.watch();
        Mailbox mx = x.watch();
        Mailbox my = y.watch();
        s.runOnce(); // encode batch
        assertEquals(3, h.engine.stats().encodeItems.get());
        s.runOnce(); // first denoise step: must be Z's
        assertTrue(Harness.drain(mz).stream().anyMatch(e -> e instanceof JobEvent.Step), "Z (least slack) runs first");
        assertFalse(Harness.drain(mx).stream().anyMatch(e -> e instanceof JobEvent.Step));
        assertFalse(Harness.drain(my).stream().anyMatch(e -> e instanceof JobEvent.Step));
        h.runAll();
        for (Job j : List.of(x, y, z)) {
            double at = finishedAt(j, now);
            assertTrue(at <= j.request().deadlineMillis() - now, j.request().prompt() + " finished at " + at);
        }
        // Arrival order (X, Y, Z one after the other) would finish Z at about 75 × 41 ms > 3 s: check the premise.
        assertTrue(75 * 41 > 3000);
    }

    @Test
    void refusesWhatCannotMeetItsDeadlineWithRetryAfter() {
        Harness h = new Harness();
        h.config.maxLatentBatch = 1;
        SchedulerService s = h.build();
        long now = h.clock.currentTimeMillis();
        // A needs 5 + 20·41 + 20 = 845 ms; B alone would need 435 ms, but A's deadline comes first.
        Job a = s.submit(unguided("a", 20, now + 950, "t", false), false);
        ServeException e = assertThrows(ServeException.class, () -> s.submit(unguided("b", 10, now + 1000, "t", false), false));
        assertEquals(ServeException.Code.RESOURCE_EXHAUSTED, e.code());
        assertNotNull(e.retryAfterMillis());
        assertTrue(e.retryAfterMillis() >= 100 && e.retryAfterMillis() < 2000, "retry after " + e.retryAfterMillis());
        assertTrue(e.getMessage().contains("deadline"), e.getMessage());
        // Best effort is admitted anyway.
        Job be = s.submit(unguided("b", 10, now + 1000, "t", true), false);
        // A request that can make it is admitted (later deadline).
        Job c = s.submit(unguided("c", 10, now + 3000, "t", false), false);
        h.runAll();
        Harness.completed(a);
        Harness.completed(c);
        Harness.completed(be);
        assertEquals(1, s.stats().rejectedDeadline.get());
        // After waiting the hint, the same request is admitted.
        long later = h.clock.currentTimeMillis();
        Job b2 = s.submit(unguided("b", 10, later + 1000, "t", false), false);
        h.runAll();
        Harness.completed(b2);
    }

    @Test
    void anIdleServerWithStaleCostFiguresAdmitsAProbeInsteadOfRefusingForever() {
        Harness h = new Harness();
        double[] slowdown = {10};
        h.engine.config().cost((m, st, sh, b) -> slowdown[0] * Harness.COSTS.predictMillis(m, st, sh, b));
        h.config.maxLatentBatch = 1;
        SchedulerService s = h.build();
        // A slow spell: the cost model learns 10x the normal costs.
        Harness.completed(submitAndRun(h, unguided("slow", 10, null, "t", true)));
        slowdown[0] = 1;
        // 10 steps take 5 + 10·41 + 20 = 435 ms now, but the stale figures predict ten times that: refused.
        long now = h.clock.currentTimeMillis();
        ServeException e = assertThrows(ServeException.class, () -> s.submit(unguided("a", 10, now + 1000, "t", false), false));
        assertEquals(ServeException.Code.RESOURCE_EXHAUSTED, e.code());
        // Refusals never measure anything; once the server has been idle for probeAfterIdleMillis it admits one.
        h.clock.advanceMillis(h.config.admission.probeAfterIdleMillis);
        long later = h.clock.currentTimeMillis();
        Job probe = s.submit(unguided("a", 10, later + 1000, "t", false), false);
        h.runAll();
        assertTrue(finishedAt(probe, later) <= 1000, "probe finished at " + finishedAt(probe, later));
        assertEquals(1, s.stats().admittedProbe.get());
        // Its measured steps corrected the figures: the same request is admitted normally right away.
        long then = h.clock.currentTimeMillis();
        Harness.completed(submitAndRun(h, unguided("b", 10, then + 1000, "t", false)));
        assertEquals(1, s.stats().admittedProbe.get());
        assertEquals(1, s.stats().rejectedDeadline.get());
    }

    @Test
    void queueIsBounded() {
        Harness h = new Harness();
        h.config.admission.maxQueue = 3;
        SchedulerService s = h.build();
        List<Job> admitted = new ArrayList<>();
        for (int i = 0; i < 3; i++) {
            admitted.add(s.submit(Harness.req("q" + i, i, 5), false));
        }
        ServeException e = assertThrows(ServeException.class, () -> s.submit(Harness.req("q3", 3, 5), false));
        assertEquals(ServeException.Code.RESOURCE_EXHAUSTED, e.code());
        assertTrue(e.getMessage().startsWith("queue full"), e.getMessage());
        assertTrue(e.retryAfterMillis() >= 100, "retry " + e.retryAfterMillis());
        assertEquals(3, s.outstanding());
        h.runAll();
        admitted.forEach(Harness::completed);
        assertEquals(0, s.outstanding());
        Harness.completed(submitAndRun(h, Harness.req("q3", 3, 5)));
    }

    private static Job submitAndRun(Harness h, GenerationRequest r) {
        Job j = h.service.submit(r, false);
        h.runAll();
        return j;
    }

    @Test
    void cancellationMidDenoiseLeavesBeforeTheNextStep() {
        Harness h = new Harness();
        SchedulerService s = h.build();
        Job victim = s.submit(Harness.req("victim", 1, 10), false);
        Job other = s.submit(Harness.req("other", 2, 10), false);
        s.runOnce(); // encode
        for (int i = 0; i < 3; i++) {
            s.runOnce();
        }
        assertEquals(3, victim.lastStep().index());
        long itemsBefore = h.engine.stats().denoiseItems.get();
        assertTrue(s.cancel(victim.id()));
        assertEquals(JobState.CANCELLED, victim.state());
        JobEvent.Ended end = assertInstanceOf(JobEvent.Ended.class, victim.terminalEvent());
        assertEquals(ServeException.Code.CANCELLED, end.error().code());
        s.runOnce();
        assertEquals(itemsBefore + 1, h.engine.stats().denoiseItems.get(), "only the other job is in the next step");
        assertEquals(3, victim.lastStep().index());
        h.runAll();
        assertFalse(s.cancel(victim.id()), "already ended");
        assertFalse(s.cancel(other.id()), "already completed");
        assertThrows(ServeException.class, () -> s.cancel("no-such-job"));
        ModelInfo info = h.engine.describe("embedded");
        assertArrayEquals(Harness.pixels(EventsAndIsolationTest.naive(other.request(), 0, info)), Harness.pixels(Harness.completed(other).images().get(0)));
    }

    @Test
    void bestEffortIsPausedForUrgentWorkAndResumes() {
        Harness h = new Harness();
        h.config.maxLatentBatch = 2;
        SchedulerService s = h.build();
        long now = h.clock.currentTimeMillis();
        Job be = s.submit(unguided("background", 12, now + 1_000_000, "t", true), false);
        s.runOnce(); // encode
        for (int i = 0; i < 3; i++) {
            s.runOnce();
        }
        assertEquals(3, be.lastStep().index());
        long t = h.clock.currentTimeMillis();
        // Two urgent jobs fill the batch of 2: the best-effort job must wait.
        Job u1 = s.submit(unguided("urgent1", 8, t + 600, "t", false), false);
        Job u2 = s.submit(unguided("urgent2", 8, t + 600, "t", false), false);
        h.runAll();
        double u1At = finishedAt(u1, now);
        double u2At = finishedAt(u2, now);
        assertTrue(u1At <= t - now + 600 && u2At <= t - now + 600, "urgent jobs on time: " + u1At + ", " + u2At);
        assertTrue(s.stats().pauses.get() >= 1, "paused");
        assertTrue(s.stats().resumes.get() >= 1, "resumed");
        JobEvent.Completed done = Harness.completed(be);
        assertTrue(finishedAt(be, now) > Math.max(u1At, u2At), "best effort finished after the urgent ones");
        ModelInfo info = h.engine.describe("embedded");
        assertArrayEquals(Harness.pixels(EventsAndIsolationTest.naive(be.request(), 0, info)), Harness.pixels(done.images().get(0)),
                "pausing keeps the state: same image as an uninterrupted run");
    }

    @Test
    void tenantsShareTheBatchByWeight() {
        Harness h = new Harness();
        h.config.maxLatentBatch = 4;
        h.config.admission.tenantWeights.put("big", 3.0);
        h.config.admission.tenantWeights.put("small", 1.0);
        SchedulerService s = h.build();
        long now = h.clock.currentTimeMillis();
        List<Job> big = new ArrayList<>();
        List<Job> small = new ArrayList<>();
        for (int i = 0; i < 12; i++) {
            big.add(s.submit(unguided("big" + i, 10, now + 600_000, "big", false), false));
        }
        for (int i = 0; i < 12; i++) {
            small.add(s.submit(unguided("small" + i, 10, now + 600_000, "small", false), false));
        }
        s.runOnce(); // encode all
        for (int i = 0; i < 8; i++) {
            s.runOnce();
        }
        int bigSteps = big.stream().mapToInt(j -> j.lastStep() == null ? 0 : j.lastStep().index()).sum();
        int smallSteps = small.stream().mapToInt(j -> j.lastStep() == null ? 0 : j.lastStep().index()).sum();
        assertEquals(32, bigSteps + smallSteps, "8 iterations × batch 4");
        assertEquals(24, bigSteps, "weight 3 of 4");
        assertEquals(8, smallSteps, "weight 1 of 4");
        h.runAll();
        big.forEach(Harness::completed);
        small.forEach(Harness::completed);
    }

    @Test
    void floodingTenantCannotStarveAnother() {
        Harness h = new Harness();
        h.config.maxLatentBatch = 4;
        SchedulerService s = h.build();
        long now = h.clock.currentTimeMillis();
        List<Job> flood = new ArrayList<>();
        for (int i = 0; i < 40; i++) {
            flood.add(s.submit(unguided("flood" + i, 10, now + 600_000, "flood", false), false));
        }
        List<Job> quiet = new ArrayList<>();
        for (int i = 0; i < 2; i++) {
            quiet.add(s.submit(unguided("quiet" + i, 10, now + 600_000, "quiet", false), false));
        }
        h.runAll();
        Map<String, Double> at = new HashMap<>();
        double lastQuiet = quiet.stream().mapToDouble(j -> finishedAt(j, now)).max().orElseThrow();
        double firstFlood = flood.stream().mapToDouble(j -> finishedAt(j, now)).min().orElseThrow();
        // Equal weights: the quiet tenant gets 2 of the 4 slots from the start, so it finishes with the first wave.
        assertTrue(lastQuiet <= firstFlood + 1e-6, "quiet tenant done at " + lastQuiet + " ms, first flood job at " + firstFlood);
    }

    @Test
    void admissionKeepsRoomForAnotherTenantsShare() {
        Harness h = new Harness();
        h.config.maxLatentBatch = 2;
        SchedulerService s = h.build();
        long now = h.clock.currentTimeMillis();
        int admitted = 0;
        int refused = 0;
        List<Job> flood = new ArrayList<>();
        for (int i = 0; i < 30; i++) {
            try {
                flood.add(s.submit(unguided("flood" + i, 10, now + 2000, "flood", false), false));
                admitted++;
            } catch (ServeException e) {
                assertEquals(ServeException.Code.RESOURCE_EXHAUSTED, e.code());
                refused++;
            }
        }
        assertTrue(admitted >= 4 && refused >= 10, "flood admitted " + admitted + ", refused " + refused);
        // The other tenant's request fits within its fair share although the machine is full.
        Job q = s.submit(unguided("quiet", 10, now + 2000, "quiet", false), false);
        h.runAll();
        assertTrue(finishedAt(q, now) <= 2000, "quiet job on time: " + finishedAt(q, now));
    }
}
