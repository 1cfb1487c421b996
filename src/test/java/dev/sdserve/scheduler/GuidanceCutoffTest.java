package dev.sdserve.scheduler;

import dev.sdserve.job.GenerationRequest;
import dev.sdserve.job.Job;
import dev.sdserve.job.JobEvent;
import dev.sdserve.job.Mailbox;
import dev.sdserve.job.ResolvedRequest;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** Guidance truncation in the scheduler: which steps run the unconditional half, and what each step costs. */
class GuidanceCutoffTest {

    /** The step times of one request (the harness's denoise cost is 40 ms + 1 ms per UNet sample). */
    static List<Double> stepMillis(GenerationRequest r) throws Exception {
        Harness h = new Harness();
        SchedulerService s = h.build();
        Job job = s.submit(r, false);
        Mailbox m = job.watch();
        List<JobEvent> ev = new ArrayList<>(Harness.drain(m));
        while (s.runOnce()) {
            ev.addAll(Harness.drain(m));
        }
        ev.addAll(Harness.drain(m));
        List<Double> out = new ArrayList<>();
        for (JobEvent e : ev) {
            if (e instanceof JobEvent.Step st) {
                out.add(st.stepMillis());
            }
        }
        assertEquals(JobEvent.Completed.class, ev.get(ev.size() - 1).getClass());
        return out;
    }

    @Test
    void afterTheCutoffAStepRunsThePromptHalfOnly() throws Exception {
        GenerationRequest base = Harness.req("a red fox", 7, 10).withGuidance(7.5);
        // off (unset, or 1): every step guided, two UNet samples
        assertEquals(List.of(42.0, 42.0, 42.0, 42.0, 42.0, 42.0, 42.0, 42.0, 42.0, 42.0), stepMillis(base));
        assertEquals(stepMillis(base), stepMillis(base.withGuidanceCutoff(1.0)));
        // 0.4 of 10 evaluations guided, then one sample a step
        assertEquals(List.of(42.0, 42.0, 42.0, 42.0, 41.0, 41.0, 41.0, 41.0, 41.0, 41.0),
                stepMillis(base.withGuidanceCutoff(0.4)));
        // a fraction rounds up, and at least one evaluation keeps guidance
        assertEquals(List.of(42.0, 42.0, 42.0, 41.0, 41.0), stepMillis(Harness.req("a", 1, 5).withGuidance(5.0)
                .withGuidanceCutoff(0.41)));
        assertEquals(List.of(42.0, 41.0, 41.0, 41.0, 41.0), stepMillis(Harness.req("a", 1, 5).withGuidance(5.0)
                .withGuidanceCutoff(0.01)));
        // unguided requests stay unguided
        assertEquals(List.of(41.0, 41.0, 41.0), stepMillis(Harness.req("a", 1, 3).withGuidance(1.0)
                .withGuidanceCutoff(0.5)));
    }

    @Test
    void guidedEvaluationsCountedForTheCostModel() {
        ResolvedRequest r = new ResolvedRequest("p", "", "m", List.of(), 64, 64, 20, "euler", 7.5, 1, 1, 2, null,
                null, 0, 0, "t", false, 0.5);
        assertEquals(10, r.guidedEvals(20));
        assertEquals(20, new ResolvedRequest("p", "", "m", List.of(), 64, 64, 20, "euler", 7.5, 1, 1, 2, null,
                null, 0, 0, "t", false).guidedEvals(20));
        assertEquals(0, new ResolvedRequest("p", "", "m", List.of(), 64, 64, 20, "euler", 1.0, 1, 1, 2, null,
                null, 0, 0, "t", false, 0.5).guidedEvals(20));
        // the admission side: remaining UNet samples of a 2-image request with half its 20 evaluations guided
        dev.sdserve.admission.Pending p = new dev.sdserve.admission.Pending() {
            public String model() { return "m"; }
            public dev.sdserve.engine.LatentShape shape() { return null; }
            public String bucket() { return "b"; }
            public boolean toEncode() { return false; }
            public boolean toDenoise() { return true; }
            public boolean finished() { return false; }
            public int remainingEvals() { return 20; }
            public int latentPerStep() { return 4; }
            public int latentsAtEval(int s) { return s <= r.guidedEvals(20) ? 4 : 2; }
            public int encodeItems() { return 2; }
            public int images() { return 2; }
            public String tenant() { return "t"; }
            public double weight() { return 1; }
            public boolean bestEffort() { return false; }
            public long deadlineNanos() { return 0; }
        };
        assertEquals(10 * 4 + 10 * 2, p.remainingLatents());
    }
}
