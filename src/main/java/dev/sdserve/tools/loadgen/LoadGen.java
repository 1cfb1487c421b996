package dev.sdserve.tools.loadgen;

import dev.sdserve.api.grpc.v1.Completed;
import dev.sdserve.api.grpc.v1.GenerateEvent;
import dev.sdserve.api.grpc.v1.GenerateRequest;
import dev.sdserve.api.grpc.v1.GenerationGrpc;
import dev.sdserve.api.grpc.v1.PreviewOptions;
import dev.sdserve.api.grpc.v1.SloClass;
import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.netty.NettyChannelBuilder;
import io.grpc.stub.ClientCallStreamObserver;
import io.grpc.stub.ClientResponseObserver;

import javax.imageio.ImageIO;
import java.awt.image.BufferedImage;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Consumer;

/**
 * Drives a running sd-serve over gRPC (the streaming {@code Generate} call) and measures it from the client side.
 *
 * <p>Two modes. <b>Open loop</b>: requests arrive as a Poisson process at a fixed rate (or a rate ramping linearly
 * over the run), independent of how fast the server answers, so overload shows as queueing and refusals rather
 * than as a slower client. <b>Soak</b> (closed loop): N requests at concurrency C; every response is checked (one
 * ending per request, job ids unique, every image decodes to the requested size, the seed echoed).
 *
 * <p>Both are bounded: by request count and by time; requests still running {@link Config#grace} after the last
 * send are cancelled and counted as failed ("client timeout").
 */
public final class LoadGen {

    /** One kind of request in the mix, drawn with probability proportional to {@code weight}. */
    public record Shape(String name, SloClass slo, int width, int height, int steps, int images, int previewEvery,
                        double weight, String sampler, Double guidance, String lora, double loraWeight) {
        public Shape(String name, SloClass slo, int width, int height, int steps, int images, int previewEvery, double weight) {
            this(name, slo, width, height, steps, images, previewEvery, weight, null, null, null, 0);
        }

        /**
         * Parses {@code slo=interactive,size=64x64,steps=4,images=1,preview=1,weight=2,sampler=euler_a,cfg=5,
         * lora=name:0.8} (every key optional; defaults: standard, 64x64, 8 steps, 1 image, preview every step,
         * weight 1, the server's default sampler and guidance, no LoRA).
         */
        public static Shape parse(String spec) {
            String slo = "standard";
            int w = 64, h = 64, steps = 8, images = 1, preview = 1;
            double weight = 1;
            String sampler = null, lora = null;
            Double guidance = null;
            double loraWeight = 1;
            for (String kv : spec.split(",")) {
                kv = kv.trim();
                if (kv.isEmpty()) {
                    continue;
                }
                int eq = kv.indexOf('=');
                if (eq < 0) {
                    throw new IllegalArgumentException("shape '" + spec + "': expected key=value, got '" + kv + "'");
                }
                String k = kv.substring(0, eq).trim(), v = kv.substring(eq + 1).trim();
                try {
                    switch (k) {
                        case "slo" -> slo = v.toLowerCase(Locale.ROOT);
                        case "size" -> {
                            String[] p = v.toLowerCase(Locale.ROOT).split("x");
                            if (p.length != 2) {
                                throw new IllegalArgumentException("shape '" + spec + "': size must be WxH, got '" + v + "'");
                            }
                            w = Integer.parseInt(p[0]);
                            h = Integer.parseInt(p[1]);
                        }
                        case "steps" -> steps = Integer.parseInt(v);
                        case "images" -> images = Integer.parseInt(v);
                        case "preview" -> preview = Integer.parseInt(v);
                        case "weight" -> weight = Double.parseDouble(v);
                        case "sampler" -> sampler = v;
                        case "cfg", "guidance" -> guidance = Double.parseDouble(v);
                        case "lora" -> {
                            int c = v.lastIndexOf(':');
                            lora = c < 0 ? v : v.substring(0, c);
                            loraWeight = c < 0 ? 1 : Double.parseDouble(v.substring(c + 1));
                        }
                        default -> throw new IllegalArgumentException("shape '" + spec + "': unknown key '" + k
                                + "' (slo, size, steps, images, preview, weight, sampler, cfg, lora)");
                    }
                } catch (NumberFormatException e) {
                    throw new IllegalArgumentException("shape '" + spec + "': '" + k + "' needs a number, got '" + v + "'");
                }
            }
            SloClass c = switch (slo) {
                case "interactive" -> SloClass.SLO_CLASS_INTERACTIVE;
                case "standard" -> SloClass.SLO_CLASS_STANDARD;
                case "batch" -> SloClass.SLO_CLASS_BATCH;
                default -> throw new IllegalArgumentException("shape '" + spec + "': slo must be interactive, standard or batch");
            };
            if (w <= 0 || h <= 0 || steps <= 0 || images <= 0 || preview < 0 || !(weight > 0)) {
                throw new IllegalArgumentException("shape '" + spec + "': size, steps, images and weight must be positive");
            }
            return new Shape(slo + "/" + w + "x" + h + "/" + steps + "st" + (images > 1 ? "/" + images + "img" : "")
                    + (sampler != null ? "/" + sampler : "") + (guidance != null ? "/cfg" + guidance : "")
                    + (lora != null ? "/lora:" + lora : ""),
                    c, w, h, steps, images, preview, weight, sampler, guidance, lora, loraWeight);
        }

        GenerateRequest request(long seed, String prompt, String model) {
            GenerateRequest.Builder b = GenerateRequest.newBuilder().setPrompt(prompt).setWidth(width).setHeight(height)
                    .setSteps(steps).setImages(images).setSeed(seed).setSloClass(slo)
                    .setPreview(previewEvery == 0 ? PreviewOptions.newBuilder().setOff(true).build()
                            : PreviewOptions.newBuilder().setEverySteps(previewEvery).setMaxEdge(64).build());
            if (model != null) {
                b.setModel(model);
            }
            if (sampler != null) {
                b.setSampler(sampler);
            }
            if (guidance != null) {
                b.setGuidanceScale(guidance);
            }
            if (lora != null) {
                b.addLoras(dev.sdserve.api.grpc.v1.LoraRef.newBuilder().setName(lora).setWeight(loraWeight));
            }
            return b.build();
        }
    }

    /** Default mix: mostly small interactive requests, some standard, a few multi-image batch ones. */
    public static final List<Shape> DEFAULT_MIX = List.of(
            Shape.parse("slo=interactive,size=64x64,steps=4,weight=5"),
            Shape.parse("slo=standard,size=64x64,steps=8,weight=3"),
            Shape.parse("slo=batch,size=64x64,steps=12,images=2,preview=4,weight=2"));

    /**
     * @param rateStart      arrivals per second at the start (open loop)
     * @param rateEnd        arrivals per second at the end (= rateStart for a constant rate)
     * @param duration       stop sending after this long
     * @param maxRequests    stop sending after this many
     * @param concurrency    soak: requests in flight; open loop: cap on requests in flight (arrivals beyond it are
     *                       skipped and counted, so a dead server does not make the client grow without bound)
     * @param grace          after the last send, how long to wait for the requests still running
     * @param soak           closed loop with per-response checks
     * @param deadlineMillis per-request relative deadline sent to the server (0 = the SLO class default)
     */
    public record Config(String host, int port, List<Shape> mix, double rateStart, double rateEnd, Duration duration,
                         int maxRequests, int concurrency, Duration grace, boolean soak, long seed, String model,
                         long deadlineMillis) {
    }

    /** What happened to one request. */
    public static final class Outcome {
        final int index;
        final Shape shape;
        final long seed;
        final long sentNanos;
        volatile long firstEventNanos = -1, firstPreviewNanos = -1, endNanos = -1;
        volatile String jobId;
        volatile boolean completed;
        volatile boolean accepted; // got any event: the server admitted it
        volatile Status.Code code; // on error
        volatile String error;
        volatile boolean metDeadline;
        final List<String> problems = Collections.synchronizedList(new ArrayList<>());
        volatile int endings; // how many terminal signals arrived (must be 1)

        Outcome(int index, Shape shape, long seed, long sentNanos) {
            this.index = index;
            this.shape = shape;
            this.seed = seed;
            this.sentNanos = sentNanos;
        }

        public boolean refused() {
            return !accepted && code != null;
        }

        public boolean completed() {
            return completed;
        }

        public Status.Code code() {
            return code;
        }

        public String error() {
            return error;
        }

        public String jobId() {
            return jobId;
        }

        public List<String> problems() {
            return problems;
        }
    }

    /** A sample of the server's resource use. */
    public record ResourceSample(long atMillis, long rssBytes, int threads, String source) {
    }

    /** The run's results. */
    public record Result(List<Outcome> outcomes, double seconds, int skipped, List<ResourceSample> samples,
                         List<String> problems) {
        public int sent() {
            return outcomes.size();
        }

        public int ok() {
            return (int) outcomes.stream().filter(Outcome::completed).count();
        }

        public int refused() {
            return (int) outcomes.stream().filter(Outcome::refused).count();
        }

        public int failed() {
            return sent() - ok() - refused();
        }

        public long[] e2eMillis() {
            return outcomes.stream().filter(Outcome::completed).mapToLong(o -> (o.endNanos - o.sentNanos) / 1_000_000).sorted().toArray();
        }

        public long[] firstPreviewMillis() {
            return outcomes.stream().filter(o -> o.firstPreviewNanos > 0)
                    .mapToLong(o -> (o.firstPreviewNanos - o.sentNanos) / 1_000_000).sorted().toArray();
        }

        public Map<String, Integer> refusedByCode() {
            Map<String, Integer> m = new TreeMap<>();
            outcomes.stream().filter(Outcome::refused).forEach(o -> m.merge(o.code.name(), 1, Integer::sum));
            return m;
        }

        public Map<String, Integer> failedByCode() {
            Map<String, Integer> m = new TreeMap<>();
            outcomes.stream().filter(o -> !o.completed && !o.refused())
                    .forEach(o -> m.merge(o.code == null ? "NO_ENDING" : o.code.name(), 1, Integer::sum));
            return m;
        }

        /** Completed within the deadline the server resolved for them, over completed. */
        public double sloAttainment() {
            int ok = ok();
            return ok == 0 ? Double.NaN : (double) outcomes.stream().filter(o -> o.completed && o.metDeadline).count() / ok;
        }
    }

    /** Nearest-rank percentile of sorted values (0 for none). */
    public static long percentile(long[] sorted, double p) {
        if (sorted.length == 0) {
            return 0;
        }
        int rank = (int) Math.ceil(p / 100.0 * sorted.length);
        return sorted[Math.max(0, Math.min(sorted.length - 1, rank - 1))];
    }

    private final Config cfg;
    private final Consumer<String> progress;
    private final ResourceSampler sampler;

    public LoadGen(Config cfg, ResourceSampler sampler, Consumer<String> progress) {
        this.cfg = cfg;
        this.sampler = sampler;
        this.progress = progress;
    }

    public Result run() throws InterruptedException {
        ExecutorService callbacks = Executors.newFixedThreadPool(2, r -> {
            Thread t = new Thread(r, "loadgen-callback");
            t.setDaemon(true);
            return t;
        });
        ManagedChannel channel = NettyChannelBuilder.forAddress(cfg.host(), cfg.port()).usePlaintext()
                .maxInboundMessageSize(64 << 20).executor(callbacks).build();
        List<Outcome> outcomes = Collections.synchronizedList(new ArrayList<>());
        List<ClientCallStreamObserver<GenerateRequest>> calls = Collections.synchronizedList(new ArrayList<>());
        List<ResourceSample> samples = Collections.synchronizedList(new ArrayList<>());
        AtomicInteger inFlight = new AtomicInteger();
        Semaphore slots = new Semaphore(Math.max(1, cfg.concurrency()));
        int skipped = 0;
        Random rnd = new Random(cfg.seed());
        double totalWeight = cfg.mix().stream().mapToDouble(Shape::weight).sum();
        GenerationGrpc.GenerationStub stub = GenerationGrpc.newStub(channel);
        awaitReady(channel, Duration.ofSeconds(10));
        Thread sampling = startSampling(samples);
        long start = System.nanoTime();
        long end = start + cfg.duration().toNanos();
        try {
            long[] offsets = cfg.soak() ? null : schedule(cfg, rnd);
            long lastReport = start;
            for (int i = 0; i < cfg.maxRequests(); i++) {
                if (cfg.soak()) {
                    // closed loop: wait for a free slot (bounded by the end time)
                    long wait = end - System.nanoTime();
                    if (wait <= 0 || !slots.tryAcquire(wait, TimeUnit.NANOSECONDS)) {
                        break;
                    }
                } else {
                    if (i >= offsets.length) {
                        break;
                    }
                    long sleep = start + offsets[i] - System.nanoTime();
                    if (sleep > 0) {
                        TimeUnit.NANOSECONDS.sleep(sleep);
                    }
                    if (!slots.tryAcquire()) {
                        skipped++;
                        continue;
                    }
                }
                Shape shape = pick(rnd, totalWeight);
                long seed = cfg.seed() * 1_000_003L + i;
                Outcome o = new Outcome(i, shape, seed, System.nanoTime());
                outcomes.add(o);
                inFlight.incrementAndGet();
                GenerationGrpc.GenerationStub s = stub;
                if (cfg.deadlineMillis() > 0) {
                    s = s.withDeadlineAfter(cfg.deadlineMillis() * 2 + 30_000, TimeUnit.MILLISECONDS);
                }
                GenerateRequest req = shape.request(seed, "loadgen request " + i + " " + shape.name(), cfg.model());
                if (cfg.deadlineMillis() > 0) {
                    req = req.toBuilder().setDeadlineMs((int) cfg.deadlineMillis()).build();
                }
                s.generate(req, new Observer(o, calls, () -> {
                    inFlight.decrementAndGet();
                    slots.release();
                }));
                long now = System.nanoTime();
                if (now - lastReport > 5_000_000_000L) {
                    lastReport = now;
                    progress.accept(String.format(Locale.ROOT, "loadgen: %.0f s: sent %d, in flight %d",
                            (now - start) / 1e9, outcomes.size(), inFlight.get()));
                }
            }
            long sentDone = System.nanoTime();
            long graceEnd = sentDone + cfg.grace().toNanos();
            while (inFlight.get() > 0 && System.nanoTime() < graceEnd) {
                Thread.sleep(20);
            }
            if (inFlight.get() > 0) {
                progress.accept("loadgen: " + inFlight.get() + " request(s) still running after the grace period; cancelling them");
                synchronized (calls) {
                    for (ClientCallStreamObserver<GenerateRequest> c : calls) {
                        c.cancel("loadgen grace period over", null);
                    }
                }
                long cancelEnd = System.nanoTime() + 5_000_000_000L;
                while (inFlight.get() > 0 && System.nanoTime() < cancelEnd) {
                    Thread.sleep(20);
                }
            }
        } finally {
            sampling.interrupt();
            sampling.join(2000);
            channel.shutdownNow();
            channel.awaitTermination(5, TimeUnit.SECONDS);
            callbacks.shutdownNow();
        }
        double seconds = (System.nanoTime() - start) / 1e9;
        List<Outcome> all;
        synchronized (outcomes) {
            all = new ArrayList<>(outcomes);
        }
        if (sampler != null) {
            ResourceSample last = sampler.sample();
            if (last != null) {
                samples.add(last);
            }
        }
        return new Result(all, seconds, skipped, new ArrayList<>(samples), check(all));
    }

    /**
     * Open-loop arrival times, in nanoseconds from the start: a Poisson process (exponential gaps) whose rate moves
     * linearly from {@code rateStart} to {@code rateEnd} over the duration (each gap is drawn at the rate in force
     * at its start), cut at the duration and at {@code maxRequests}.
     */
    static long[] schedule(Config cfg, Random rnd) {
        long dur = cfg.duration().toNanos();
        long[] out = new long[Math.min(cfg.maxRequests(), 1 << 20)];
        int n = 0;
        long t = 0;
        while (n < out.length) {
            double frac = dur == 0 ? 0 : Math.min(1, (double) t / dur);
            double rate = cfg.rateStart() + (cfg.rateEnd() - cfg.rateStart()) * frac;
            t += (long) (-Math.log(1 - rnd.nextDouble()) / Math.max(rate, 1e-6) * 1e9);
            if (t >= dur) {
                break;
            }
            out[n++] = t;
        }
        return java.util.Arrays.copyOf(out, n);
    }

    /** Connects before the clock starts, so the first arrivals do not queue behind the connection handshake. */
    private void awaitReady(ManagedChannel channel, Duration max) throws InterruptedException {
        long end = System.nanoTime() + max.toNanos();
        while (channel.getState(true) != io.grpc.ConnectivityState.READY) {
            if (System.nanoTime() > end) {
                progress.accept("loadgen: " + cfg.host() + ":" + cfg.port() + " not reachable after " + max.toSeconds()
                        + " s; sending anyway (requests will fail with UNAVAILABLE)");
                return;
            }
            Thread.sleep(10);
        }
    }

    private Thread startSampling(List<ResourceSample> samples) {
        Thread t = new Thread(() -> {
            try {
                while (sampler != null && !Thread.currentThread().isInterrupted()) {
                    ResourceSample s = sampler.sample();
                    if (s != null) {
                        samples.add(s);
                    }
                    Thread.sleep(sampler.periodMillis());
                }
            } catch (InterruptedException ignored) {
                // done
            }
        }, "loadgen-sampler");
        t.setDaemon(true);
        t.start();
        return t;
    }

    private Shape pick(Random rnd, double total) {
        double x = rnd.nextDouble() * total;
        for (Shape s : cfg.mix()) {
            x -= s.weight();
            if (x < 0) {
                return s;
            }
        }
        return cfg.mix().get(cfg.mix().size() - 1);
    }

    /** Cross-request checks: each request ended exactly once, no job id shared between requests. */
    static List<String> check(List<Outcome> all) {
        List<String> problems = new ArrayList<>();
        Map<String, Integer> byJob = new HashMap<>();
        for (Outcome o : all) {
            if (o.endings != 1) {
                problems.add("request " + o.index + ": " + o.endings + " endings (expected exactly 1)");
            }
            if (o.jobId != null) {
                Integer prev = byJob.put(o.jobId, o.index);
                if (prev != null) {
                    problems.add("job id " + o.jobId + " returned for requests " + prev + " and " + o.index);
                }
            }
            for (String p : o.problems) {
                problems.add("request " + o.index + " (job " + o.jobId + "): " + p);
            }
        }
        return problems;
    }

    /** Records one call's events; runs on the callback executor. */
    private final class Observer implements ClientResponseObserver<GenerateRequest, GenerateEvent> {
        private final Outcome o;
        private final List<ClientCallStreamObserver<GenerateRequest>> calls;
        private final Runnable done;
        private ClientCallStreamObserver<GenerateRequest> call;
        private final Set<String> ids = new HashSet<>();

        Observer(Outcome o, List<ClientCallStreamObserver<GenerateRequest>> calls, Runnable done) {
            this.o = o;
            this.calls = calls;
            this.done = done;
        }

        @Override
        public void beforeStart(ClientCallStreamObserver<GenerateRequest> requestStream) {
            call = requestStream;
            calls.add(requestStream);
        }

        @Override
        public void onNext(GenerateEvent e) {
            long now = System.nanoTime();
            o.accepted = true;
            if (o.firstEventNanos < 0) {
                o.firstEventNanos = now;
                o.jobId = e.getJobId();
            }
            ids.add(e.getJobId());
            if (e.hasStep() && !e.getStep().getPreview().isEmpty() && o.firstPreviewNanos < 0) {
                o.firstPreviewNanos = now;
            }
            if (e.hasCompleted()) {
                o.endNanos = now;
                o.completed = true;
                Completed c = e.getCompleted();
                o.metDeadline = c.getParameters().getDeadlineMs() == 0
                        || System.currentTimeMillis() <= c.getParameters().getDeadlineMs();
                if (cfg.soak()) {
                    verify(c);
                }
            }
        }

        private void verify(Completed c) {
            if (ids.size() != 1) {
                o.problems.add("events carried several job ids: " + ids);
            }
            if (c.getImagesCount() != o.shape.images()) {
                o.problems.add("expected " + o.shape.images() + " image(s), got " + c.getImagesCount());
            }
            if (c.getParameters().getSeed() != o.seed) {
                o.problems.add("seed " + o.seed + " sent, " + c.getParameters().getSeed() + " reported");
            }
            for (int i = 0; i < c.getImagesCount(); i++) {
                try {
                    BufferedImage img = ImageIO.read(new ByteArrayInputStream(c.getImages(i).getPng().toByteArray()));
                    if (img == null) {
                        o.problems.add("image " + i + " does not decode as PNG");
                    } else if (img.getWidth() != o.shape.width() || img.getHeight() != o.shape.height()) {
                        o.problems.add("image " + i + " is " + img.getWidth() + "x" + img.getHeight() + ", expected "
                                + o.shape.width() + "x" + o.shape.height());
                    }
                } catch (IOException ex) {
                    o.problems.add("image " + i + " does not decode: " + ex.getMessage());
                }
                if (c.getImages(i).getSeed() != o.seed + i) {
                    o.problems.add("image " + i + " seed " + c.getImages(i).getSeed() + ", expected " + (o.seed + i));
                }
            }
        }

        @Override
        public void onError(Throwable t) {
            Status s = Status.fromThrowable(t);
            o.code = s.getCode();
            o.error = s.getDescription() == null ? s.getCode().name() : s.getDescription();
            o.endNanos = System.nanoTime();
            finish();
        }

        @Override
        public void onCompleted() {
            if (!o.completed) {
                o.code = Status.Code.UNKNOWN;
                o.error = "stream closed without a Completed event or an error status";
                o.problems.add(o.error);
            }
            finish();
        }

        private synchronized void finish() {
            o.endings++;
            calls.remove(call);
            if (o.endings == 1) {
                done.run();
            }
        }
    }

    /** Summary lines (the last one is the machine-readable {@code loadgen: sent=…} line). */
    public static List<String> report(Config cfg, Result r) {
        List<String> out = new ArrayList<>();
        long[] e2e = r.e2eMillis();
        long[] ttfp = r.firstPreviewMillis();
        out.add(String.format(Locale.ROOT, "duration %.1f s; sent %d (%.2f req/s offered)%s; completed %d (%.2f req/s, %.2f images/s)",
                r.seconds(), r.sent(), r.sent() / r.seconds(), r.skipped() > 0 ? "; skipped " + r.skipped() + " (client in-flight cap)" : "",
                r.ok(), r.ok() / r.seconds(),
                r.outcomes().stream().filter(Outcome::completed).mapToInt(o -> o.shape.images()).sum() / r.seconds()));
        out.add(String.format(Locale.ROOT, "time to first preview ms: p50 %d  p95 %d  p99 %d  (n=%d)",
                percentile(ttfp, 50), percentile(ttfp, 95), percentile(ttfp, 99), ttfp.length));
        out.add(String.format(Locale.ROOT, "end-to-end ms:            p50 %d  p95 %d  p99 %d  (n=%d)",
                percentile(e2e, 50), percentile(e2e, 95), percentile(e2e, 99), e2e.length));
        Map<String, List<Outcome>> byShape = new LinkedHashMap<>();
        for (Shape s : cfg.mix()) {
            byShape.put(s.name(), new ArrayList<>());
        }
        r.outcomes().forEach(o -> byShape.get(o.shape.name()).add(o));
        byShape.forEach((name, os) -> {
            long[] e = os.stream().filter(Outcome::completed).mapToLong(o -> (o.endNanos - o.sentNanos) / 1_000_000).sorted().toArray();
            long met = os.stream().filter(o -> o.completed && o.metDeadline).count();
            out.add(String.format(Locale.ROOT, "  %-28s sent %4d ok %4d refused %3d  e2e p50 %5d p99 %5d ms  slo %s",
                    name, os.size(), e.length, os.stream().filter(Outcome::refused).count(),
                    percentile(e, 50), percentile(e, 99), e.length == 0 ? "-" : String.format(Locale.ROOT, "%.1f%%", 100.0 * met / e.length)));
        });
        double att = r.sloAttainment();
        out.add("SLO attainment (completed within their deadline): "
                + (Double.isNaN(att) ? "-" : String.format(Locale.ROOT, "%.1f%%", 100 * att)));
        out.add("refused by code: " + (r.refusedByCode().isEmpty() ? "none" : r.refusedByCode()));
        out.add("failed by code: " + (r.failedByCode().isEmpty() ? "none" : r.failedByCode()));
        r.outcomes().stream().filter(o -> !o.completed && o.error != null).limit(3)
                .forEach(o -> out.add("  e.g. request " + o.index + ": " + o.code + ": " + o.error));
        if (!r.samples().isEmpty()) {
            List<ResourceSample> s = r.samples();
            ResourceSample a = s.get(0), m = s.get(s.size() / 2), z = s.get(s.size() - 1);
            long maxRss = s.stream().mapToLong(ResourceSample::rssBytes).max().orElse(-1);
            int maxThreads = s.stream().mapToInt(ResourceSample::threads).max().orElse(-1);
            out.add(String.format(Locale.ROOT, "server resources (%s): RSS MiB start %d / middle %d / end %d / max %d;"
                            + " threads %d / %d / %d / max %d (%d samples)",
                    a.source(), a.rssBytes() >> 20, m.rssBytes() >> 20, z.rssBytes() >> 20, maxRss >> 20,
                    a.threads(), m.threads(), z.threads(), maxThreads, s.size()));
        }
        if (cfg.soak()) {
            out.add("soak checks: " + (r.problems().isEmpty() ? "all " + r.sent() + " responses checked, no problem"
                    : r.problems().size() + " problem(s)"));
            r.problems().stream().limit(20).forEach(p -> out.add("  " + p));
        }
        out.add(String.format(Locale.ROOT, "loadgen: sent=%d ok=%d refused=%d failed=%d p99_ms=%d",
                r.sent(), r.ok(), r.refused(), r.failed(), percentile(e2e, 99)));
        return out;
    }

    /** Reads the server's RSS and thread count. */
    public interface ResourceSampler {
        ResourceSample sample();

        long periodMillis();
    }

    /** Samples /proc/&lt;pid&gt;/status (Linux): VmRSS and Threads. */
    public static ResourceSampler procSampler(long pid, long periodMillis) {
        java.nio.file.Path status = java.nio.file.Path.of("/proc", String.valueOf(pid), "status");
        return new ResourceSampler() {
            @Override
            public ResourceSample sample() {
                try {
                    long rss = -1;
                    int threads = -1;
                    for (String line : java.nio.file.Files.readAllLines(status)) {
                        if (line.startsWith("VmRSS:")) {
                            rss = Long.parseLong(line.replaceAll("[^0-9]", "")) * 1024;
                        } else if (line.startsWith("Threads:")) {
                            threads = Integer.parseInt(line.replaceAll("[^0-9]", ""));
                        }
                    }
                    return new ResourceSample(System.currentTimeMillis(), rss, threads, "/proc/" + pid);
                } catch (IOException | RuntimeException e) {
                    return null; // process gone
                }
            }

            @Override
            public long periodMillis() {
                return periodMillis;
            }
        };
    }

    /**
     * Samples the server's Prometheus endpoint: {@code jvm_threads_live_threads} and, for memory, the sum of
     * {@code jvm_memory_used_bytes} (heap + non-heap; the JVM's view, below the true RSS).
     */
    public static ResourceSampler metricsSampler(String url, long periodMillis) {
        java.net.http.HttpClient http = java.net.http.HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(2)).build();
        return new ResourceSampler() {
            @Override
            public ResourceSample sample() {
                try {
                    String body = http.send(java.net.http.HttpRequest.newBuilder(java.net.URI.create(url))
                                    .timeout(Duration.ofSeconds(5)).build(),
                            java.net.http.HttpResponse.BodyHandlers.ofString()).body();
                    double mem = 0;
                    int threads = -1;
                    for (String line : body.split("\n")) {
                        if (line.startsWith("jvm_memory_used_bytes{")) {
                            mem += Double.parseDouble(line.substring(line.lastIndexOf(' ') + 1));
                        } else if (line.startsWith("jvm_threads_live_threads")) {
                            threads = (int) Double.parseDouble(line.substring(line.lastIndexOf(' ') + 1));
                        }
                    }
                    return new ResourceSample(System.currentTimeMillis(), (long) mem, threads, "jvm memory used via " + url);
                } catch (IOException | RuntimeException e) {
                    return null;
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    return null;
                }
            }

            @Override
            public long periodMillis() {
                return periodMillis;
            }
        };
    }
}
