package dev.sdserve.ops;

import dev.sdserve.api.grpc.v1.GenerateEvent;
import dev.sdserve.api.grpc.v1.GenerateRequest;
import dev.sdserve.api.grpc.v1.GenerationGrpc;
import dev.sdserve.api.grpc.v1.PreviewOptions;
import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.netty.NettyChannelBuilder;
import io.grpc.stub.StreamObserver;
import org.junit.jupiter.api.Test;

import javax.imageio.ImageIO;
import java.awt.image.BufferedImage;
import java.io.ByteArrayInputStream;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Graceful drain, proven on the packaged server: SIGTERM in the middle of load; every request the server accepted
 * ends with an image or a clear status, nothing is dropped, new work is refused, readiness goes DOWN.
 */
class DrainIT {
    /** What one streaming call saw. */
    static final class Call implements StreamObserver<GenerateEvent> {
        final String label;
        final List<GenerateEvent> events = new ArrayList<>();
        final CountDownLatch started = new CountDownLatch(1);
        final CountDownLatch done = new CountDownLatch(1);
        volatile Status status; // null when completed normally
        volatile boolean streamCompleted;

        Call(String label) {
            this.label = label;
        }

        @Override
        public synchronized void onNext(GenerateEvent e) {
            events.add(e);
            if (e.hasStep()) {
                started.countDown();
            }
        }

        @Override
        public void onError(Throwable t) {
            status = Status.fromThrowable(t);
            started.countDown();
            done.countDown();
        }

        @Override
        public void onCompleted() {
            streamCompleted = true;
            started.countDown();
            done.countDown();
        }

        synchronized boolean accepted() {
            return !events.isEmpty();
        }

        synchronized GenerateEvent last() {
            return events.isEmpty() ? null : events.get(events.size() - 1);
        }

        @Override
        public String toString() {
            return label + ": " + events.size() + " events, last " + (last() == null ? "-" : last().getEventCase())
                    + ", status " + (status == null ? "OK" : status.getCode() + " " + status.getDescription());
        }
    }

    static GenerateRequest request(int steps, long seed) {
        return GenerateRequest.newBuilder().setPrompt("drain test " + seed).setWidth(64).setHeight(64).setSteps(steps)
                .setSeed(seed).setPreview(PreviewOptions.newBuilder().setEverySteps(5).setMaxEdge(32)).build();
    }

    @Test
    void sigtermMidLoadEndsEveryAcceptedJobWithAnImageOrAClearStatus() throws Exception {
        // 60 ms per engine call; drain timeout 2 s: short jobs (6 steps) finish, long ones (150 steps, ~9 s) cannot
        try (ServerProcess server = ServerProcess.start("drain", Duration.ofSeconds(120),
                "-Dsdserve.fake-step-millis=60", "-Dsdserve.drain-timeout=2s")) {
            ManagedChannel ch = NettyChannelBuilder.forAddress("localhost", server.grpcPort).usePlaintext().build();
            try {
                GenerationGrpc.GenerationStub stub = GenerationGrpc.newStub(ch);
                List<Call> longOnes = new ArrayList<>(), shortOnes = new ArrayList<>(), late = new ArrayList<>();
                for (int i = 0; i < 4; i++) {
                    Call c = new Call("long-" + i);
                    longOnes.add(c);
                    stub.generate(request(150, 100 + i), c);
                }
                for (Call c : longOnes) {
                    assertTrue(c.started.await(60, TimeUnit.SECONDS), "long job running before SIGTERM: " + c);
                    assertNull(c.status, "long job must be running, not failed, before SIGTERM: " + c);
                }
                for (int i = 0; i < 4; i++) {
                    Call c = new Call("short-" + i);
                    shortOnes.add(c);
                    stub.generate(request(6, 200 + i), c);
                }
                // the short jobs are admitted (Queued) before the signal
                long until = System.nanoTime() + 20_000_000_000L;
                while (shortOnes.stream().anyMatch(c -> !c.accepted()) && System.nanoTime() < until) {
                    Thread.sleep(10);
                }
                assertTrue(shortOnes.stream().allMatch(Call::accepted), "short jobs admitted: " + shortOnes);

                long t0 = System.nanoTime();
                server.sigterm();

                // while draining: readiness DOWN (503), new gRPC work refused, new REST work 503
                boolean sawNotReady = false;
                boolean sawRest503 = false;
                List<String> restSeen = new ArrayList<>();
                for (int i = 0; i < 15 && server.process.isAlive(); i++) {
                    int ready = server.status("/q/health/ready");
                    if (ready == 503) {
                        sawNotReady = true;
                    }
                    // the signal takes a moment to reach the drain; once readiness is DOWN it must stay DOWN
                    assertFalse(sawNotReady && ready == 200, "readiness came back UP during the drain");
                    Call c = new Call("late-" + i);
                    late.add(c);
                    stub.generate(request(4, 300 + i), c);
                    if (!sawRest503) {
                        try {
                            HttpResponse<String> r = server.post("/v1/generations", "{\"prompt\":\"late\",\"steps\":2,\"width\":64,\"height\":64}");
                            restSeen.add(r.statusCode() + " " + r.body());
                            assertNotEquals(202, r.statusCode(), "REST accepted a job during the drain: " + r.body());
                            if (r.statusCode() == 503) {
                                sawRest503 = true;
                                assertTrue(r.body().contains("draining"), r.body());
                            }
                        } catch (java.io.IOException closed) {
                            restSeen.add(closed.toString());
                            // the HTTP server already closed: also a refusal
                        }
                    }
                    Thread.sleep(100);
                }
                assertTrue(server.process.waitFor(30, TimeUnit.SECONDS), "server exits after the drain");
                double exitSeconds = (System.nanoTime() - t0) / 1e9;
                for (Call c : concat(longOnes, shortOnes, late)) {
                    assertTrue(c.done.await(10, TimeUnit.SECONDS), "every call ends: " + c);
                }
                String log = server.logText();

                // short jobs: completed with a decodable 64x64 image
                for (Call c : shortOnes) {
                    assertNull(c.status, "short job completed: " + c);
                    GenerateEvent last = c.last();
                    assertTrue(last.hasCompleted(), c.toString());
                    BufferedImage img = ImageIO.read(new ByteArrayInputStream(last.getCompleted().getImages(0).getPng().toByteArray()));
                    assertNotNull(img, "image decodes: " + c);
                    assertEquals(64, img.getWidth());
                }
                // long jobs: ended by the drain with a clear UNAVAILABLE naming the shutdown, not a dropped connection
                for (Call c : longOnes) {
                    assertNotNull(c.status, "long job cannot finish in the drain timeout: " + c);
                    assertEquals(Status.Code.UNAVAILABLE, c.status.getCode(), c.toString());
                    assertTrue(c.status.getDescription().contains("shutting down"), c.toString());
                    assertTrue(c.status.getDescription().contains("drain timeout"), c.toString());
                }
                // late requests: refused, or if they got in before admission stopped, ended like the others
                for (Call c : late) {
                    if (c.accepted()) {
                        assertTrue(c.last().hasCompleted() || (c.status != null && c.status.getDescription() != null
                                && c.status.getDescription().contains("shutting down")), "accepted late job ended clearly: " + c);
                    } else {
                        // never admitted: refused with UNAVAILABLE while draining; one arriving in the last moments,
                        // while Quarkus tears the gRPC server down, is reset by the transport (INTERNAL RST_STREAM)
                        assertTrue(c.status.getCode() == Status.Code.UNAVAILABLE || (c.status.getCode() == Status.Code.INTERNAL
                                && String.valueOf(c.status.getDescription()).contains("RST_STREAM")), "late request refused: " + c);
                    }
                }
                assertTrue(late.stream().anyMatch(c -> !c.accepted() && c.status.getDescription() != null
                        && c.status.getDescription().contains("draining")), "at least one late request saw the draining refusal: " + late);
                assertTrue(sawNotReady, "readiness reported 503 during the drain");
                // REST during the drain: never 202 (asserted above). It answers 503 "draining" in most runs, but the
                // HTTP listener is sometimes already closed during the drain (known issue, see the ops report), so
                // a refused connection is accepted here; gRPC is the path proven end to end.
                System.out.println("DrainIT: REST during the drain: " + restSeen);
                assertTrue(log.contains("drain: done"), log);
                assertTrue(exitSeconds < 2 + 15, "drain bounded by its timeout: exited after " + exitSeconds + " s");
                System.out.printf("DrainIT: exit %.1f s after SIGTERM; short %d completed, long %d UNAVAILABLE, late %d (%d refused)%n",
                        exitSeconds, shortOnes.size(), longOnes.size(), late.size(), late.stream().filter(c -> !c.accepted()).count());
            } finally {
                ch.shutdownNow();
            }
        }
    }

    @SafeVarargs
    static <T> List<T> concat(List<T>... ls) {
        List<T> out = new ArrayList<>();
        for (List<T> l : ls) {
            out.addAll(l);
        }
        return out;
    }
}
