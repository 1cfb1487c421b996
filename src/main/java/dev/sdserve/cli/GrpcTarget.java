package dev.sdserve.cli;

import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.netty.NettyChannelBuilder;

import java.util.concurrent.TimeUnit;

/** A plaintext gRPC channel to a running sd-serve ({@code host:port}, default port 9000). */
final class GrpcTarget implements AutoCloseable {
    static final String DEFAULT = "localhost:9000";

    final String target;
    final ManagedChannel channel;

    GrpcTarget(String hostPort) {
        this.target = normalize(hostPort);
        this.channel = NettyChannelBuilder.forTarget(target).usePlaintext().maxInboundMessageSize(64 << 20).build();
    }

    static String normalize(String hostPort) {
        if (hostPort == null || hostPort.isBlank()) {
            return DEFAULT;
        }
        String s = hostPort.strip();
        if (s.startsWith("http://")) {
            s = s.substring(7);
        }
        if (s.endsWith("/")) {
            s = s.substring(0, s.length() - 1);
        }
        int colon = s.lastIndexOf(':');
        if (colon < 0 || s.endsWith("]")) {
            return s + ":9000";
        }
        try {
            int port = Integer.parseInt(s.substring(colon + 1));
            if (port < 1 || port > 65535) {
                throw new NumberFormatException();
            }
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("--server must be host:port, got '" + hostPort + "'");
        }
        return s;
    }

    /** A one-line description of a failed call, naming the server when it cannot be reached. */
    String describe(StatusRuntimeException e) {
        Status s = e.getStatus();
        if (s.getCode() == Status.Code.UNAVAILABLE && (s.getDescription() == null || s.getCause() != null
                || s.getDescription().contains("io exception"))) {
            return "cannot reach an sd-serve gRPC server at " + target + " (is `serve` running there?)";
        }
        return s.getCode() + (s.getDescription() == null ? "" : ": " + s.getDescription());
    }

    @Override
    public void close() {
        channel.shutdownNow();
        try {
            channel.awaitTermination(2, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
