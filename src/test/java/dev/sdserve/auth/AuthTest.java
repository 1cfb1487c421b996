package dev.sdserve.auth;

import dev.sdserve.job.GenerationRequest;
import dev.sdserve.job.ServeException;
import org.junit.jupiter.api.Test;

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
}
