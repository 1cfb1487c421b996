package dev.sdserve;

import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Every dependency between the service's rooms points one way (the README's Architecture section). The test reads
 * the sources under {@code src/main/java} (imports and fully qualified names in code; comments and strings do not
 * count), maps each package to its room and fails on any use of a room the table below does not allow, naming the
 * file and the class it reached for. A new package must be given a room here.
 */
class DependencyRulesTest {
    /** Package prefix → room (longest prefix wins). */
    static final Map<String, String> ROOMS = new LinkedHashMap<>();
    /** Room → the rooms it may use (besides itself). */
    static final Map<String, Set<String>> ALLOWED = new LinkedHashMap<>();
    /** Classes every room may use: the service's one error type. */
    static final Set<String> KERNEL = Set.of("dev.sdserve.job.ServeException");

    static {
        ROOMS.put("dev.sdserve.cli", "cli");                // entry point and commands: argument parsing and a call
        ROOMS.put("dev.sdserve.tools", "tools");            // clients that drive the service: loadgen, bench, simulate
        ROOMS.put("dev.sdserve.app", "app");                // wiring only
        ROOMS.put("dev.sdserve.api", "api");                // transports: gRPC, REST, A1111
        ROOMS.put("dev.sdserve.auth", "api");               // the transports' API keys and quotas
        ROOMS.put("dev.sdserve.train", "train");            // LoRA fine-tuning (background work of the scheduler)
        ROOMS.put("dev.sdserve.scheduler", "scheduler");    // requests as state machines, plans, execution, events
        ROOMS.put("dev.sdserve.admission", "admission");    // validation, completion prediction, the decision
        ROOMS.put("dev.sdserve.ops", "ops");                // metrics, tracing, health, drain
        ROOMS.put("dev.sdserve.image", "image");            // PNG text, A1111 infotext
        ROOMS.put("dev.sdserve.preview", "preview");        // previews, PNG encoding
        ROOMS.put("dev.sdserve.job", "job");                // the contract: requests, jobs, events, errors
        ROOMS.put("dev.sdserve.engine.tf", "engine-impl");  // the TensorFlow engine and networks
        ROOMS.put("dev.sdserve.engine.fake", "engine-impl");// the deterministic test engine
        ROOMS.put("dev.sdserve.engine", "engine");          // the engine's interfaces, its call data, residency
        ROOMS.put("dev.sdserve.prompt", "prompt");          // A1111 prompt syntax: weights, chunks, BREAK, schedules
        ROOMS.put("dev.sdserve.sampler", "sampler");        // stateless step maths
        ROOMS.put("dev.sdserve.model", "model");            // files: safetensors, layouts, tokenizer, registry
        ROOMS.put("dev.sdserve.config", "config");          // the application.properties mapping
        ROOMS.put("dev.sdserve.clock", "clock");            // time (system or simulated)

        allow("cli", "tools", "app", "api", "train", "scheduler", "admission", "ops", "image", "preview", "job",
                "engine-impl", "engine", "sampler", "prompt", "model", "config", "clock");
        allow("tools", "app", "api", "train", "scheduler", "admission", "ops", "image", "preview", "job",
                "engine-impl", "engine", "sampler", "prompt", "model", "config", "clock");
        allow("app", "api", "train", "scheduler", "admission", "ops", "image", "preview", "job", "engine-impl",
                "engine", "sampler", "prompt", "model", "config", "clock");
        allow("api", "train", "admission", "ops", "image", "preview", "job", "engine", "sampler", "prompt", "model", "config");
        allow("train", "scheduler", "job", "engine-impl", "engine", "model");
        allow("scheduler", "admission", "ops", "image", "preview", "job", "engine", "sampler", "prompt", "model", "clock");
        allow("admission", "job", "engine", "sampler", "model"); // model: a model's recommended defaults (ModelDefaults)
        allow("ops", "job", "engine", "config");
        allow("image", "job", "engine", "sampler");
        allow("preview", "engine");
        allow("job", "engine", "prompt", "model");                      // model: ModelDefaults in model listings
        allow("engine-impl", "engine", "sampler", "prompt", "model", "clock");
        allow("engine", "sampler", "model", "clock");
        allow("sampler", "model");
        allow("prompt", "model");
        allow("model");
        allow("config");
        allow("clock");
    }

    private static void allow(String room, String... uses) {
        ALLOWED.put(room, Set.of(uses));
    }

    /** The service's rooms: everything but the entry point and the tools. */
    static final Set<String> SERVICE = Set.of("app", "api", "train", "scheduler", "admission", "ops", "image",
            "preview", "job", "engine-impl", "engine", "sampler", "model", "config", "clock");

    /** One use of a class in another package. */
    record Use(String file, String fromPackage, String target) {
        String targetPackage() {
            return target.substring(0, target.lastIndexOf('.'));
        }
    }

    private static final Pattern PACKAGE = Pattern.compile("^package\\s+([\\w.]+)\\s*;", Pattern.MULTILINE);
    /** A qualified name: lower-case package segments, then the first upper-case segment (the top-level class). */
    private static final Pattern QUALIFIED = Pattern.compile("\\bdev\\.sdserve(?:\\.[a-z_][a-z0-9_]*)+\\.[A-Z]\\w*");
    /** An on-demand import of a whole package. */
    private static final Pattern WILDCARD = Pattern.compile("\\bimport\\s+(dev\\.sdserve(?:\\.[a-z_][a-z0-9_]*)+)\\.\\*\\s*;");

    /** Comments, string literals and text blocks removed (names in them are no dependency). */
    static String code(String source) {
        String s = source.replaceAll("(?s)\"\"\".*?\"\"\"", "\"\"");
        s = s.replaceAll("(?s)/\\*.*?\\*/", " ");
        s = s.replaceAll("//[^\\n]*", "");
        s = s.replaceAll("\"(?:\\\\.|[^\"\\\\\\n])*\"", "\"\"");
        return s.replaceAll("'(?:\\\\.|[^'\\\\])'", "' '");
    }

    static List<Use> uses(String file, String source) {
        String code = code(source);
        Matcher pm = PACKAGE.matcher(code);
        if (!pm.find()) {
            throw new AssertionError(file + ": no package declaration");
        }
        String pkg = pm.group(1);
        List<Use> out = new ArrayList<>();
        Matcher m = QUALIFIED.matcher(code);
        while (m.find()) {
            String target = m.group();
            if (!target.substring(0, target.lastIndexOf('.')).equals(pkg)) {
                out.add(new Use(file, pkg, target));
            }
        }
        Matcher w = WILDCARD.matcher(code);
        while (w.find()) {
            if (!w.group(1).equals(pkg)) {
                out.add(new Use(file, pkg, w.group(1) + ".*"));
            }
        }
        return out;
    }

    static String roomOf(String pkg) {
        String best = null;
        for (String prefix : ROOMS.keySet()) {
            if ((pkg.equals(prefix) || pkg.startsWith(prefix + ".")) && (best == null || prefix.length() > best.length())) {
                best = prefix;
            }
        }
        return best == null ? null : ROOMS.get(best);
    }

    /** Violations among the uses, one readable line each. */
    static List<String> violations(List<Use> uses) {
        Set<String> out = new TreeSet<>();
        for (Use u : uses) {
            String from = roomOf(u.fromPackage());
            String to = roomOf(u.targetPackage());
            if (from == null) {
                out.add(u.file() + ": package " + u.fromPackage() + " is in no room (give it one in DependencyRulesTest.ROOMS)");
                continue;
            }
            if (to == null) {
                out.add(u.file() + ": uses " + u.target() + ", whose package is in no room (DependencyRulesTest.ROOMS)");
                continue;
            }
            if (from.equals(to) || KERNEL.contains(u.target()) || ALLOWED.get(from).contains(to)) {
                continue;
            }
            out.add(u.file() + ": " + from + " → " + to + " (" + u.target() + "); " + from + " may use only "
                    + new TreeSet<>(ALLOWED.get(from)));
        }
        return new ArrayList<>(out);
    }

    static List<Use> mainSources() {
        Path root = Path.of("src", "main", "java");
        assertTrue(Files.isDirectory(root), "run from the project directory: " + root.toAbsolutePath());
        List<Use> all = new ArrayList<>();
        try (Stream<Path> files = Files.walk(root)) {
            for (Path p : files.filter(f -> f.toString().endsWith(".java")).sorted().toList()) {
                all.addAll(uses(root.relativize(p).toString(), Files.readString(p)));
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return all;
    }

    @Test
    void everyDependencyBetweenRoomsPointsDown() {
        List<Use> uses = mainSources();
        // the reading works: the scheduler does use the engine's interface and admission
        assertTrue(uses.stream().anyMatch(u -> u.fromPackage().equals("dev.sdserve.scheduler")
                && u.target().equals("dev.sdserve.engine.Engine")), "no scheduler → engine use found: the parser is broken");
        assertTrue(uses.size() > 500, "only " + uses.size() + " cross-package uses found");
        List<String> v = violations(uses);
        assertTrue(v.isEmpty(), v.size() + " dependencies point the wrong way:\n  " + String.join("\n  ", v));
    }

    @Test
    void theRuleTableIsOneWay() {
        // no cycle among the rooms: a topological order exists
        Map<String, Set<String>> left = new LinkedHashMap<>();
        ALLOWED.forEach((k, v) -> left.put(k, new TreeSet<>(v)));
        for (Set<String> targets : ALLOWED.values()) {
            for (String t : targets) {
                assertTrue(ALLOWED.containsKey(t), "room " + t + " has no rule");
            }
        }
        while (!left.isEmpty()) {
            String leaf = left.entrySet().stream().filter(e -> e.getValue().isEmpty()).map(Map.Entry::getKey)
                    .findFirst().orElseThrow(() -> new AssertionError("the allowed uses form a cycle among " + left.keySet()));
            left.remove(leaf);
            left.values().forEach(s -> s.remove(leaf));
        }
        assertEquals(new TreeSet<>(ROOMS.values()), new TreeSet<>(ALLOWED.keySet()), "every room has a rule");
    }

    @Test
    void theNamedRulesHold() {
        Set<String> rooms = ALLOWED.keySet();
        // the scheduler knows interfaces (the engine's, residency), never the wiring or an engine implementation
        assertFalse(ALLOWED.get("scheduler").contains("app"));
        assertFalse(ALLOWED.get("scheduler").contains("engine-impl"));
        // admission decides on what the scheduler tells it; it does not reach into the scheduler
        assertFalse(ALLOWED.get("admission").contains("scheduler"));
        // the engine and the sampler know nothing of scheduling; the sampler nothing of the engine
        assertFalse(ALLOWED.get("engine").contains("scheduler"));
        assertFalse(ALLOWED.get("engine-impl").contains("scheduler"));
        assertFalse(ALLOWED.get("sampler").contains("engine"));
        assertFalse(ALLOWED.get("sampler").contains("scheduler"));
        // transports use the contract, not the scheduler or the wiring
        assertFalse(ALLOWED.get("api").contains("scheduler"));
        assertFalse(ALLOWED.get("api").contains("app"));
        // no service room uses the tools (clients of the service) or the command line
        for (String r : SERVICE) {
            assertTrue(rooms.contains(r), r);
            assertFalse(ALLOWED.get(r).contains("tools"), r + " → tools");
            assertFalse(ALLOWED.get(r).contains("cli"), r + " → cli");
        }
    }

    @Test
    void theCheckerFindsAWrongWayUseAndIgnoresCommentsAndStrings() {
        String src = """
                package dev.sdserve.scheduler;

                import dev.sdserve.engine.Engine;
                import dev.sdserve.app.Assembly;
                import dev.sdserve.job.ServeException;
                import dev.sdserve.cli.*;

                /** See {@link dev.sdserve.tools.bench.Bench}. */
                final class X {
                    // dev.sdserve.cli.SdServeMain is mentioned only here
                    String s = "dev.sdserve.api.rest.RestMapper";
                    Object o = new dev.sdserve.engine.fake.FakeEngine(null);
                }
                """;
        List<String> v = violations(uses("scheduler/X.java", src));
        assertEquals(3, v.size(), v.toString());
        assertTrue(v.get(0).contains("scheduler → app (dev.sdserve.app.Assembly)"), v.get(0));
        assertTrue(v.get(1).contains("scheduler → cli (dev.sdserve.cli.*)"), v.get(1));
        assertTrue(v.get(2).contains("scheduler → engine-impl (dev.sdserve.engine.fake.FakeEngine)"), v.get(2));

        String engine = """
                package dev.sdserve.engine.tf;
                import dev.sdserve.job.ServeException;
                import dev.sdserve.job.JobEvent;
                """;
        List<String> e = violations(uses("engine/tf/Y.java", engine));
        assertEquals(1, e.size(), "only the kernel class is open to every room: " + e);
        assertTrue(e.get(0).contains("engine-impl → job (dev.sdserve.job.JobEvent)"), e.get(0));

        List<String> unknown = violations(uses("newroom/Z.java", "package dev.sdserve.newroom;\nimport dev.sdserve.job.Job;\n"));
        assertEquals(1, unknown.size());
        assertTrue(unknown.get(0).contains("is in no room"), unknown.get(0));
    }
}
