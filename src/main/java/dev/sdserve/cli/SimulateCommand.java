package dev.sdserve.cli;

import dev.sdserve.tools.simulate.SimulationReport;

import java.io.PrintStream;
import java.util.ArrayList;
import java.util.List;

/**
 * {@code simulate}: parses the options and prints the {@link SimulationReport} (the real scheduler on a simulated
 * clock against GPU-measured costs, compared with FCFS and request-level dynamic batching); {@code --overhead}:
 * scheduling cost per decision with a zero-cost engine.
 */
public final class SimulateCommand implements CliCommand {
    @Override
    public String name() {
        return "simulate";
    }

    @Override
    public String summary() {
        return "simulate the scheduler against measured GPU costs (goodput vs FCFS and dynamic batching)";
    }

    private static void usage(PrintStream out) {
        out.println("""
                Usage: simulate [options]
                  Runs sd-serve's scheduler on a simulated clock with engine costs measured on an H200 (SD 1.5,
                  512x512, guidance 7.5), Poisson arrivals at a sweep of rates, steps uniform in [min, max], SLO =
                  factor x the request's isolated latency. Baselines in the same harness: FCFS one request at a
                  time (A1111/ComfyUI) and request-level dynamic batching (Triton; best of a grid of max batch and
                  queue-delay window). Prints per policy and SLO the goodput (highest rate with >= 99%% of requests
                  finished within their SLO; rejected requests count as misses), p50/p99 latency, mean batch and
                  rejections at that rate; the last line compares goodputs at SLO 3x on the eager table.

                Options:
                  --costs PATH      cost file (default %s, also found under /work/shared/gpu)
                  --table NAME      eager | compiled | both (default both)
                  --requests N      requests per trace (default 600)
                  --slo LIST        SLO factors (default 2,3,5)
                  --steps MIN-MAX   step range (default 20-50)
                  --seed S          trace seed (default 1)
                  --target F        SLO attainment for goodput (default 0.99)
                  --overhead        only the overhead benchmark (zero-cost engine, system clock)
                  --help            this text
                """.formatted(SimulationReport.DEFAULT_COSTS));
    }

    @Override
    public int run(List<String> args, PrintStream out) throws Exception {
        String costs = null;
        String table = "both";
        int requests = 600;
        List<Double> slos = List.of(2.0, 3.0, 5.0);
        int minSteps = 20;
        int maxSteps = 50;
        long seed = 1;
        double target = 0.99;
        boolean overhead = false;
        try {
            for (int i = 0; i < args.size(); i++) {
                String a = args.get(i);
                switch (a) {
                    case "--help", "-h" -> {
                        usage(out);
                        return 0;
                    }
                    case "--costs" -> costs = args.get(++i);
                    case "--table" -> table = args.get(++i);
                    case "--requests" -> requests = Integer.parseInt(args.get(++i));
                    case "--slo" -> {
                        List<Double> l = new ArrayList<>();
                        for (String s : args.get(++i).split(",")) {
                            l.add(Double.parseDouble(s.trim().replace("x", "")));
                        }
                        slos = l;
                    }
                    case "--steps" -> {
                        String[] p = args.get(++i).split("-");
                        minSteps = Integer.parseInt(p[0]);
                        maxSteps = Integer.parseInt(p[p.length - 1]);
                    }
                    case "--seed" -> seed = Long.parseLong(args.get(++i));
                    case "--target" -> target = Double.parseDouble(args.get(++i));
                    case "--overhead" -> overhead = true;
                    default -> throw new IllegalArgumentException("unknown option " + a);
                }
            }
            if (!table.equals("both") && !SimulationReport.TABLES.containsKey(table)) {
                throw new IllegalArgumentException("--table must be eager, compiled or both, not " + table);
            }
            if (requests < 10 || minSteps < 1 || maxSteps < minSteps || slos.isEmpty()) {
                throw new IllegalArgumentException("need --requests >= 10, 1 <= min steps <= max steps, some SLOs");
            }
        } catch (IndexOutOfBoundsException | IllegalArgumentException e) {
            System.err.println("simulate: " + (e instanceof IndexOutOfBoundsException ? "missing option value" : e.getMessage()));
            usage(System.err);
            return 2;
        }
        if (overhead) {
            SimulationReport.overhead(out);
            return 0;
        }
        return SimulationReport.run(new SimulationReport.Options(costs, table, requests, slos, minSteps, maxSteps, seed,
                target), out);
    }
}
