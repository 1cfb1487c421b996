package dev.sdserve.api.a1111;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.sdserve.api.grpc.v1.GenerateRequest;
import dev.sdserve.testutil.Mapped;
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
        assertEquals(3, Mapped.grpc(b -> b.setDeepCacheInterval(3)).deepCacheInterval());
        assertEquals(0, Mapped.grpc(b -> b.setDeepCacheInterval(0)).deepCacheInterval(), "an explicit 0 (off) is not 'absent'");
        assertNull(Mapped.grpc(b -> b).deepCacheInterval());
        assertEquals(41, GenerateRequest.DEEP_CACHE_INTERVAL_FIELD_NUMBER);
    }

    @Test
    void restField() throws Exception {
        assertEquals(2, Mapped.rest("{\"prompt\":\"a\",\"deep_cache_interval\":2}").deepCacheInterval());
        assertNull(Mapped.rest("{\"prompt\":\"a\"}").deepCacheInterval());
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
