package dev.sdserve.auth;

import dev.sdserve.job.GenerationRequest;
import dev.sdserve.job.Job;
import dev.sdserve.job.JobEvent;
import dev.sdserve.job.JobState;
import dev.sdserve.job.ServeException;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicLong;

import static org.junit.jupiter.api.Assertions.*;

class AuthTest {
    final AtomicLong now = new AtomicLong(1_000_000_000L);

    Auth auth(double rate, int burst, int conc) {
        return new Auth(new Auth.Settings(true, Auth.parseKeys(" key-aaaa-1:tenantA , key-bbbb-2:tenantB"), rate, burst, conc), now::get);
    }

    @Test
    void keysParseAndAuthenticateByHeaderOrBearer() {
        assertEquals(Map.of("key-aaaa-1", "tenantA", "k2-long-key", "default"), Auth.parseKeys("key-aaaa-1:tenantA,\n# c\nk2-long-key"));
        assertThrows(IllegalArgumentException.class, () -> Auth.parseKeys("short:t"));
        Auth a = auth(0, 0, 0);
        assertEquals("tenantA", a.authenticate("key-aaaa-1", null).tenant());
        assertEquals("tenantB", a.authenticate(null, "Bearer key-bbbb-2").tenant());
        assertEquals("tenantB", a.authenticate("", "bearer   key-bbbb-2 ").tenant());
        for (String[] bad : new String[][]{{null, null}, {"", ""}, {"nope-nope-nope", null}, {null, "Basic a2V5"},
                {null, "Bearer "}, {null, "Bearer key-aaaa-"}, {"KEY-AAAA-1", null}}) {
            ServeException e = assertThrows(ServeException.class, () -> a.authenticate(bad[0], bad[1]));
            assertEquals(ServeException.Code.UNAUTHENTICATED, e.code());
            assertEquals(401, e.code().http);
        }
        Auth off = Auth.disabled();
        assertSame(Auth.Principal.ANONYMOUS, off.authenticate(null, null));
        assertSame(Auth.Permit.NONE, off.acquire(Auth.Principal.ANONYMOUS));
    }

    @Test
    void startUpErrorsStateTheRuleWithoutEchoingSecrets() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> Auth.parseKeys("secret1:tenantA,secret2:tenantB"));
        assertTrue(e.getMessage().contains("entry 1") && e.getMessage().contains("7 characters")
                && e.getMessage().contains("at least 8") && e.getMessage().contains("<key>:<tenant>"), e.getMessage());
        assertFalse(e.getMessage().contains("secret1"), "the key is not echoed: " + e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> Auth.parseBasic("alice:short:t"));
        assertTrue(e.getMessage().contains("alice") && e.getMessage().contains("at least 8"), e.getMessage());
        assertFalse(e.getMessage().contains("short"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> Auth.parseBasic("no-colon-at-all"));
        assertThrows(IllegalArgumentException.class, () -> Auth.parseBasic("a:password-1:t,a:password-2:u"));
    }

    @Test
    void basicCredentialsMapToTenantsLikeA1111sApiAuth() {
        Map<String, Auth.BasicUser> users = Auth.parseBasic("alice:alice-password:teamA, bob:bob:pass:word:teamB,carol:carol-pass");
        assertEquals("teamA", users.get("alice").tenant());
        assertEquals("teamB", users.get("bob").tenant(), "a password with ':' needs the tenant written");
        assertEquals("carol", users.get("carol").tenant(), "user:password gives the tenant <user>");
        Auth a = new Auth(new Auth.Settings(true, Auth.parseKeys("key-aaaa-1:tenantA"), users, 0, 0, 0), now::get);
        assertTrue(a.basicEnabled());
        java.util.function.Function<String, String> basic = up -> "Basic " + java.util.Base64.getEncoder()
                .encodeToString(up.getBytes(java.nio.charset.StandardCharsets.UTF_8));
        assertEquals("teamA", a.authenticate(null, basic.apply("alice:alice-password")).tenant());
        assertEquals("teamB", a.authenticate(null, basic.apply("bob:bob:pass:word")).tenant());
        assertEquals("tenantA", a.authenticate("key-aaaa-1", basic.apply("alice:wrong")).tenant(), "a key wins over Basic");
        for (String bad : List.of("alice:wrong-password", "mallory:alice-password", "alice:", "alice-password")) {
            ServeException e = assertThrows(ServeException.class, () -> a.authenticate(null, basic.apply(bad)));
            assertEquals(ServeException.Code.UNAUTHENTICATED, e.code());
        }
        assertEquals("Incorrect username or password", assertThrows(ServeException.class,
                () -> a.authenticate(null, basic.apply("alice:nope-nope"))).getMessage(), "A1111's message");
        // Basic users have their own rate buckets and quotas, like keys
        Auth.Principal alice = a.authenticate(null, basic.apply("alice:alice-password"));
        assertNotEquals(a.authenticate("key-aaaa-1", null).keyId(), alice.keyId());
        assertFalse(Auth.disabled().basicEnabled());
    }

    @Test
    void tokenBucketRefusesWithAnAccurateRetryHint() {
        Auth a = auth(2, 3, 0); // 2/s, burst 3
        Auth.Principal p = a.authenticate("key-aaaa-1", null);
        for (int i = 0; i < 3; i++) {
            a.acquire(p).close();
        }
        ServeException e = assertThrows(ServeException.class, () -> a.acquire(p));
        assertEquals(ServeException.Code.RESOURCE_EXHAUSTED, e.code());
        assertEquals(500, e.retryAfterMillis()); // one token at 2/s
        now.addAndGet(300_000_000L);
        assertEquals(200, assertThrows(ServeException.class, () -> a.acquire(p)).retryAfterMillis());
        now.addAndGet(200_000_000L);
        a.acquire(p).close(); // the hint was exact
        // the other key has its own bucket
        Auth.Principal q = a.authenticate("key-bbbb-2", null);
        a.acquire(q).close();
        // refill caps at the burst
        now.addAndGet(3_600_000_000_000L);
        for (int i = 0; i < 3; i++) {
            a.acquire(p).close();
        }
        assertThrows(ServeException.class, () -> a.acquire(p));
    }

    @Test
    void concurrencyQuotaHoldsSlotsUntilReleased() {
        Auth a = auth(0, 0, 2);
        Auth.Principal p = a.authenticate("key-aaaa-1", null);
        Auth.Permit one = a.acquire(p), two = a.acquire(p);
        ServeException e = assertThrows(ServeException.class, () -> a.acquire(p));
        assertEquals(ServeException.Code.RESOURCE_EXHAUSTED, e.code());
        assertTrue(e.retryAfterMillis() > 0);
        assertEquals(2, a.inFlight(p));
        one.close();
        one.close(); // idempotent
        assertEquals(1, a.inFlight(p));
        Auth.Permit three = a.acquire(p);
        assertThrows(ServeException.class, () -> a.acquire(p));
        two.close();
        three.close();
        assertEquals(0, a.inFlight(p));
    }

    @Test
    void theKeysTenantReplacesTheRequests() {
        GenerationRequest r = GenerationRequest.ofPrompt("x").withTenant("someone-else", 3);
        GenerationRequest out = Auth.applyTenant(r, new Auth.Principal("k", "tenantA"));
        assertEquals("tenantA", out.tenant());
        assertEquals(3, out.priority());
        assertSame(r, Auth.applyTenant(r, Auth.Principal.ANONYMOUS));
    }

    private static Job job(String id) {
        return new Job(id, null, true, 0);
    }

    @Test
    void aSlotHandedToAJobReturnsExactlyOnceWhenTheJobEnds() {
        Auth a = auth(0, 0, 2);
        Auth.Principal p = a.authenticate("key-aaaa-1", null);
        // completed
        Auth.Permit one = a.acquire(p);
        Job j1 = job("j1");
        one.holdUntilEnd(j1);
        one.close(); // the call is over: the job still holds the slot
        one.close();
        assertEquals(1, a.inFlight(p));
        j1.publish(new JobEvent.Step("j1", 1, 4, null, null, 1));
        assertEquals(1, a.inFlight(p), "a step does not end the job");
        // cancelled
        Auth.Permit two = a.acquire(p);
        Job j2 = job("j2");
        two.holdUntilEnd(j2);
        two.close();
        ServeException e = assertThrows(ServeException.class, () -> a.acquire(p));
        assertEquals(ServeException.Code.RESOURCE_EXHAUSTED, e.code());
        assertTrue(e.retryAfterMillis() > 0, "a retry hint");
        j1.publish(new JobEvent.Completed("j1", List.of(), List.of(), null, Map.of()));
        assertEquals(1, a.inFlight(p));
        j1.publish(new JobEvent.Ended("j1", JobState.FAILED, null)); // after the end: ignored, no second release
        assertEquals(1, a.inFlight(p));
        j2.publish(new JobEvent.Ended("j2", JobState.CANCELLED, new ServeException(ServeException.Code.CANCELLED, "x")));
        assertEquals(0, a.inFlight(p));
        // failed, with the call still open when the job ends: the slot returns when both are over
        Auth.Permit three = a.acquire(p);
        Job j3 = job("j3");
        three.holdUntilEnd(j3);
        j3.publish(new JobEvent.Ended("j3", JobState.FAILED, new ServeException(ServeException.Code.INTERNAL, "boom")));
        assertEquals(1, a.inFlight(p), "the call still holds it");
        three.close();
        assertEquals(0, a.inFlight(p));
        // a job that had already ended when handed over: released with the call
        Auth.Permit four = a.acquire(p);
        four.holdUntilEnd(j3);
        four.close();
        assertEquals(0, a.inFlight(p));
        // several jobs on one call (A1111 n_iter): one slot, returned after the last
        Auth.Permit five = a.acquire(p);
        Job j5 = job("j5"), j6 = job("j6");
        five.holdUntilEnd(j5);
        five.holdUntilEnd(j6);
        five.close();
        j5.publish(new JobEvent.Ended("j5", JobState.CANCELLED, null));
        assertEquals(1, a.inFlight(p));
        j6.publish(new JobEvent.Completed("j6", List.of(), List.of(), null, Map.of()));
        assertEquals(0, a.inFlight(p));
        // after the slot returned, handing it to a job does not take it back
        five.holdUntilEnd(job("j7"));
        assertEquals(0, a.inFlight(p));
        Auth.Permit.NONE.holdUntilEnd(job("j8")); // auth off: nothing to hold
    }

    @Test
    void aCallRefusedForConcurrencyKeepsItsRateToken() {
        Auth a = auth(0.001, 2, 1); // 2 tokens, practically no refill
        Auth.Principal p = a.authenticate("key-aaaa-1", null);
        Auth.Permit one = a.acquire(p);
        for (int i = 0; i < 5; i++) {
            ServeException e = assertThrows(ServeException.class, () -> a.acquire(p));
            assertTrue(e.getMessage().contains("concurrency"), e.getMessage());
        }
        one.close();
        a.acquire(p).close(); // the second token is still there
        ServeException e = assertThrows(ServeException.class, () -> a.acquire(p));
        assertTrue(e.getMessage().contains("rate limit"), e.getMessage());
        assertEquals(0, a.inFlight(p), "a rate refusal gives the slot back");
    }

    @Test
    void endListenersRunOnceBeforeWatchersSeeTheEnd() {
        Job j = job("j");
        var watcher = j.watch();
        int[] runs = {0};
        boolean[] seenByWatcherFirst = {false};
        j.onEnd(() -> {
            runs[0]++;
            seenByWatcherFirst[0] = watcher.queued() > 0;
        });
        j.publish(new JobEvent.Ended("j", JobState.CANCELLED, null));
        j.publish(new JobEvent.Ended("j", JobState.FAILED, null));
        assertEquals(1, runs[0]);
        assertFalse(seenByWatcherFirst[0], "the slot returns before a client can learn that the job ended");
        j.onEnd(() -> runs[0]++); // already ended: runs at once
        assertEquals(2, runs[0]);
    }
}
