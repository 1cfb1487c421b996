package dev.sdserve.cli;

import java.io.PrintStream;

/** {@code generate --server}: runs on a running server over gRPC (written by the clients room). */
public final class RemoteGenerate {
    private RemoteGenerate() {
    }

    public static int run(Args a, PrintStream out) {
        System.err.println("generate: --server is not available in this build yet; run without it (in-process)");
        return 2;
    }
}
