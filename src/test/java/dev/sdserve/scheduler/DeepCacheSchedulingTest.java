package dev.sdserve.scheduler;

import dev.sdserve.engine.DeepCache;
import dev.sdserve.job.GenerationRequest;
import dev.sdserve.job.Job;
import dev.sdserve.job.JobEvent;
import dev.sdserve.job.Mailbox;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * DeepCache in the scheduler on the fake engine (denoise cost 40 ms + 1 ms per UNet sample, a shallow call the
 * prior ratio of that): which steps are shallow, that shallow and full steps never share a call, and that the cost
 * model learns the shallow ratio from the calls.
 */
class DeepCacheSchedulingTest {
    private static final double R = DeepCache.SHALLOW_COST_PRIOR;

    private static List<Double> steps(List<JobEvent> ev) {
        List<Double> out = new ArrayList<>();
        for (JobEvent e : ev) {
            if (e instanceof JobEvent.Step st) {
                out.add(st.stepMillis());
            }
        }
        return out;
    }

    @Test
    void aFullStepEveryIntervalShallowOnesBetween() throws Exception {
        Harness h = new Harness();
        SchedulerService s = h.build();
        Job job = s.submit(Harness.req("a red fox", 7, 7).withGuidance(7.5).withDeepCacheInterval(3), false);
        Mailbox m = job.watch();
        List<JobEvent> ev = new ArrayList<>(Harness.drain(m));
        while (s.runOnce()) {
            ev.addAll(Harness.drain(m));
        }
        ev.addAll(Harness.drain(m));
        assertEquals(JobEvent.Completed.class, ev.get(ev.size() - 1).getClass());
        List<Double> got = steps(ev);
        double f = 42, sh = R * 42;
        List<Double> want = List.of(f, sh, sh, f, sh, sh, f);
        assertEquals(want.size(), got.size());
        for (int i = 0; i < want.size(); i++) {
            assertEquals(want.get(i), got.get(i), 1e-6, "step " + i + " of " + got);
        }
    }

    @Test
    void shallowAndFullStepsGoInCallsOfTheirOwn() throws Exception {
        Harness h = new Harness();
        SchedulerService s = h.build();
        GenerationRequest a = Harness.req("a", 1, 4).withGuidance(5.0).withDeepCacheInterval(2);
        GenerationRequest b = Harness.req("b", 2, 4).withGuidance(5.0);
        List<Job> jobs = List.of(s.submit(a, false), s.submit(b, false));
        List<Mailbox> boxes = jobs.stream().map(Job::watch).toList();
        List<List<JobEvent>> ev = List.of(new ArrayList<>(), new ArrayList<>());
        while (s.runOnce()) {
            for (int i = 0; i < 2; i++) {
                ev.get(i).addAll(Harness.drain(boxes.get(i)));
            }
        }
        for (int i = 0; i < 2; i++) {
            ev.get(i).addAll(Harness.drain(boxes.get(i)));
            assertTrue(ev.get(i).get(ev.get(i).size() - 1) instanceof JobEvent.Completed, String.valueOf(ev.get(i)));
        }
        // step 0: both full in one call (4 samples: 44 ms); a's steps 1 and 3 are shallow, in calls of shallow
        // samples only (a's 2: R·42 ms); b's steps are full ones, alone (42) or with a's full step (44)
        List<Double> sa = steps(ev.get(0)), sb = steps(ev.get(1));
        assertEquals(44.0, sa.get(0), 1e-6, "first steps shared a call: " + sa);
        assertEquals(44.0, sb.get(0), 1e-6);
        assertEquals(R * 42, sa.get(1), 1e-6, "a's shallow step ran without b's full one: " + sa);
        assertEquals(R * 42, sa.get(3), 1e-6, "a's shallow step ran without b's full one: " + sa);
        for (double t : sb) {
            assertTrue(t == 42.0 || t == 44.0, "b's steps are full calls: " + sb);
        }
    }

    @Test
    void theCostModelLearnsTheShallowRatio() {
        OnlineCostModel c = new OnlineCostModel(Harness.COSTS);
        var shape = new dev.sdserve.engine.LatentShape(4, 8, 8);
        assertEquals(R * 42, c.predictShallowMillis("m", shape, 2), 1e-9, "before a measurement: the prior ratio");
        for (int i = 0; i < 200; i++) {
            c.observeShallow("m", shape, 2, 21.0); // half a full step's 42 ms
        }
        assertEquals(21.0, c.predictShallowMillis("m", shape, 2), 0.5);
        assertEquals(R * 42, c.predictShallowMillis("m", new dev.sdserve.engine.LatentShape(4, 16, 16), 2), 1e-9,
                "other buckets keep the prior");
    }
}
