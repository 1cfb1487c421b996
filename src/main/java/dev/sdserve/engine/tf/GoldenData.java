package dev.sdserve.engine.tf;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.sdserve.model.ModelConfig;
import dev.sdserve.model.SafeTensors;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/** A golden set as the conformance reads it: {@code golden.json} and the tensors of {@code golden.safetensors}. */
final class GoldenData implements AutoCloseable {
    final Path dir;
    final JsonNode json;
    final SafeTensors tensors;

    private GoldenData(Path dir, JsonNode json, SafeTensors tensors) {
        this.dir = dir;
        this.json = json;
        this.tensors = tensors;
    }

    static GoldenData open(Path dir) throws IOException {
        Path js = dir.resolve("golden.json");
        Path st = dir.resolve("golden.safetensors");
        if (!Files.isRegularFile(js) || !Files.isRegularFile(st)) {
            throw new IOException(dir + ": not a golden set (needs golden.json and golden.safetensors)");
        }
        JsonNode j = new ObjectMapper().readTree(js.toFile());
        return new GoldenData(dir, j, SafeTensors.open(st));
    }

    ModelConfig modelConfig() {
        return DiffusersConfigs.fromConfigs(json.get("configs"));
    }

    JsonNode params() {
        return json.path("params");
    }

    boolean has(String name) {
        return tensors.has(name);
    }

    float[] floats(String name) throws IOException {
        return tensors.floats(name);
    }

    int[] ints(String name) throws IOException {
        return tensors.ints(name);
    }

    long[] shape(String name) {
        return tensors.shape(name);
    }

    /** Row {@code i} of a tensor's leading dimension. */
    float[] row(String name, int i) throws IOException {
        float[] all = floats(name);
        long[] s = shape(name);
        int per = Math.toIntExact(all.length / s[0]);
        float[] r = new float[per];
        System.arraycopy(all, i * per, r, 0, per);
        return r;
    }

    @Override
    public void close() {
        tensors.close();
    }
}
