package dev.sdserve.cli;

import dev.sdserve.tools.loadgen.LoadGen;

import java.io.PrintStream;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Set;

/** {@code loadgen}: open-loop (Poisson) or soak load against a running server over gRPC. */
public final class LoadGenCommand implements CliCommand {
    static final String HELP = """
            Usage: sd-serve loadgen [options]

            Sends Generate requests (gRPC, streaming) to a running sd-serve and reports throughput, time to first
            preview and end-to-end p50/p95/p99, SLO attainment, and refusals by status code. The last line is
              loadgen: sent=N ok=N refused=N failed=N p99_ms=N

            Open loop (default): Poisson arrivals at --rate per second (or ramping --ramp FROM:TO over the run),
            whatever the server's speed; bounded by --duration and --requests.
            Soak (--soak): --requests requests at --concurrency, each response checked (one ending per request,
            unique job ids, every image decodes to the requested size, seeds echoed); exits 1 on any problem.

            Options:
              --target HOST:PORT    server gRPC address (default localhost:9000)
              --rate R              arrivals per second (default 2)
              --ramp FROM:TO        rate ramping linearly from FROM to TO per second over --duration
              --duration D          stop sending after D (e.g. 30s, 2m; default 30s)
              --requests N          stop sending after N requests (default 100; soak: 500)
              --concurrency C       soak: requests in flight (default 8); open loop: cap on requests in flight,
                                    arrivals beyond it are skipped and reported (default 256)
              --shape SPEC          a request shape of the mix, repeatable:
                                    slo=interactive|standard|batch,size=WxH,steps=N,images=N,preview=N,weight=W
                                    (default mix: interactive 64x64 4 steps w5; standard 64x64 8 steps w3;
                                    batch 64x64 12 steps 2 images w2)
              --model NAME          model to request (default: the server's default)
              --deadline-ms MS      relative deadline sent with every request (default: the SLO class default)
              --grace D             after the last send, wait this long for running requests, then cancel them
                                    (default 60s)
              --seed S              seed of the arrival process and request seeds (default 1)
              --pid PID             sample the server's RSS and threads from /proc/PID/status
              --metrics-url URL     else sample JVM memory and threads from the server's /q/metrics
              --sample-every D      resource sampling period (default 5s)
              --check               exit 1 if any request failed or a check found a problem (implied by --soak)
              --help                this text
            """;

    @Override
    public String name() {
        return "loadgen";
    }

    @Override
    public String summary() {
        return "load a running server over gRPC: open-loop Poisson arrivals or a checked soak; latency report";
    }

    @Override
    public int run(List<String> argv, PrintStream out) throws Exception {
        if (argv.contains("--help") || argv.contains("-h")) {
            out.print(HELP);
            return 0;
        }
        Args a;
        LoadGen.Config cfg;
        LoadGen.ResourceSampler sampler;
        boolean check;
        try {
            a = Args.parse(argv, Set.of("target", "rate", "ramp", "duration", "requests", "concurrency", "shape", "model",
                    "deadline-ms", "grace", "seed", "pid", "metrics-url", "sample-every"), Set.of("soak", "check"));
            if (!a.positionals().isEmpty()) {
                throw new IllegalArgumentException("unexpected argument '" + a.positionals().get(0) + "'");
            }
            cfg = config(a);
            long period = duration(a.get("sample-every", "5s"), "sample-every").toMillis();
            if (a.has("pid")) {
                sampler = LoadGen.procSampler(Long.parseLong(a.get("pid", "")), period);
            } else if (a.has("metrics-url")) {
                sampler = LoadGen.metricsSampler(a.get("metrics-url", ""), period);
            } else {
                sampler = null;
            }
            check = cfg.soak() || a.has("check");
        } catch (IllegalArgumentException e) {
            System.err.println("loadgen: " + e.getMessage());
            System.err.println("(loadgen --help for the options)");
            return 2;
        }
        out.println(describe(cfg));
        LoadGen.Result r = new LoadGen(cfg, sampler, System.err::println).run();
        List<String> lines = LoadGen.report(cfg, r);
        lines.forEach(out::println);
        out.flush();
        if (r.ok() == 0 && r.sent() > 0) {
            return 1;
        }
        return check && (r.failed() > 0 || !r.problems().isEmpty()) ? 1 : 0;
    }

    static String describe(LoadGen.Config c) {
        String mode = c.soak()
                ? String.format(Locale.ROOT, "soak: %d requests at concurrency %d", c.maxRequests(), c.concurrency())
                : c.rateStart() == c.rateEnd()
                ? String.format(Locale.ROOT, "open loop: Poisson %.2f req/s", c.rateStart())
                : String.format(Locale.ROOT, "open loop: Poisson ramp %.2f -> %.2f req/s", c.rateStart(), c.rateEnd());
        StringBuilder sb = new StringBuilder(String.format(Locale.ROOT, "loadgen: %s:%d, %s, at most %d requests / %d s; mix:",
                c.host(), c.port(), mode, c.maxRequests(), c.duration().toSeconds()));
        for (LoadGen.Shape s : c.mix()) {
            sb.append(' ').append(s.name()).append("*").append(s.weight());
        }
        return sb.toString();
    }

    static LoadGen.Config config(Args a) {
        String target = a.get("target", "localhost:9000");
        int colon = target.lastIndexOf(':');
        if (colon <= 0) {
            throw new IllegalArgumentException("--target must be HOST:PORT, got '" + target + "'");
        }
        String host = target.substring(0, colon);
        int port;
        try {
            port = Integer.parseInt(target.substring(colon + 1));
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("--target must be HOST:PORT, got '" + target + "'");
        }
        boolean soak = a.has("soak");
        double r0 = a.decimal("rate", 2.0), r1 = r0;
        if (a.has("ramp")) {
            String[] p = a.get("ramp", "").split(":");
            if (p.length != 2) {
                throw new IllegalArgumentException("--ramp must be FROM:TO (requests per second), got '" + a.get("ramp", "") + "'");
            }
            try {
                r0 = Double.parseDouble(p[0]);
                r1 = Double.parseDouble(p[1]);
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException("--ramp must be FROM:TO (requests per second), got '" + a.get("ramp", "") + "'");
            }
        }
        if (!(r0 > 0) || !(r1 > 0)) {
            throw new IllegalArgumentException("--rate/--ramp must be positive");
        }
        int requests = a.integer("requests", soak ? 500 : 100);
        int concurrency = a.integer("concurrency", soak ? 8 : 256);
        if (requests <= 0 || concurrency <= 0) {
            throw new IllegalArgumentException("--requests and --concurrency must be positive");
        }
        List<LoadGen.Shape> mix = new ArrayList<>();
        for (String s : a.all("shape")) {
            mix.add(LoadGen.Shape.parse(s));
        }
        if (mix.isEmpty()) {
            mix = LoadGen.DEFAULT_MIX;
        }
        long deadline = a.integer("deadline-ms", 0);
        if (deadline < 0) {
            throw new IllegalArgumentException("--deadline-ms must be >= 0");
        }
        Duration dur = duration(a.get("duration", soak ? "30m" : "30s"), "duration");
        return new LoadGen.Config(host, port, mix, r0, r1, dur, requests, concurrency,
                duration(a.get("grace", "60s"), "grace"), soak, a.integer("seed", 1), a.get("model", null), deadline);
    }

    /** Parses 500ms, 30s, 2m, 1h, or a bare number of seconds. */
    static Duration duration(String v, String option) {
        try {
            String s = v.trim().toLowerCase(Locale.ROOT);
            if (s.endsWith("ms")) {
                return Duration.ofMillis(Long.parseLong(s.substring(0, s.length() - 2)));
            }
            if (s.endsWith("s")) {
                return Duration.ofMillis(Math.round(Double.parseDouble(s.substring(0, s.length() - 1)) * 1000));
            }
            if (s.endsWith("m")) {
                return Duration.ofMillis(Math.round(Double.parseDouble(s.substring(0, s.length() - 1)) * 60_000));
            }
            if (s.endsWith("h")) {
                return Duration.ofMillis(Math.round(Double.parseDouble(s.substring(0, s.length() - 1)) * 3_600_000));
            }
            return Duration.ofMillis(Math.round(Double.parseDouble(s) * 1000));
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("--" + option + " must be a duration such as 500ms, 30s, 2m; got '" + v + "'");
        }
    }
}
