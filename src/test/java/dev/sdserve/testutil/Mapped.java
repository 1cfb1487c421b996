package dev.sdserve.testutil;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.sdserve.api.grpc.ProtoMapper;
import dev.sdserve.api.grpc.v1.GenerateRequest;
import dev.sdserve.api.rest.RestDtos;
import dev.sdserve.api.rest.RestMapper;
import dev.sdserve.job.GenerationRequest;
import dev.sdserve.job.PreviewOptions;

import java.io.IOException;
import java.util.function.UnaryOperator;

/** Requests as the gRPC and REST mappers make them (prompt "a", previews off), for tests of one option's mapping. */
public final class Mapped {
    private static final ObjectMapper JSON = new ObjectMapper();

    private Mapped() {
    }

    /** A gRPC request with prompt "a" and what {@code set} adds, mapped. */
    public static GenerationRequest grpc(UnaryOperator<GenerateRequest.Builder> set) {
        return ProtoMapper.toRequest(set.apply(GenerateRequest.newBuilder().setPrompt("a")).build(),
                PreviewOptions.OFF, null, 0L);
    }

    /** A REST request body, mapped. */
    public static GenerationRequest rest(String json) throws IOException {
        return RestMapper.toRequest(JSON.readValue(json, RestDtos.GenerationJson.class), PreviewOptions.OFF, 0);
    }
}
