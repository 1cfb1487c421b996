package dev.sdserve.api.a1111;

import com.fasterxml.jackson.databind.node.ObjectNode;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;

/** A1111's token_merging_ratio in override_settings reaches the request; a non-number is refused at its location. */
class TokenMergingOverrideTest {
    private static ObjectNode body(String json) throws Exception {
        return (ObjectNode) A1111Service.JSON.readTree(json);
    }

    @Test
    void overrideSettingsCarryTheRatio() throws Exception {
        ObjectNode b = body("{\"prompt\":\"a\",\"override_settings\":{\"token_merging_ratio\":0.5}}");
        assertEquals(0.5, Txt2ImgRequest.tokenMergingRatio(b));
        Txt2ImgRequest r = Txt2ImgRequest.from(b);
        assertEquals(0.5, Txt2ImgRequest.tokenMergingRatio(r.raw()));
        assertNull(Txt2ImgRequest.tokenMergingRatio(body("{\"prompt\":\"a\"}")));
        assertNull(Txt2ImgRequest.tokenMergingRatio(body("{\"prompt\":\"a\",\"override_settings\":{}}")));
        A1111Exception e = assertThrows(A1111Exception.class, () -> Txt2ImgRequest.from(
                body("{\"prompt\":\"a\",\"override_settings\":{\"token_merging_ratio\":\"half\"}}")));
        assertEquals(List.of("body", "override_settings", "token_merging_ratio"), e.details().get(0).loc());
    }
}
