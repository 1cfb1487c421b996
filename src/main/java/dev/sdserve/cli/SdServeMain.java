package dev.sdserve.cli;

import dev.sdserve.ops.HugePages;
import io.quarkus.runtime.Quarkus;
import io.quarkus.runtime.annotations.QuarkusMain;

import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * Entry point of the packaged app: {@code java -jar quarkus-run.jar [command] [options]}. {@code serve} (the
 * default) starts the server; every other command runs in-process without it.
 */
@QuarkusMain
public class SdServeMain {
    public static void main(String... args) {
        if (args.length == 0 || args[0].equals("serve") || args[0].startsWith("-D")) {
            List<String> rest = args.length == 0 ? List.of() : Arrays.asList(args).subList(args[0].equals("serve") ? 1 : 0, args.length);
            if (rest.contains("--help") || rest.contains("-h")) {
                System.out.println("""
                        Usage: sd-serve serve

                        Starts the server: gRPC on quarkus.grpc.server.port (default 9000), REST, the OpenAPI document and
                        Swagger UI (/q/swagger-ui) on quarkus.http.port (default 8080). Configure with -Dkey=value system
                        properties, environment variables (SDSERVE_MODELS_DIR, …) or config/application.properties;
                        the keys are listed in the README.""");
                return;
            }
            Quarkus.run(rest.toArray(String[]::new));
            return;
        }
        if (args[0].equals("--help") || args[0].equals("-h") || args[0].equals("help")) {
            printHelp();
            return;
        }
        Optional<CliCommand> cmd = Commands.find(args[0]);
        if (cmd.isEmpty()) {
            System.err.println("unknown command '" + args[0] + "'");
            printHelp();
            System.exit(2);
            return;
        }
        int code;
        HugePages.followLauncher(System.getenv());
        if (runsEngine(Arrays.asList(args))) {
            try {
                Optional<Map<String, String>> env = HugePages.relaunchEnvironment(System.getenv(), HugePages.thpMode(),
                        System.getProperty("sdserve.hugePages"), ProcessHandle.current().pid());
                Optional<Integer> child = env.isEmpty() ? Optional.empty() : HugePages.relaunch(env.get());
                if (child.isPresent()) {
                    System.exit(child.get());
                    return;
                }
            } catch (IllegalArgumentException e) {
                System.err.println(args[0] + ": " + e.getMessage());
                System.exit(2);
                return;
            } catch (java.io.IOException e) {
                System.err.println(args[0] + ": could not relaunch with huge pages (" + e.getMessage()
                        + "); running on 4 KiB pages");
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                System.exit(130);
                return;
            }
        }
        try {
            code = cmd.get().run(Arrays.asList(args).subList(1, args.length), System.out);
        } catch (Exception e) {
            System.err.println(args[0] + ": " + (e.getMessage() == null ? e.toString() : e.getMessage()));
            code = 1;
        }
        System.out.flush();
        System.exit(code);
    }

    /**
     * The one-shot commands that run the engine in this process (and so gain from huge pages; {@link HugePages}):
     * {@code generate} without {@code --server}, {@code conformance}, {@code bench}; not for {@code --help}.
     */
    static boolean runsEngine(List<String> args) {
        if (args.isEmpty() || args.contains("--help") || args.contains("-h")) {
            return false;
        }
        return switch (args.get(0)) {
            case "generate" -> args.stream().noneMatch(a -> a.equals("--server") || a.startsWith("--server="));
            case "conformance", "bench" -> true;
            default -> false;
        };
    }

    static void printHelp() {
        StringBuilder sb = new StringBuilder("Usage: sd-serve <command> [options]   (`<command> --help` for its options)\n\nCommands:\n");
        sb.append(String.format("  %-12s %s%n", "serve", "start the gRPC + REST server (the default)"));
        for (CliCommand c : Commands.all()) {
            sb.append(String.format("  %-12s %s%n", c.name(), c.summary()));
        }
        System.out.print(sb);
    }
}
