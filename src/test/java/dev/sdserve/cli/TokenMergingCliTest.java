package dev.sdserve.cli;

import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;

/** {@code generate --token-merging R}: in-process and on a server (gRPC field 44), absent = the server's default. */
class TokenMergingCliTest {
    @Test
    void theOptionReachesBothRequests() {
        Args a = Args.parse(List.of("--prompt", "x", "--token-merging", "0.5", "--deep-cache", "2"),
                GenerateCommand.VALUED, GenerateCommand.FLAGS);
        assertEquals(0.5, GenerateCommand.request(a, "x", null).tokenMerging());
        assertEquals(2, GenerateCommand.request(a, "x", null).deepCacheInterval());
        Args remote = Args.parse(List.of("--prompt", "x", "--token-merging", "0.5", "--deep-cache", "2"),
                RemoteGenerate.VALUED, RemoteGenerate.FLAGS);
        assertEquals(0.5, RemoteGenerate.request(remote).getTokenMergingRatio());
        assertEquals(2, RemoteGenerate.request(remote).getDeepCacheInterval());

        Args none = Args.parse(List.of("--prompt", "x"), GenerateCommand.VALUED, GenerateCommand.FLAGS);
        assertNull(GenerateCommand.request(none, "x", null).tokenMerging());
        assertFalse(RemoteGenerate.request(none).hasTokenMergingRatio());
    }
}
