package dev.sdserve.cli;

import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.function.Supplier;

/** The registry of CLI commands (other than {@code serve}). */
public final class Commands {
    private static final List<Supplier<CliCommand>> FACTORIES = new ArrayList<>();

    static {
        // Every command, in the order `--help` lists them (the tools room's after the service's own).
        FACTORIES.add(GenerateCommand::new);
        FACTORIES.add(ListCommands.Models::new);
        FACTORIES.add(ListCommands.Loras::new);
        FACTORIES.add(ConformanceCommand::new);
        FACTORIES.add(BenchCommand::new);
        FACTORIES.add(SimulateCommand::new);
        FACTORIES.add(LoadGenCommand::new);
    }

    private Commands() {
    }

    public static List<CliCommand> all() {
        return FACTORIES.stream().map(Supplier::get).toList();
    }

    public static Optional<CliCommand> find(String name) {
        return all().stream().filter(c -> c.name().equals(name)).findFirst();
    }
}
