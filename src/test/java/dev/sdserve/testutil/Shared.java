package dev.sdserve.testutil;

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;

/** Locates the shared reference data directory (see notes: property, env, parent walk, /work/shared). */
public final class Shared {
    private Shared() {
    }

    public static Path dir() {
        String prop = System.getProperty("sdserve.shared");
        if (prop != null && Files.isDirectory(Paths.get(prop))) {
            return Paths.get(prop);
        }
        String env = System.getenv("SDSERVE_SHARED");
        if (env != null && Files.isDirectory(Paths.get(env))) {
            return Paths.get(env);
        }
        Path p = Paths.get("").toAbsolutePath();
        while (p != null) {
            Path c = p.resolve("shared");
            if (Files.isDirectory(c.resolve("golden"))) {
                return c;
            }
            p = p.getParent();
        }
        return Paths.get("/work/shared");
    }
}
