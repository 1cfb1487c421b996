package dev.sdserve.cli;

import java.io.PrintStream;
import java.util.List;

/**
 * A sub-command of the packaged application ({@code java -jar quarkus-run.jar <command> …}). Commands other than
 * {@code serve} run without starting the server. Each command handles {@code --help} itself and returns an exit code.
 */
public interface CliCommand {
    String name();

    /** One line for the command list. */
    String summary();

    /**
     * Runs the command.
     *
     * @param args arguments after the command name
     * @param out  where results go (progress and errors may go to System.err)
     * @return the process exit code (0 = success, 2 = bad usage)
     */
    int run(List<String> args, PrintStream out) throws Exception;
}
