package dev.sdserve.api.grpc;

import dev.sdserve.api.grpc.v1.GenerateRequest;
import dev.sdserve.api.rest.RestDtos;
import dev.sdserve.api.rest.RestMapper;
import dev.sdserve.job.PreviewOptions;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

/** guidance_cutoff travels from gRPC (field 40) and REST into the request; absent stays absent (server default). */
class GuidanceCutoffMappingTest {
    private static final PreviewOptions P = new PreviewOptions(1, "png", 256);

    @Test
    void grpcAndRestCarryTheCutoff() {
        assertEquals(0.5, ProtoMapper.toRequest(GenerateRequest.newBuilder().setPrompt("a").setGuidanceCutoff(0.5)
                .build(), P, null, 0).guidanceCutoff());
        assertNull(ProtoMapper.toRequest(GenerateRequest.newBuilder().setPrompt("a").build(), P, null, 0)
                .guidanceCutoff());
        assertEquals(40, GenerateRequest.GUIDANCE_CUTOFF_FIELD_NUMBER);
        RestDtos.GenerationJson j = new RestDtos.GenerationJson("a", null, null, List.of(), null, null, null, null,
                null, null, null, null, null, null, null, null, null, null, null, null, null, null, null, null, null, null, null, 0.7, null, null);
        assertEquals(0.7, RestMapper.toRequest(j, P, 0).guidanceCutoff());
        RestDtos.GenerationJson none = new RestDtos.GenerationJson("a", null, null, List.of(), null, null, null, null,
                null, null, null, null, null, null, null, null, null, null, null, null, null, null, null, null, null, null, null, null, null, null);
        assertNull(RestMapper.toRequest(none, P, 0).guidanceCutoff());
    }
}
