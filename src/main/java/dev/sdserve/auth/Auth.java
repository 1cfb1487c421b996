package dev.sdserve.auth;

import dev.sdserve.job.Job;
import dev.sdserve.job.ServeException;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.LongSupplier;

/**
 * API-key authentication, per-key rate limit (token bucket) and concurrency quota, shared by the gRPC interceptor
 * and the HTTP filter. Keys map to tenants; the tenant replaces whatever tenant a request names, so the scheduler's
 * fairness sees who is really asking. When disabled, every call is anonymous and unlimited.
 *
 * <p>Keys are kept only as SHA-256 digests (a lookup's timing does not depend on how much of a guess matches).
 */
public final class Auth {
    /** A caller; {@code tenant == null} for anonymous callers (auth off). */
    public record Principal(String keyId, String tenant) {
        public static final Principal ANONYMOUS = new Principal(null, null);
    }

    /**
     * A key's concurrency slot, taken by a call that starts generations. The slot is held while the call is open
     * <em>and</em> while any job handed to it with {@link #holdUntilEnd} runs; it returns to the key exactly once,
     * when the last of them ends. A client therefore cannot exceed its quota by submitting asynchronous jobs.
     */
    public interface Permit extends AutoCloseable {
        Permit NONE = () -> {
        };

        /** The call is over (response written, stream closed or cancelled). Closing twice is harmless. */
        @Override
        void close();

        /**
         * Keeps the slot until {@code job} ends (completed, failed or cancelled), even after the call is over.
         * Call it before {@link #close()}; after the slot has returned it does nothing.
         */
        default void holdUntilEnd(Job job) {
        }
    }

    /** A taken slot: one hold for the call, one per job handed to it; the slot returns when the holds reach 0. */
    static final class Slot implements Permit {
        private final AtomicInteger keyInFlight;
        private final AtomicInteger holds = new AtomicInteger(1);
        private final AtomicBoolean callClosed = new AtomicBoolean();

        Slot(AtomicInteger keyInFlight) {
            this.keyInFlight = keyInFlight;
        }

        @Override
        public void close() {
            if (callClosed.compareAndSet(false, true)) {
                drop();
            }
        }

        @Override
        public void holdUntilEnd(Job job) {
            for (int h = holds.get(); ; h = holds.get()) {
                if (h == 0) {
                    return; // already returned: never take it back from 0
                }
                if (holds.compareAndSet(h, h + 1)) {
                    break;
                }
            }
            AtomicBoolean once = new AtomicBoolean();
            job.onEnd(() -> {
                if (once.compareAndSet(false, true)) {
                    drop();
                }
            });
        }

        private void drop() {
            if (holds.decrementAndGet() == 0) {
                keyInFlight.decrementAndGet();
            }
        }
    }

    /**
     * @param ratePerSecond sustained generation requests per second per key (≤ 0: unlimited)
     * @param burst         bucket size
     * @param maxConcurrent generations in progress per key (≤ 0: unlimited)
     */
    public record Settings(boolean enabled, Map<String, String> keys, double ratePerSecond, int burst, int maxConcurrent) {
        public Settings {
            keys = Map.copyOf(keys);
        }
    }

    private final Settings settings;
    private final Map<String, Principal> byDigest = new LinkedHashMap<>();
    private final Map<String, Bucket> buckets = new ConcurrentHashMap<>();
    private final Map<String, AtomicInteger> inFlight = new ConcurrentHashMap<>();
    private final LongSupplier nanoTime;

    public Auth(Settings settings, LongSupplier nanoTime) {
        this.settings = settings;
        this.nanoTime = nanoTime;
        int i = 0;
        for (Map.Entry<String, String> e : settings.keys().entrySet()) {
            byDigest.put(digest(e.getKey()), new Principal("key-" + (i++) + ":" + e.getValue(), e.getValue()));
        }
    }

    public Auth(Settings settings) {
        this(settings, System::nanoTime);
    }

    public static Auth disabled() {
        return new Auth(new Settings(false, Map.of(), 0, 0, 0));
    }

    public boolean enabled() {
        return settings.enabled();
    }

    public Settings settings() {
        return settings;
    }

    /**
     * Parses {@code key1:tenantA,key2:tenantB} (whitespace around entries ignored). A key without a tenant gets
     * the tenant {@code default}.
     */
    public static Map<String, String> parseKeys(String spec) {
        Map<String, String> out = new LinkedHashMap<>();
        if (spec == null) {
            return out;
        }
        for (String entry : spec.split("[,\\n]")) {
            String s = entry.strip();
            if (s.isEmpty() || s.startsWith("#")) {
                continue;
            }
            int c = s.lastIndexOf(':');
            String key = c < 0 ? s : s.substring(0, c).strip();
            String tenant = c < 0 ? "default" : s.substring(c + 1).strip();
            if (key.length() < 8) {
                throw new IllegalArgumentException("sdserve.auth.keys: API keys must have at least 8 characters (got one of "
                        + key.length() + ")");
            }
            if (tenant.isEmpty() || tenant.chars().anyMatch(Character::isISOControl)) {
                throw new IllegalArgumentException("sdserve.auth.keys: bad tenant for a key: '" + tenant + "'");
            }
            out.put(key, tenant);
        }
        return out;
    }

    /** Reads a key file: one {@code key:tenant} per line, {@code #} comments. */
    public static Map<String, String> readKeyFile(Path file) throws IOException {
        return parseKeys(Files.readString(file, StandardCharsets.UTF_8));
    }

    /**
     * Authenticates a call from its {@code x-api-key} and {@code authorization} headers (either may be null).
     *
     * @throws ServeException UNAUTHENTICATED when auth is on and the key is missing or unknown
     */
    public Principal authenticate(String apiKey, String authorization) {
        if (!settings.enabled()) {
            return Principal.ANONYMOUS;
        }
        String key = apiKey != null && !apiKey.isBlank() ? apiKey.strip() : bearer(authorization);
        if (key == null) {
            throw new ServeException(ServeException.Code.UNAUTHENTICATED,
                    "an API key is required: send the header 'x-api-key: <key>' or 'authorization: Bearer <key>'");
        }
        Principal p = byDigest.get(digest(key));
        if (p == null) {
            throw new ServeException(ServeException.Code.UNAUTHENTICATED, "the API key is not valid");
        }
        return p;
    }

    private static String bearer(String authorization) {
        if (authorization == null) {
            return null;
        }
        String a = authorization.strip();
        if (a.regionMatches(true, 0, "Bearer ", 0, 7)) {
            String k = a.substring(7).strip();
            return k.isEmpty() ? null : k;
        }
        return null;
    }

    /**
     * Takes a token from the key's bucket and a concurrency slot for one generation.
     *
     * @throws ServeException RESOURCE_EXHAUSTED with a retry hint
     */
    public Permit acquire(Principal p) {
        if (!settings.enabled() || p.keyId() == null) {
            return Permit.NONE;
        }
        // the concurrency slot first: a call refused for it does not spend a rate token
        AtomicInteger n = null;
        if (settings.maxConcurrent() > 0) {
            n = inFlight.computeIfAbsent(p.keyId(), k -> new AtomicInteger());
            if (n.incrementAndGet() > settings.maxConcurrent()) {
                n.decrementAndGet();
                throw ServeException.exhausted("concurrency quota: at most " + settings.maxConcurrent()
                        + " generations in progress per API key (a slot returns when one of the key's jobs ends)", 1000);
            }
        }
        if (settings.ratePerSecond() > 0) {
            Bucket b = buckets.computeIfAbsent(p.keyId(), k -> new Bucket(settings.burst(), nanoTime.getAsLong()));
            long wait = b.take(settings.ratePerSecond(), Math.max(1, settings.burst()), nanoTime.getAsLong());
            if (wait > 0) {
                if (n != null) {
                    n.decrementAndGet();
                }
                throw ServeException.exhausted("rate limit: at most " + settings.ratePerSecond() + " generations/s (burst "
                        + settings.burst() + ") per API key; retry in " + wait + " ms", wait);
            }
        }
        return n == null ? Permit.NONE : new Slot(n);
    }

    /** The request with the principal's tenant (auth on), or unchanged (anonymous). */
    public static dev.sdserve.job.GenerationRequest applyTenant(dev.sdserve.job.GenerationRequest r, Principal p) {
        return p == null || p.tenant() == null ? r : r.withTenant(p.tenant(), r.priority());
    }

    /** Generations in progress for a tenant's key (for tests and metrics). */
    public int inFlight(Principal p) {
        var n = p.keyId() == null ? null : inFlight.get(p.keyId());
        return n == null ? 0 : n.get();
    }

    private static final class Bucket {
        private double tokens;
        private long last;

        Bucket(int burst, long now) {
            this.tokens = Math.max(1, burst);
            this.last = now;
        }

        /** @return 0 if a token was taken, else milliseconds until one is available */
        synchronized long take(double rate, int burst, long now) {
            tokens = Math.min(burst, tokens + (now - last) / 1e9 * rate);
            last = now;
            if (tokens >= 1) {
                tokens -= 1;
                return 0;
            }
            return Math.max(1, (long) Math.ceil((1 - tokens) / rate * 1000));
        }
    }

    static String digest(String key) {
        try {
            return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(key.getBytes(StandardCharsets.UTF_8)));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }
}
