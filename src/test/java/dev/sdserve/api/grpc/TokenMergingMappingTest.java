package dev.sdserve.api.grpc;

import dev.sdserve.admission.AdmissionConfig;
import dev.sdserve.admission.Validation;
import dev.sdserve.api.grpc.v1.GenerateRequest;
import dev.sdserve.api.rest.RestDtos;
import dev.sdserve.api.rest.RestMapper;
import dev.sdserve.engine.fake.FakeEngine;
import dev.sdserve.job.GenerationRequest;
import dev.sdserve.job.PreviewOptions;
import dev.sdserve.job.ServeException;
import dev.sdserve.sampler.LibrarySamplers;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * token_merging_ratio from gRPC (field 44) and REST into the request (absent stays absent: the server's default), and
 * admission's checks: the range names the field, ratios are served in steps of 0.05, unset takes the default.
 */
class TokenMergingMappingTest {
    private static final PreviewOptions P = new PreviewOptions(1, "png", 256);

    @Test
    void grpcAndRestCarryTheRatio() {
        assertEquals(44, GenerateRequest.TOKEN_MERGING_RATIO_FIELD_NUMBER);
        assertEquals(0.5, ProtoMapper.toRequest(GenerateRequest.newBuilder().setPrompt("a").setTokenMergingRatio(0.5)
                .build(), P, null, 0).tokenMerging());
        assertEquals(0.0, ProtoMapper.toRequest(GenerateRequest.newBuilder().setPrompt("a").setTokenMergingRatio(0)
                .build(), P, null, 0).tokenMerging());
        assertNull(ProtoMapper.toRequest(GenerateRequest.newBuilder().setPrompt("a").build(), P, null, 0)
                .tokenMerging());
        RestDtos.GenerationJson j = new RestDtos.GenerationJson("a", null, null, List.of(), null, null, null, null,
                null, null, null, null, null, null, null, null, null, null, null, null, null, null, null, null, null,
                null, null, null, null, 0.3);
        assertEquals(0.3, RestMapper.toRequest(j, P, 0).tokenMerging());
        RestDtos.GenerationJson none = new RestDtos.GenerationJson("a", null, null, List.of(), null, null, null, null,
                null, null, null, null, null, null, null, null, null, null, null, null, null, null, null, null, null,
                null, null, null, null, null);
        assertNull(RestMapper.toRequest(none, P, 0).tokenMerging());
    }

    @Test
    void admissionChecksTheRangeAndServesSteps() {
        FakeEngine engine = new FakeEngine(new FakeEngine.Config().models(8, 512, "embedded"));
        AdmissionConfig config = new AdmissionConfig();
        Validation v = new Validation(config, engine::describe, new LibrarySamplers(), () -> 1L);
        GenerationRequest base = GenerationRequest.ofPrompt("a cat");
        assertEquals(0.0, v.resolve(base, 0).tokenMerging());
        assertEquals(0.35, v.resolve(base.withTokenMerging(0.33), 0).tokenMerging(), 1e-12);
        assertEquals(0.9, v.resolve(base.withTokenMerging(0.9), 0).tokenMerging(), 1e-12);
        for (double bad : new double[]{-0.1, 0.95, Double.NaN}) {
            ServeException e = assertThrows(ServeException.class, () -> v.resolve(base.withTokenMerging(bad), 0));
            assertEquals("token_merging_ratio", e.field(), e.getMessage());
            assertTrue(e.getMessage().contains("[0, 0.9]"), e.getMessage());
        }
        config.defaultTokenMerging = 0.5;
        assertEquals(0.5, v.resolve(base, 0).tokenMerging(), 1e-12);
        assertEquals(0.0, v.resolve(base.withTokenMerging(0.0), 0).tokenMerging());
    }
}
