package dev.sdserve.engine.tf;

import dev.sdserve.testutil.Shared;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertTrue;

/** 200 guided UNet calls (the 1,000-call version: LeakCheck.main); RSS must stay within 5% of the RSS after 10. */
class LeakCheckTest {
    @Test
    void unetCallsDoNotLeakNativeMemory() throws Exception {
        LeakCheck.Outcome o = LeakCheck.run(Shared.golden("sd15-tiny"), 200, System.out);
        assertTrue(o.ok(), "RSS grew from " + o.rssAfter10Kb() + " kB to " + o.rssAfterKb() + " kB");
    }
}
