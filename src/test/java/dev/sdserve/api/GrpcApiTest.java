package dev.sdserve.api;

import dev.sdserve.api.grpc.ProtoMapper;
import dev.sdserve.api.grpc.v1.*;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.quarkus.grpc.GrpcClient;
import io.quarkus.test.junit.QuarkusTest;
import io.smallrye.mutiny.Uni;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.*;

@QuarkusTest
class GrpcApiTest {
    @GrpcClient("sdserve")
    Generation client;

    private static GenerateRequest.Builder request(String prompt, int steps, long seed) {
        return GenerateRequest.newBuilder().setPrompt(prompt).setSteps(steps).setSeed(seed).setWidth(64).setHeight(64);
    }

    private List<GenerateEvent> run(GenerateRequest r) {
        return client.generate(r).collect().asList().await().atMost(Duration.ofSeconds(60));
    }

    @Test
    void streamOrderAndPreviewInterval() {
        GenerateRequest r = request("a lighthouse", 6, 7)
                .setPreview(PreviewOptions.newBuilder().setEverySteps(2)).build();
        List<GenerateEvent> events = run(r);
        List<GenerateEvent.EventCase> kinds = events.stream().map(GenerateEvent::getEventCase).toList();
        assertEquals(GenerateEvent.EventCase.QUEUED, kinds.get(0), kinds.toString());
        assertEquals(GenerateEvent.EventCase.STARTED, kinds.get(1), kinds.toString());
        assertEquals(GenerateEvent.EventCase.COMPLETED, kinds.get(kinds.size() - 1));
        List<Step> steps = events.stream().filter(GenerateEvent::hasStep).map(GenerateEvent::getStep).toList();
        // Every step comes, in order; previews exactly at the requested interval (or, for a lagging consumer,
        // marked dropped: only preview payloads conflate).
        assertEquals(List.of(1, 2, 3, 4, 5, 6), steps.stream().map(Step::getIndex).toList());
        for (Step s : steps) {
            assertEquals(6, s.getTotal());
            assertEquals(s.getIndex() % 2 == 0, !s.getPreview().isEmpty() || s.getPreviewDropped(), "preview at step " + s.getIndex());
        }
        assertTrue(steps.stream().filter(s -> !s.getPreview().isEmpty()).count() >= 1);
        Completed c = events.get(events.size() - 1).getCompleted();
        assertEquals(1, c.getImagesCount());
        assertEquals(7, c.getImages(0).getSeed());
        byte[] png = c.getImages(0).getPng().toByteArray();
        assertArrayEquals(new byte[]{(byte) 0x89, 'P', 'N', 'G'}, Arrays.copyOf(png, 4));
        assertEquals(6, c.getParameters().getSteps());
        assertTrue(c.getTimingsMsMap().containsKey("total"), c.getTimingsMsMap().toString());
        String id = events.get(0).getJobId();
        assertTrue(events.stream().allMatch(e -> e.getJobId().equals(id)));
    }

    @Test
    void randomSeedIsReported() {
        List<GenerateEvent> events = run(GenerateRequest.newBuilder().setPrompt("x").setSteps(2).setWidth(64).setHeight(64).build());
        Completed c = events.get(events.size() - 1).getCompleted();
        assertEquals(c.getParameters().getSeed(), c.getImages(0).getSeed());
    }

    @Test
    void badRequestNamesTheField() {
        StatusRuntimeException e = assertThrows(StatusRuntimeException.class,
                () -> run(request("x", 4, 1).setHeight(65).build()));
        assertEquals(Status.Code.INVALID_ARGUMENT, e.getStatus().getCode());
        assertTrue(e.getStatus().getDescription().contains("height"), e.getStatus().getDescription());
        assertEquals("height", e.getTrailers().get(ProtoMapper.FIELD));
        StatusRuntimeException nf = assertThrows(StatusRuntimeException.class,
                () -> run(request("x", 4, 1).setModel("nope").build()));
        assertEquals(Status.Code.NOT_FOUND, nf.getStatus().getCode());
    }

    @Test
    void clientCancellationCancelsTheJob() throws Exception {
        int port = org.eclipse.microprofile.config.ConfigProvider.getConfig()
                .getValue("quarkus.grpc.server.test-port", Integer.class);
        io.grpc.ManagedChannel channel = io.grpc.ManagedChannelBuilder.forAddress("localhost", port).usePlaintext().build();
        try {
            GenerationGrpc.GenerationBlockingStub stub = GenerationGrpc.newBlockingStub(channel);
            io.grpc.Context.CancellableContext ctx = io.grpc.Context.current().withCancellation();
            String id = ctx.call(() -> {
                java.util.Iterator<GenerateEvent> it = stub.generate(request("long", 150, 3).build());
                while (true) {
                    GenerateEvent e = it.next();
                    if (e.hasStep()) {
                        return e.getJobId();
                    }
                }
            });
            ctx.cancel(null);
            JobStatus st = null;
            for (int i = 0; i < 100; i++) {
                st = client.getJob(JobRef.newBuilder().setJobId(id).build()).await().atMost(Duration.ofSeconds(5));
                if (st.getState() == JobState.JOB_STATE_CANCELLED) {
                    break;
                }
                Thread.sleep(50);
            }
            assertEquals(JobState.JOB_STATE_CANCELLED, st.getState());
            assertTrue(st.getStep() < 150, "stopped early, at step " + st.getStep());
        } finally {
            channel.shutdownNow();
        }
    }

    @Test
    void submitWatchAndLateJoiners() {
        String id = client.submit(request("async", 5, 11).build()).await().atMost(Duration.ofSeconds(10)).getJobId();
        List<GenerateEvent> first = client.watch(JobRef.newBuilder().setJobId(id).build()).collect().asList()
                .await().atMost(Duration.ofSeconds(60));
        assertTrue(first.get(first.size() - 1).hasCompleted());
        // a late joiner gets the final state at once
        List<GenerateEvent> late = client.watch(JobRef.newBuilder().setJobId(id).build()).collect().asList()
                .await().atMost(Duration.ofSeconds(10));
        assertTrue(late.get(late.size() - 1).hasCompleted());
        assertEquals(first.get(first.size() - 1).getCompleted(), late.get(late.size() - 1).getCompleted());
        StatusRuntimeException e = assertThrows(StatusRuntimeException.class,
                () -> client.getJob(JobRef.newBuilder().setJobId("missing").build()).await().atMost(Duration.ofSeconds(5)));
        assertEquals(Status.Code.NOT_FOUND, e.getStatus().getCode());
    }

    @Test
    void concurrentRequestsEachGetTheirOwnResult() {
        GenerateRequest a = request("a cat", 8, 100).build();
        GenerateRequest b = request("a dog", 5, 200).setSampler("euler").setGuidanceScale(3).build();
        byte[] aloneA = image(run(a));
        byte[] aloneB = image(run(b));
        Uni<List<GenerateEvent>> ua = client.generate(a).collect().asList();
        Uni<List<GenerateEvent>> ub = client.generate(b).collect().asList();
        var both = Uni.combine().all().unis(ua, ub).asTuple().await().atMost(Duration.ofSeconds(60));
        assertArrayEquals(aloneA, image(both.getItem1()));
        assertArrayEquals(aloneB, image(both.getItem2()));
        assertFalse(Arrays.equals(aloneA, aloneB));
    }

    private static byte[] image(List<GenerateEvent> events) {
        return events.get(events.size() - 1).getCompleted().getImages(0).getPng().toByteArray();
    }

    @Test
    void listings() {
        List<String> models = new ArrayList<>();
        client.listModels(ListModelsRequest.getDefaultInstance()).await().atMost(Duration.ofSeconds(5))
                .getModelsList().forEach(m -> models.add(m.getName()));
        assertTrue(models.contains("embedded"), models.toString());
        var samplers = client.listSamplers(ListSamplersRequest.getDefaultInstance()).await().atMost(Duration.ofSeconds(5));
        assertTrue(samplers.getSamplersList().stream().anyMatch(s -> s.getId().equals("euler_a") && s.getStochastic()));
    }
}
