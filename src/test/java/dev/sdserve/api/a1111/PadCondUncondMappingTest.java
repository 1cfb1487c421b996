package dev.sdserve.api.a1111;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.sdserve.api.grpc.v1.GenerateRequest;
import dev.sdserve.image.InfoText;
import dev.sdserve.job.PreviewOptions;
import dev.sdserve.job.ResolvedRequest;
import dev.sdserve.job.SloClass;
import dev.sdserve.testutil.Mapped;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/** A1111's pad_cond_uncond over gRPC (field 30), REST ({@code pad_cond_uncond}) and A1111's override_settings. */
class PadCondUncondMappingTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    @Test
    void grpcField30() {
        assertEquals(Boolean.TRUE, Mapped.grpc(b -> b.setPadCondUncond(true)).padCondUncond());
        assertNull(Mapped.grpc(b -> b).padCondUncond());
        assertEquals(30, GenerateRequest.PAD_COND_UNCOND_FIELD_NUMBER);
    }

    @Test
    void restField() throws Exception {
        assertEquals(Boolean.TRUE, Mapped.rest("{\"prompt\":\"a\",\"pad_cond_uncond\":true}").padCondUncond());
        assertNull(Mapped.rest("{\"prompt\":\"a\"}").padCondUncond());
    }

    @Test
    void a1111OverrideSettings() throws Exception {
        ObjectNode on = (ObjectNode) JSON.readTree("{\"prompt\":\"a\",\"override_settings\":{\"pad_cond_uncond\":true}}");
        assertEquals(Boolean.TRUE, Txt2ImgRequest.padCondUncond(Txt2ImgRequest.from(on).raw()));
        assertNull(Txt2ImgRequest.padCondUncond(Txt2ImgRequest.from(JSON.readTree("{\"prompt\":\"a\"}")).raw()));
        A1111Exception e = assertThrows(A1111Exception.class, () -> Txt2ImgRequest.from(
                JSON.readTree("{\"prompt\":\"a\",\"override_settings\":{\"pad_cond_uncond\":\"yes\"}}")));
        assertTrue(e.getMessage().contains("boolean"), e.getMessage());
    }

    @Test
    void infotextSaysPadConds() {
        ResolvedRequest r = new ResolvedRequest("a", "", "m", List.of(), 512, 512, 20, "euler", 7.0, 1, 1, 1,
                PreviewOptions.OFF, SloClass.STANDARD, 0, 0, null, false, true);
        assertTrue(InfoText.format(r, 1, null).contains("Pad conds: True"), InfoText.format(r, 1, null));
        ResolvedRequest d = new ResolvedRequest("a", "", "m", List.of(), 512, 512, 20, "euler", 7.0, 1, 1, 1,
                PreviewOptions.OFF, SloClass.STANDARD, 0, 0, null, false);
        assertFalse(InfoText.format(d, 1, null).contains("Pad conds"));
    }
}
