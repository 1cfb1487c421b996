package dev.sdserve.cli;

import dev.sdserve.api.grpc.v1.GenerationGrpc;
import dev.sdserve.api.grpc.v1.ListLorasRequest;
import dev.sdserve.api.grpc.v1.ListLorasResponse;
import dev.sdserve.api.grpc.v1.ListModelsRequest;
import dev.sdserve.api.grpc.v1.ListModelsResponse;
import dev.sdserve.api.grpc.v1.LoraDescription;
import dev.sdserve.api.grpc.v1.ModelDescription;
import io.grpc.StatusRuntimeException;

import java.io.PrintStream;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.concurrent.TimeUnit;

/** {@code models} and {@code loras}: what a running server has, over gRPC. */
public final class ListCommands {
    private ListCommands() {
    }

    static String size(long bytes) {
        if (bytes >= 1L << 30) {
            return String.format(Locale.ROOT, "%.2f GiB", bytes / (double) (1L << 30));
        }
        if (bytes >= 1L << 20) {
            return String.format(Locale.ROOT, "%.1f MiB", bytes / (double) (1L << 20));
        }
        return String.format(Locale.ROOT, "%.1f KiB", bytes / 1024.0);
    }

    private abstract static class Base implements CliCommand {
        abstract int list(GenerationGrpc.GenerationBlockingStub stub, PrintStream out);

        @Override
        public int run(List<String> argv, PrintStream out) {
            Args a;
            try {
                a = Args.parse(argv, Set.of("server"), Set.of("help"));
            } catch (IllegalArgumentException e) {
                System.err.println(name() + ": " + e.getMessage());
                return 2;
            }
            if (a.has("help")) {
                out.println("Usage: sd-serve " + name() + " [--server host:port]\n\n" + summary()
                        + ". The server defaults to " + GrpcTarget.DEFAULT + ".");
                return 0;
            }
            try (GrpcTarget t = new GrpcTarget(a.get("server", GrpcTarget.DEFAULT))) {
                try {
                    return list(GenerationGrpc.newBlockingStub(t.channel).withDeadlineAfter(30, TimeUnit.SECONDS), out);
                } catch (StatusRuntimeException e) {
                    System.err.println(name() + ": " + t.describe(e));
                    return 1;
                }
            }
        }
    }

    public static final class Models extends Base {
        @Override
        public String name() {
            return "models";
        }

        @Override
        public String summary() {
            return "list the checkpoints a running server has (gRPC ListModels)";
        }

        @Override
        int list(GenerationGrpc.GenerationBlockingStub stub, PrintStream out) {
            ListModelsResponse r = stub.listModels(ListModelsRequest.getDefaultInstance());
            int w = Math.max(4, r.getModelsList().stream().mapToInt(m -> m.getName().length()).max().orElse(4));
            out.printf(Locale.ROOT, "%-" + w + "s  %-6s  %10s  %-5s  %-10s  %s%n", "NAME", "ARCH", "SIZE", "DTYPE", "HASH", "");
            for (ModelDescription m : r.getModelsList()) {
                String flags = (m.getIsDefault() ? "default" : "") + (m.getResident() ? (m.getIsDefault() ? ", " : "") + "loaded" : "");
                out.printf(Locale.ROOT, "%-" + w + "s  %-6s  %10s  %-5s  %-10s  %s%n", m.getName(), m.getArchitecture(),
                        size(m.getSizeBytes()), m.getDtype(), m.getShortHash(), flags);
                if (!m.getDescription().isEmpty()) {
                    out.printf(Locale.ROOT, "%-" + w + "s  %s%n", "", m.getDescription());
                }
                String rec = recommended(m.getRecommended());
                if (!rec.isEmpty()) {
                    out.printf(Locale.ROOT, "%-" + w + "s  recommended: %s%n", "", rec);
                }
            }
            if (r.getModelsCount() == 0) {
                out.println("(no models)");
            }
            return 0;
        }
    }

    /** "dpmpp_2m, 20 steps, guidance 5.0, 128×128" (only what the model recommends). */
    static String recommended(dev.sdserve.api.grpc.v1.RecommendedSettings r) {
        java.util.List<String> parts = new java.util.ArrayList<>();
        if (!r.getSampler().isEmpty()) {
            parts.add(r.getSampler());
        }
        if (r.getSteps() > 0) {
            parts.add(r.getSteps() + " steps");
        }
        if (r.hasGuidanceScale()) {
            parts.add(String.format(Locale.ROOT, "guidance %.1f", r.getGuidanceScale()));
        }
        if (r.getWidth() > 0 || r.getHeight() > 0) {
            parts.add((r.getWidth() > 0 ? Integer.toString(r.getWidth()) : "?") + "×"
                    + (r.getHeight() > 0 ? Integer.toString(r.getHeight()) : "?"));
        }
        if (r.getClipSkip() > 0) {
            parts.add("clip skip " + r.getClipSkip());
        }
        return String.join(", ", parts);
    }

    public static final class Loras extends Base {
        @Override
        public String name() {
            return "loras";
        }

        @Override
        public String summary() {
            return "list the LoRAs a running server has (gRPC ListLoras)";
        }

        @Override
        int list(GenerationGrpc.GenerationBlockingStub stub, PrintStream out) {
            ListLorasResponse r = stub.listLoras(ListLorasRequest.getDefaultInstance());
            int w = Math.max(4, r.getLorasList().stream().mapToInt(l -> l.getName().length()).max().orElse(4));
            out.printf(Locale.ROOT, "%-" + w + "s  %10s  %4s  %s%n", "NAME", "SIZE", "RANK", "HASH");
            for (LoraDescription l : r.getLorasList()) {
                out.printf(Locale.ROOT, "%-" + w + "s  %10s  %4d  %s%n", l.getName(), size(l.getSizeBytes()), l.getRank(),
                        l.getShortHash());
            }
            if (r.getLorasCount() == 0) {
                out.println("(no LoRAs; put *.safetensors LoRA files under <models-dir>/loras/)");
            }
            return 0;
        }
    }
}
