package dev.sdserve.testutil;

import java.nio.file.Files;
import java.nio.file.Path;

/** Locates the read-only reference data directory ({@code shared/}, beside the checkout). */
public final class Shared {
    private Shared() {
    }

    public static Path dir() {
        String prop = System.getProperty("sdserve.shared");
        if (prop != null && Files.isDirectory(Path.of(prop, "golden"))) {
            return Path.of(prop).toAbsolutePath().normalize();
        }
        String env = System.getenv("SDSERVE_SHARED");
        if (env != null && Files.isDirectory(Path.of(env, "golden"))) {
            return Path.of(env).toAbsolutePath().normalize();
        }
        for (Path p = Path.of("").toAbsolutePath(); p != null; p = p.getParent()) {
            if (Files.isDirectory(p.resolve("shared/golden"))) {
                return p.resolve("shared");
            }
        }
        Path fallback = Path.of("/work/shared");
        if (Files.isDirectory(fallback.resolve("golden"))) {
            return fallback;
        }
        throw new IllegalStateException("reference data not found: set -Dsdserve.shared or SDSERVE_SHARED to the shared/ directory");
    }

    public static Path golden(String set) {
        return dir().resolve("golden").resolve(set);
    }
}
