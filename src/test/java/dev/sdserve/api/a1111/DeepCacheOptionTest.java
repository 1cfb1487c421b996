package dev.sdserve.api.a1111;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.sdserve.api.grpc.ProtoMapper;
import dev.sdserve.api.grpc.v1.GenerateRequest;
import dev.sdserve.api.rest.RestDtos;
import dev.sdserve.api.rest.RestMapper;
import dev.sdserve.job.GenerationRequest;
import dev.sdserve.job.PreviewOptions;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** deep_cache_interval over gRPC (field 41), REST and A1111's override_settings; absent stays absent (server default). */
class DeepCacheOptionTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    @Test
    void grpcField41() {
        GenerationRequest on = ProtoMapper.toRequest(GenerateRequest.newBuilder().setPrompt("a").setDeepCacheInterval(3)
                .build(), PreviewOptions.OFF, null, 0L);
        GenerationRequest zero = ProtoMapper.toRequest(GenerateRequest.newBuilder().setPrompt("a").setDeepCacheInterval(0)
                .build(), PreviewOptions.OFF, null, 0L);
        GenerationRequest none = ProtoMapper.toRequest(GenerateRequest.newBuilder().setPrompt("a").build(),
                PreviewOptions.OFF, null, 0L);
        assertEquals(3, on.deepCacheInterval());
        assertEquals(0, zero.deepCacheInterval(), "an explicit 0 (off) is not 'absent'");
        assertNull(none.deepCacheInterval());
        assertEquals(41, GenerateRequest.DEEP_CACHE_INTERVAL_FIELD_NUMBER);
    }

    @Test
    void restField() throws Exception {
        RestDtos.GenerationJson j = JSON.readValue("{\"prompt\":\"a\",\"deep_cache_interval\":2}",
                RestDtos.GenerationJson.class);
        assertEquals(2, RestMapper.toRequest(j, PreviewOptions.OFF, 0).deepCacheInterval());
        RestDtos.GenerationJson k = JSON.readValue("{\"prompt\":\"a\"}", RestDtos.GenerationJson.class);
        assertNull(RestMapper.toRequest(k, PreviewOptions.OFF, 0).deepCacheInterval());
    }

    @Test
    void a1111OverrideSettings() throws Exception {
        ObjectNode on = (ObjectNode) JSON.readTree("{\"prompt\":\"a\",\"override_settings\":{\"deep_cache_interval\":3}}");
        assertEquals(3, Txt2ImgRequest.deepCacheInterval(Txt2ImgRequest.from(on).raw()));
        assertNull(Txt2ImgRequest.deepCacheInterval(Txt2ImgRequest.from(JSON.readTree("{\"prompt\":\"a\"}")).raw()));
        for (String bad : new String[]{"\"3\"", "2.5", "true"}) {
            A1111Exception e = assertThrows(A1111Exception.class, () -> Txt2ImgRequest.from(JSON.readTree(
                    "{\"prompt\":\"a\",\"override_settings\":{\"deep_cache_interval\":" + bad + "}}")));
            assertTrue(e.getMessage().contains("integer"), e.getMessage());
        }
    }
}
