package dev.sdserve.tools.loadgen;

import dev.sdserve.cli.LoadGenCommand;
import com.google.protobuf.ByteString;
import dev.sdserve.api.grpc.v1.*;
import io.grpc.Server;
import io.grpc.Status;
import io.grpc.netty.NettyServerBuilder;
import io.grpc.stub.StreamObserver;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import javax.imageio.ImageIO;
import java.awt.image.BufferedImage;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.*;

/** The load generator against a scripted gRPC server whose answers are known in advance. */
class LoadGenTest {
    private Server server;
    private final ScheduledExecutorService timer = Executors.newScheduledThreadPool(2);

    /** Scripted behaviour by seed: %5==0 refused RESOURCE_EXHAUSTED; %7==0 accepted then UNAVAILABLE; else completes. */
    // Implements AsyncService rather than extending GenerationImplBase: Quarkus registers every BindableService it
    // finds in the (test) index as the server's implementation, which would shadow the real one in @QuarkusTests.
    static final class Scripted implements GenerationGrpc.AsyncService {
        final ScheduledExecutorService timer;
        final long workMillis;
        volatile boolean wrongSize;
        volatile String fixedJobId;
        final List<Long> arrivalsNanos = new ArrayList<>();

        Scripted(ScheduledExecutorService timer, long workMillis) {
            this.timer = timer;
            this.workMillis = workMillis;
        }

        @Override
        public void generate(GenerateRequest r, StreamObserver<GenerateEvent> out) {
            synchronized (arrivalsNanos) {
                arrivalsNanos.add(System.nanoTime());
            }
            long seed = r.getSeed();
            if (seed % 5 == 0) {
                out.onError(Status.RESOURCE_EXHAUSTED.withDescription("queue full").asRuntimeException());
                return;
            }
            String id = fixedJobId != null && seed % 2 == 0 ? fixedJobId : UUID.randomUUID().toString();
            out.onNext(GenerateEvent.newBuilder().setJobId(id).setQueued(Queued.newBuilder().setPosition(0)).build());
            if (seed % 7 == 0) {
                out.onError(Status.UNAVAILABLE.withDescription("server shutting down").asRuntimeException());
                return;
            }
            timer.schedule(() -> {
                out.onNext(GenerateEvent.newBuilder().setJobId(id).setStarted(Started.newBuilder()).build());
                out.onNext(GenerateEvent.newBuilder().setJobId(id).setStep(Step.newBuilder().setIndex(1).setTotal(r.getSteps())
                        .setPreview(ByteString.copyFrom(new byte[]{1, 2, 3}))).build());
                Completed.Builder c = Completed.newBuilder().setParameters(ResolvedParameters.newBuilder()
                        .setSeed(seed).setDeadlineMs(System.currentTimeMillis() + 60_000));
                int w = wrongSize && seed % 3 == 0 ? r.getWidth() + 8 : r.getWidth();
                for (int i = 0; i < Math.max(1, r.getImages()); i++) {
                    c.addImages(Image.newBuilder().setSeed(seed + i).setPng(ByteString.copyFrom(png(w, r.getHeight()))));
                }
                out.onNext(GenerateEvent.newBuilder().setJobId(id).setCompleted(c).build());
                out.onCompleted();
            }, workMillis, TimeUnit.MILLISECONDS);
        }
    }

    static byte[] png(int w, int h) {
        try {
            ByteArrayOutputStream b = new ByteArrayOutputStream();
            ImageIO.write(new BufferedImage(w, h, BufferedImage.TYPE_INT_RGB), "png", b);
            return b.toByteArray();
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
    }

    private int start(Scripted s) throws IOException {
        server = NettyServerBuilder.forPort(0).addService(GenerationGrpc.bindService(s)).build().start();
        return server.getPort();
    }

    @AfterEach
    void stop() throws InterruptedException {
        if (server != null) {
            server.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
        }
        timer.shutdownNow();
    }

    private static LoadGen.Config cfg(int port, double rate, int n, boolean soak, int conc) {
        return new LoadGen.Config("localhost", port, LoadGen.DEFAULT_MIX, rate, rate, Duration.ofSeconds(20), n, conc,
                Duration.ofSeconds(10), soak, 3, null, 0);
    }

    @Test
    void countsMatchTheScript() throws Exception {
        Scripted s = new Scripted(timer, 30);
        int port = start(s);
        LoadGen.Config c = cfg(port, 80, 60, false, 256);
        LoadGen.Result r = new LoadGen(c, null, x -> { }).run();
        // the seeds the generator uses: cfg.seed * 1_000_003 + i
        int refused = 0, failed = 0;
        for (int i = 0; i < 60; i++) {
            long seed = 3 * 1_000_003L + i;
            if (seed % 5 == 0) {
                refused++;
            } else if (seed % 7 == 0) {
                failed++;
            }
        }
        assertEquals(60, r.sent());
        assertEquals(refused, r.refused());
        assertEquals(failed, r.failed());
        assertEquals(60 - refused - failed, r.ok());
        assertEquals(Map.of("RESOURCE_EXHAUSTED", refused), r.refusedByCode());
        assertEquals(Map.of("UNAVAILABLE", failed), r.failedByCode());
        assertTrue(LoadGen.percentile(r.e2eMillis(), 50) >= 30, "the scripted work takes 30 ms");
        assertEquals(r.ok(), r.firstPreviewMillis().length, "every completed request had a preview");
        assertEquals(1.0, r.sloAttainment());
        assertTrue(r.problems().isEmpty(), r.problems().toString());
        List<String> lines = LoadGen.report(c, r);
        assertEquals(String.format("loadgen: sent=60 ok=%d refused=%d failed=%d p99_ms=%d", 60 - refused - failed, refused,
                failed, LoadGen.percentile(r.e2eMillis(), 99)), lines.get(lines.size() - 1));
    }

    @Test
    void arrivalsArePoisson() {
        // constant rate 100/s: gaps exponential with mean 10 ms and coefficient of variation 1
        LoadGen.Config c = new LoadGen.Config("h", 1, LoadGen.DEFAULT_MIX, 100, 100, Duration.ofSeconds(1000), 4000, 1,
                Duration.ZERO, false, 1, null, 0);
        long[] t = LoadGen.schedule(c, new java.util.Random(42));
        assertEquals(4000, t.length, "bounded by the request count");
        double mean = 0, sq = 0;
        for (int i = 1; i < t.length; i++) {
            double g = (t[i] - t[i - 1]) / 1e6;
            mean += g;
            sq += g * g;
        }
        int n = t.length - 1;
        mean /= n;
        double cv = Math.sqrt(sq / n - mean * mean) / mean;
        assertEquals(10, mean, 0.5, "mean gap ms");  // sd of the mean: 10/sqrt(4000) = 0.16 ms
        assertEquals(1, cv, 0.08, "coefficient of variation");
        // a fixed fraction of gaps above the mean: P(gap > mean) = 1/e for exponential gaps
        long above = 0;
        for (int i = 1; i < t.length; i++) {
            above += (t[i] - t[i - 1]) / 1e6 > 10 ? 1 : 0;
        }
        assertEquals(Math.exp(-1), (double) above / n, 0.03);

        // ramp 10 -> 100 /s over 10 s, bounded by time: expected counts are the integrals of the rate,
        // 10t + 4.5t^2: 162.5 in the first 5 s, 387.5 in the last 5 s
        LoadGen.Config ramp = new LoadGen.Config("h", 1, LoadGen.DEFAULT_MIX, 10, 100, Duration.ofSeconds(10), 1_000_000, 1,
                Duration.ZERO, false, 1, null, 0);
        int first = 0, second = 0;
        for (int seed = 0; seed < 20; seed++) {
            for (long x : LoadGen.schedule(ramp, new java.util.Random(seed))) {
                assertTrue(x < 10_000_000_000L, "bounded by the duration");
                if (x < 5_000_000_000L) {
                    first++;
                } else {
                    second++;
                }
            }
        }
        assertEquals(162.5, first / 20.0, 12);
        assertEquals(387.5, second / 20.0, 20);
    }

    @Test
    void soakFindsWrongImagesAndDuplicateJobs() throws Exception {
        Scripted s = new Scripted(timer, 5);
        s.wrongSize = true;
        s.fixedJobId = "same-job";
        int port = start(s);
        LoadGen.Result r = new LoadGen(cfg(port, 1, 40, true, 4), null, x -> { }).run();
        assertEquals(40, r.sent());
        long wrong = r.problems().stream().filter(p -> p.contains("expected 64x64")).count();
        long dup = r.problems().stream().filter(p -> p.contains("job id same-job returned")).count();
        int expectWrong = 0, expectDupJobs = 0;
        for (int i = 0; i < 40; i++) {
            long seed = 3 * 1_000_003L + i;
            if (seed % 5 != 0 && seed % 7 != 0 && seed % 3 == 0) {
                expectWrong++; // each image of the request is wrong: count requests via distinct lines below
            }
            if (seed % 5 != 0 && seed % 2 == 0) {
                expectDupJobs++;
            }
        }
        assertTrue(wrong >= expectWrong && expectWrong > 0, "wrong-size images found: " + wrong + " expected >= " + expectWrong);
        assertEquals(expectDupJobs - 1, dup, "every request after the first sharing a job id is reported");
    }

    @Test
    void cliParsesAndReports() throws Exception {
        Scripted s = new Scripted(timer, 5);
        int port = start(s);
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        int code = new LoadGenCommand().run(List.of("--target", "localhost:" + port, "--rate", "50", "--requests", "20",
                "--duration", "10s", "--shape", "slo=interactive,size=32x32,steps=2,weight=1", "--seed", "2"), new PrintStream(bytes));
        String out = bytes.toString();
        assertEquals(0, code, out);
        String[] lines = out.strip().split("\n");
        assertTrue(lines[lines.length - 1].matches("loadgen: sent=20 ok=\\d+ refused=\\d+ failed=\\d+ p99_ms=\\d+"), out);
        assertTrue(out.contains("interactive/32x32/2st"), out);
        assertEquals(2, new LoadGenCommand().run(List.of("--rate", "abc"), new PrintStream(new ByteArrayOutputStream())));
        assertEquals(2, new LoadGenCommand().run(List.of("--shape", "slo=fast"), new PrintStream(new ByteArrayOutputStream())));
    }

    @Test
    void percentileIsNearestRank() {
        long[] v = {10, 20, 30, 40, 50, 60, 70, 80, 90, 100};
        assertEquals(50, LoadGen.percentile(v, 50));
        assertEquals(100, LoadGen.percentile(v, 95));
        assertEquals(100, LoadGen.percentile(v, 99));
        assertEquals(10, LoadGen.percentile(v, 1));
        assertEquals(0, LoadGen.percentile(new long[0], 99));
    }

    @Test
    void shapeSpec() {
        LoadGen.Shape s = LoadGen.Shape.parse("slo=batch,size=96x64,steps=3,images=2,preview=0,weight=0.5");
        assertEquals(SloClass.SLO_CLASS_BATCH, s.slo());
        assertEquals(96, s.width());
        assertEquals(64, s.height());
        assertEquals(2, s.images());
        GenerateRequest r = s.request(9, "p", null);
        assertTrue(r.getPreview().getOff());
        assertEquals(9, r.getSeed());
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> LoadGen.Shape.parse("size=64"));
        assertTrue(e.getMessage().contains("WxH"), e.getMessage());
    }
}
