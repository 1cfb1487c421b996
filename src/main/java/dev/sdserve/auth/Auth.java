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
import java.util.List;
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
    public record Settings(boolean enabled, Map<String, String> keys, Map<String, BasicUser> basic, double ratePerSecond,
                           int burst, int maxConcurrent) {
        public Settings {
            keys = Map.copyOf(keys);
            basic = Map.copyOf(basic);
        }

        public Settings(boolean enabled, Map<String, String> keys, double ratePerSecond, int burst, int maxConcurrent) {
            this(enabled, keys, Map.of(), ratePerSecond, burst, maxConcurrent);
        }
    }

    /** An HTTP Basic user ({@code sdserve.auth.basic}): the password (kept as a SHA-256 digest) and the tenant. */
    public record BasicUser(String passwordDigest, String tenant) {
        @Override
        public String toString() {
            return "BasicUser[tenant=" + tenant + "]";
        }
    }

    /** The shortest API key or Basic password accepted. */
    public static final int MIN_SECRET_CHARS = 8;

    private final Settings settings;
    private final Map<String, Principal> byDigest = new LinkedHashMap<>();
    private final Map<String, Principal> basicPrincipals = new LinkedHashMap<>();
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
        for (Map.Entry<String, BasicUser> e : settings.basic().entrySet()) {
            basicPrincipals.put(e.getKey(), new Principal("basic-" + e.getKey() + ":" + e.getValue().tenant(), e.getValue().tenant()));
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
     * the tenant {@code default}. Keys need at least {@value #MIN_SECRET_CHARS} characters.
     *
     * @throws IllegalArgumentException naming the entry (by position, never echoing a key) and the rule
     */
    public static Map<String, String> parseKeys(String spec) {
        Map<String, String> out = new LinkedHashMap<>();
        List<String> entries = entries(spec);
        for (int n = 1; n <= entries.size(); n++) {
            String s = entries.get(n - 1);
            int c = s.lastIndexOf(':');
            String key = c < 0 ? s : s.substring(0, c).strip();
            String tenant = c < 0 ? "default" : s.substring(c + 1).strip();
            if (key.length() < MIN_SECRET_CHARS) {
                throw new IllegalArgumentException("sdserve.auth.keys: entry " + n + " has a key of " + key.length()
                        + " characters; API keys need at least " + MIN_SECRET_CHARS + ". Write each entry as <key>:<tenant>,"
                        + " comma-separated, e.g. SDSERVE_AUTH_KEYS=alice-secret-1:alice,bob-secret-22:bob");
            }
            if (tenant.isEmpty() || tenant.chars().anyMatch(Character::isISOControl)) {
                throw new IllegalArgumentException("sdserve.auth.keys: entry " + n + " has no valid tenant after its last ':'"
                        + " (write <key>:<tenant>, or just <key> for the tenant 'default')");
            }
            out.put(key, tenant);
        }
        return out;
    }

    /**
     * Parses HTTP Basic users for A1111 tools (A1111's {@code --api-auth user:password}): comma-separated
     * {@code user:password:tenant} entries; {@code user:password} gives the tenant {@code user}. The user name ends at
     * the first ':', the tenant starts after the last one (a password containing ':' needs the tenant written).
     * Passwords need at least {@value #MIN_SECRET_CHARS} characters, as keys do.
     *
     * @throws IllegalArgumentException naming the entry (by position and user, never echoing a password) and the rule
     */
    public static Map<String, BasicUser> parseBasic(String spec) {
        Map<String, BasicUser> out = new LinkedHashMap<>();
        List<String> entries = entries(spec);
        for (int n = 1; n <= entries.size(); n++) {
            String s = entries.get(n - 1);
            int first = s.indexOf(':');
            int last = s.lastIndexOf(':');
            if (first <= 0) {
                throw new IllegalArgumentException("sdserve.auth.basic: entry " + n + " is not user:password[:tenant]"
                        + " (e.g. SDSERVE_AUTH_BASIC=alice:alice-password-1:alice)");
            }
            String user = s.substring(0, first);
            String password = first == last ? s.substring(first + 1) : s.substring(first + 1, last);
            String tenant = first == last ? user : s.substring(last + 1).strip();
            if (user.chars().anyMatch(Character::isISOControl) || !user.strip().equals(user)) {
                throw new IllegalArgumentException("sdserve.auth.basic: entry " + n + " has a bad user name");
            }
            if (password.length() < MIN_SECRET_CHARS) {
                throw new IllegalArgumentException("sdserve.auth.basic: user '" + user + "' (entry " + n + ") has a password"
                        + " of " + password.length() + " characters; passwords need at least " + MIN_SECRET_CHARS
                        + ". Write each entry as user:password:tenant (or user:password for the tenant <user>)");
            }
            if (tenant.isEmpty() || tenant.chars().anyMatch(Character::isISOControl)) {
                throw new IllegalArgumentException("sdserve.auth.basic: user '" + user + "' (entry " + n + ") has no valid tenant");
            }
            if (out.put(user, new BasicUser(digest(password), tenant)) != null) {
                throw new IllegalArgumentException("sdserve.auth.basic: user '" + user + "' is listed twice");
            }
        }
        return out;
    }

    /** The entries of a comma- or line-separated list, stripped; blank ones and {@code #} comments left out. */
    private static List<String> entries(String spec) {
        List<String> out = new java.util.ArrayList<>();
        for (String entry : spec == null ? new String[0] : spec.split("[,\\n]")) {
            String s = entry.strip();
            if (!s.isEmpty() && !s.startsWith("#")) {
                out.add(s);
            }
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
            String[] basic = basic(authorization);
            if (basic != null) {
                return basicUser(basic[0], basic[1]);
            }
            throw new ServeException(ServeException.Code.UNAUTHENTICATED,
                    "an API key is required: send the header 'x-api-key: <key>' or 'authorization: Bearer <key>'"
                            + (basicPrincipals.isEmpty() ? "" : ", or HTTP Basic credentials (sdserve.auth.basic)"));
        }
        Principal p = byDigest.get(digest(key));
        if (p == null) {
            throw new ServeException(ServeException.Code.UNAUTHENTICATED, "the API key is not valid");
        }
        return p;
    }

    /** Whether HTTP Basic users are configured (then 401s on A1111's routes carry a Basic challenge). */
    public boolean basicEnabled() {
        return settings.enabled() && !basicPrincipals.isEmpty();
    }

    private Principal basicUser(String user, String password) {
        BasicUser u = settings.basic().get(user);
        // compare digests in constant time; an unknown user costs the same digest
        byte[] given = digest(password).getBytes(StandardCharsets.US_ASCII);
        byte[] want = (u == null ? digest("\u0000no such user") : u.passwordDigest()).getBytes(StandardCharsets.US_ASCII);
        if (u == null | !MessageDigest.isEqual(given, want)) {
            throw new ServeException(ServeException.Code.UNAUTHENTICATED, "Incorrect username or password");
        }
        return basicPrincipals.get(user);
    }

    /** {@code Authorization: Basic base64(user:password)} → {user, password}, or null if it is not Basic. */
    private static String[] basic(String authorization) {
        if (authorization == null) {
            return null;
        }
        String a = authorization.strip();
        if (!a.regionMatches(true, 0, "Basic ", 0, 6)) {
            return null;
        }
        String decoded;
        try {
            decoded = new String(java.util.Base64.getDecoder().decode(a.substring(6).strip()), StandardCharsets.UTF_8);
        } catch (IllegalArgumentException e) {
            throw new ServeException(ServeException.Code.UNAUTHENTICATED, "malformed Basic credentials (not base64)");
        }
        int c = decoded.indexOf(':');
        if (c < 0) {
            throw new ServeException(ServeException.Code.UNAUTHENTICATED, "malformed Basic credentials (no ':')");
        }
        return new String[]{decoded.substring(0, c), decoded.substring(c + 1)};
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
