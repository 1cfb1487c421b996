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
 * ({@code key1:tenantA,key2:tenantB}), {@code keys-file} (one {@code key:tenant} a line), {@code basic}
 * ({@code user:password:tenant,…}: HTTP Basic for A1111 tools), {@code rate-per-second},
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
    /** HTTP Basic users for A1111 tools: {@code user:password:tenant,…} (A1111's {@code --api-auth user:password}). */
    @ConfigProperty(name = "sdserve.auth.basic")
    Optional<String> basic;
    @ConfigProperty(name = "sdserve.auth.rate-per-second", defaultValue = "5")
    double rate;
    @ConfigProperty(name = "sdserve.auth.burst", defaultValue = "10")
    int burst;
    @ConfigProperty(name = "sdserve.auth.max-concurrent", defaultValue = "4")
    int maxConcurrent;

    @Produces
    @Singleton
    Auth auth() throws IOException {
        Map<String, String> all;
        Map<String, Auth.BasicUser> users;
        try {
            all = new LinkedHashMap<>(Auth.parseKeys(keys.orElse(null)));
            if (keysFile.isPresent() && !keysFile.get().isBlank()) {
                all.putAll(Auth.readKeyFile(Path.of(keysFile.get())));
            }
            users = Auth.parseBasic(basic.orElse(null));
        } catch (IllegalArgumentException e) {
            // said once, plainly, at the top of the start-up failure (the stack trace below it is Quarkus')
            LOG.error("sd-serve cannot start: " + e.getMessage());
            throw new io.quarkus.runtime.configuration.ConfigurationException(e.getMessage(), e);
        }
        if (enabled && all.isEmpty() && users.isEmpty()) {
            LOG.error("sdserve.auth.enabled=true but no API keys are configured (sdserve.auth.keys, sdserve.auth.keys-file"
                    + " or sdserve.auth.basic): every API call will be refused with 401/UNAUTHENTICATED");
        }
        if (enabled) {
            LOG.infof("API keys on: %d key(s), %d Basic user(s), %.1f generations/s (burst %d), %d concurrent per key",
                    all.size(), users.size(), rate, burst, maxConcurrent);
        }
        return new Auth(new Auth.Settings(enabled, all, users, rate, burst, maxConcurrent));
    }
}
