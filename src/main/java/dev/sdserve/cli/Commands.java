package dev.sdserve.cli;

import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.function.Supplier;

/** The registry of CLI commands (other than {@code serve}). */
public final class Commands {
    private static final List<Supplier<CliCommand>> FACTORIES = new ArrayList<>();

    static {
        // Each room registers its commands here, in the order `--help` lists them.
        FACTORIES.add(GenerateCommand::new);
        FACTORIES.add(ListCommands.Models::new);
        FACTORIES.add(ListCommands.Loras::new);
        FACTORIES.add(dev.sdserve.cli.ConformanceCommand::new);
        FACTORIES.add(dev.sdserve.cli.BenchCommand::new);
        FACTORIES.add(dev.sdserve.cli.SimulateCommand::new);
        FACTORIES.add(dev.sdserve.cli.LoadGenCommand::new);
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
