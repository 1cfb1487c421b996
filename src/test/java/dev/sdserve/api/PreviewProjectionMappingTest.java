package dev.sdserve.api;

import dev.sdserve.api.grpc.v1.PreviewOptions;
import dev.sdserve.api.grpc.v1.PreviewProjection;
import dev.sdserve.testutil.Mapped;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** The preview projection choice through the gRPC and REST mappers (validation names the field: ValidationTest). */
class PreviewProjectionMappingTest {
    @Test
    void grpc() {
        assertEquals("decoder", Mapped.grpc(b -> b.setPreview(PreviewOptions.newBuilder()
                .setProjection(PreviewProjection.PREVIEW_PROJECTION_DECODER))).preview().projection());
        assertEquals("affine", Mapped.grpc(b -> b.setPreview(PreviewOptions.newBuilder()
                .setProjection(PreviewProjection.PREVIEW_PROJECTION_AFFINE))).preview().projection());
        assertEquals("auto", Mapped.grpc(b -> b.setPreview(PreviewOptions.newBuilder().setEverySteps(2))).preview().projection());
    }

    @Test
    void rest() throws Exception {
        assertEquals("decoder", Mapped.rest("{\"prompt\":\"a\",\"preview\":{\"projection\":\"Decoder\"}}").preview().projection());
        assertEquals("affine", Mapped.rest("{\"prompt\":\"a\",\"preview\":{\"projection\":\"affine\"}}").preview().projection());
        assertEquals("auto", Mapped.rest("{\"prompt\":\"a\",\"preview\":{\"every_steps\":2}}").preview().projection());
    }
}
