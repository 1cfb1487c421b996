package dev.sdserve.api.grpc;

import com.google.protobuf.DescriptorProtos.DescriptorProto;
import com.google.protobuf.DescriptorProtos.FieldDescriptorProto;
import com.google.protobuf.DescriptorProtos.FileDescriptorProto;
import com.google.protobuf.DescriptorProtos.FileDescriptorSet;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.*;

/**
 * The .proto files compile with the oldest protoc the README and sdserve.proto claim (3.15.0, from Maven Central as a
 * test dependency), into descriptors, Python and C++; and the fields that need presence stay proto3 {@code optional}
 * scalars of their original types (the wire format existing clients were built against).
 */
class ProtocCompatTest {
    static final Path PROTOS = Path.of("src", "main", "proto");

    static Path protoc() throws IOException {
        String p = System.getProperty("sdserve.protoc.min");
        assertNotNull(p, "surefire sets sdserve.protoc.min (pom.xml)");
        Path exe = Path.of(p);
        assertTrue(Files.isRegularFile(exe), "protoc from Maven Central at " + exe);
        if (!Files.isExecutable(exe)) {
            assertTrue(exe.toFile().setExecutable(true), "chmod +x " + exe);
        }
        return exe;
    }

    static String run(List<String> cmd) throws Exception {
        Process pr = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        String out = new String(pr.getInputStream().readAllBytes());
        assertTrue(pr.waitFor(60, TimeUnit.SECONDS));
        assertEquals(0, pr.exitValue(), String.join(" ", cmd) + "\n" + out);
        return out;
    }

    @Test
    void theProtosCompileWithTheOldestClaimedProtoc() throws Exception {
        Path protoc = protoc();
        String version = run(List.of(protoc.toString(), "--version")).strip();
        assertEquals("libprotoc " + System.getProperty("sdserve.protoc.min").replaceAll(".*/protoc-([0-9.]+)-.*", "$1"), version);
        assertTrue(version.startsWith("libprotoc 3.15."), "the documented minimum: " + version);

        Path out = Path.of("target", "protoc-compat");
        Files.createDirectories(out.resolve("py"));
        Files.createDirectories(out.resolve("cpp"));
        List<String> files;
        try (Stream<Path> s = Files.list(PROTOS)) {
            files = s.filter(p -> p.toString().endsWith(".proto")).map(p -> p.getFileName().toString()).sorted().toList();
        }
        assertTrue(files.size() >= 3, files.toString());
        List<String> cmd = new ArrayList<>(List.of(protoc.toString(), "-I" + PROTOS, "--include_imports",
                "--descriptor_set_out=" + out.resolve("all.pb"), "--python_out=" + out.resolve("py"),
                "--cpp_out=" + out.resolve("cpp")));
        cmd.addAll(files);
        run(cmd);
        for (String f : files) {
            String stem = f.substring(0, f.length() - ".proto".length());
            assertTrue(Files.size(out.resolve("py").resolve(stem + "_pb2.py")) > 0, stem);
            assertTrue(Files.size(out.resolve("cpp").resolve(stem + ".pb.cc")) > 0, stem);
        }

        FileDescriptorSet set = FileDescriptorSet.parseFrom(Files.readAllBytes(out.resolve("all.pb")));
        FileDescriptorProto main = set.getFileList().stream().filter(f -> f.getName().equals("sdserve.proto")).findFirst()
                .orElseThrow();
        DescriptorProto req = main.getMessageTypeList().stream().filter(m -> m.getName().equals("GenerateRequest"))
                .findFirst().orElseThrow();
        Map<String, FieldDescriptorProto> fields = req.getFieldList().stream()
                .collect(Collectors.toMap(FieldDescriptorProto::getName, f -> f));
        // presence without changing the wire type: proto3 optional scalars, numbers and types as first published
        for (var e : Map.of("guidance_scale", new Object[]{9, FieldDescriptorProto.Type.TYPE_DOUBLE},
                "seed", new Object[]{10, FieldDescriptorProto.Type.TYPE_UINT64},
                "strength", new Object[]{21, FieldDescriptorProto.Type.TYPE_DOUBLE}).entrySet()) {
            FieldDescriptorProto f = fields.get(e.getKey());
            assertNotNull(f, e.getKey());
            assertTrue(f.getProto3Optional(), e.getKey() + " is proto3 optional");
            assertEquals(e.getValue()[0], f.getNumber(), e.getKey());
            assertEquals(e.getValue()[1], f.getType(), e.getKey());
        }
        String header = Files.readString(PROTOS.resolve("sdserve.proto"));
        assertTrue(header.contains("protoc 3.15 or newer"), "the .proto states the minimum protoc");
    }
}
