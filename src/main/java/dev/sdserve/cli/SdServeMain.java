package dev.sdserve.cli;

import io.quarkus.runtime.Quarkus;
import io.quarkus.runtime.annotations.QuarkusMain;

import java.util.Arrays;
import java.util.List;
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
        try {
            code = cmd.get().run(Arrays.asList(args).subList(1, args.length), System.out);
        } catch (Exception e) {
            System.err.println(args[0] + ": " + (e.getMessage() == null ? e.toString() : e.getMessage()));
            code = 1;
        }
        System.out.flush();
        System.exit(code);
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
