package dev.sdserve.auth;

import jakarta.enterprise.context.ApplicationScoped;
import jakarta.enterprise.inject.Produces;
import jakarta.inject.Singleton;
import org.eclipse.microprofile.config.inject.ConfigProperty;
import org.jboss.logging.Logger;

import java.io.IOException;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Optional;

/**
 * Builds the {@link Auth} from {@code sdserve.auth.*}: {@code enabled} (on in the prod profile), {@code keys}
 * ({@code key1:tenantA,key2:tenantB}), {@code keys-file} (one {@code key:tenant} a line), {@code rate-per-second},
 * {@code burst}, {@code max-concurrent}.
 */
@ApplicationScoped
public class AuthProducer {
    private static final Logger LOG = Logger.getLogger(AuthProducer.class);

    @ConfigProperty(name = "sdserve.auth.enabled", defaultValue = "false")
    boolean enabled;
    @ConfigProperty(name = "sdserve.auth.keys")
    Optional<String> keys;
    @ConfigProperty(name = "sdserve.auth.keys-file")
    Optional<String> keysFile;
    @ConfigProperty(name = "sdserve.auth.rate-per-second", defaultValue = "5")
    double rate;
    @ConfigProperty(name = "sdserve.auth.burst", defaultValue = "10")
    int burst;
    @ConfigProperty(name = "sdserve.auth.max-concurrent", defaultValue = "4")
    int maxConcurrent;

    @Produces
    @Singleton
    Auth auth() throws IOException {
        Map<String, String> all = new LinkedHashMap<>(Auth.parseKeys(keys.orElse(null)));
        if (keysFile.isPresent() && !keysFile.get().isBlank()) {
            all.putAll(Auth.readKeyFile(Path.of(keysFile.get())));
        }
        if (enabled && all.isEmpty()) {
            LOG.error("sdserve.auth.enabled=true but no API keys are configured (sdserve.auth.keys or sdserve.auth.keys-file):"
                    + " every API call will be refused with 401/UNAUTHENTICATED");
        }
        if (enabled) {
            LOG.infof("API keys on: %d key(s), %.1f generations/s (burst %d), %d concurrent per key", all.size(), rate,
                    burst, maxConcurrent);
        }
        return new Auth(new Auth.Settings(enabled, all, rate, burst, maxConcurrent));
    }
}
