package dev.sdserve.job;

import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/** A lagging watcher loses preview payloads, never steps; at most one preview waits per watcher. */
class MailboxTest {
    static JobEvent.Step step(int i, boolean preview) {
        return new JobEvent.Step("j", i, 40, preview ? new byte[1000] : null, preview ? "png" : null, 1);
    }

    static List<JobEvent> drain(Mailbox m) {
        List<JobEvent> out = new ArrayList<>();
        while (m.queued() > 0) {
            out.add(m.next().join());
        }
        return out;
    }

    @Test
    void aStalledWatcherKeepsEveryStepAndOnlyTheNewestPreview() {
        Mailbox m = new Mailbox();
        m.offer(new JobEvent.Started("j", 0));
        for (int i = 1; i <= 40; i++) {
            m.offer(step(i, i % 3 != 0)); // previews due at 2 of every 3 steps
            int held = 0;
            // never more than one preview waiting
            for (JobEvent e : m.snapshot()) {
                held += e instanceof JobEvent.Step s && s.preview() != null ? 1 : 0;
            }
            assertTrue(held <= 1, "previews held after step " + i + ": " + held);
        }
        List<JobEvent> got = drain(m);
        assertInstanceOf(JobEvent.Started.class, got.get(0));
        for (int i = 1; i <= 40; i++) {
            JobEvent.Step s = (JobEvent.Step) got.get(i);
            assertEquals(i, s.index(), "every step, in order");
            boolean due = i % 3 != 0;
            if (i == 40) {
                assertNotNull(s.preview(), "the newest preview is kept");
                assertFalse(s.previewDropped());
            } else {
                assertNull(s.preview(), "step " + i);
                assertEquals(due && i < 40 && lastDueAfter(i), s.previewDropped(), "dropped flag at step " + i);
            }
        }
        assertEquals(26, m.conflated(), "previews due at 27 steps, one delivered");
    }

    /** Whether a preview was due after step i (so step i's preview was replaced). */
    private static boolean lastDueAfter(int i) {
        for (int k = i + 1; k <= 40; k++) {
            if (k % 3 != 0) {
                return true;
            }
        }
        return false;
    }

    @Test
    void aWatcherThatKeepsUpGetsEveryPreview() {
        Mailbox m = new Mailbox();
        for (int i = 1; i <= 10; i++) {
            var f = m.next();
            m.offer(step(i, true));
            JobEvent.Step s = (JobEvent.Step) f.join();
            assertEquals(i, s.index());
            assertNotNull(s.preview());
        }
        assertEquals(0, m.conflated());
    }

    @Test
    void aLateWatcherGetsEveryStepSoFarAndTheLatestPreview() {
        Job job = new Job("j", null, false, 0);
        job.publish(new JobEvent.Queued("j", 0, 0));
        job.publish(new JobEvent.Started("j", 0));
        for (int i = 1; i <= 5; i++) {
            job.publish(step(i, true));
        }
        List<JobEvent> got = drain(job.watch());
        assertEquals(7, got.size(), got.toString());
        for (int i = 1; i <= 5; i++) {
            JobEvent.Step s = (JobEvent.Step) got.get(i + 1);
            assertEquals(i, s.index());
            assertEquals(i == 5, s.preview() != null);
        }
    }
}
