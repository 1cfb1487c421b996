package dev.sdserve.train;

import dev.sdserve.model.DType;
import dev.sdserve.model.SafeTensors;
import dev.sdserve.model.SafeTensorsWriter;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * A training checkpoint: the LoRA factors and AdamW moments (fp32) plus the step and the job's spec as metadata, in
 * one safetensors file written atomically, so a crash leaves either the previous checkpoint or the new one.
 */
public final class TrainCheckpoint {
    static final String[] PARTS = {"down", "up", "down_m", "down_v", "up_m", "up_v"};

    private TrainCheckpoint() {
    }

    public static void save(Path file, LoraTrainer.State st, List<LoraTrainer.Module> modules, int rank,
                            Map<String, String> metadata) throws IOException {
        Files.createDirectories(file.toAbsolutePath().getParent());
        SafeTensorsWriter w = new SafeTensorsWriter();
        metadata.forEach(w::metadata);
        w.metadata("sdserve.step", Long.toString(st.step()));
        w.metadata("sdserve.modules", Integer.toString(modules.size()));
        List<List<float[]>> lists = lists(st);
        for (int i = 0; i < modules.size(); i++) {
            LoraTrainer.Module m = modules.get(i);
            for (int p = 0; p < PARTS.length; p++) {
                long[] shape = p == 0 || p == 2 || p == 3 ? new long[]{rank, m.in()} : new long[]{m.out(), rank};
                w.add(m.prefix() + "." + PARTS[p], DType.F32, shape, lists.get(p).get(i));
            }
        }
        w.write(file);
    }

    private static List<List<float[]>> lists(LoraTrainer.State st) {
        return List.of(st.down(), st.up(), st.downM(), st.downV(), st.upM(), st.upV());
    }

    /** Reads a checkpoint; fails naming the file if it does not fit {@code modules}. */
    public static LoraTrainer.State load(Path file, List<LoraTrainer.Module> modules) throws IOException {
        try (SafeTensors st = SafeTensors.open(file)) {
            long step = Long.parseLong(st.metadata().getOrDefault("sdserve.step", "-1"));
            if (step < 0) {
                throw new IOException(file + ": not a training checkpoint (no sdserve.step metadata)");
            }
            List<List<float[]>> lists = new ArrayList<>();
            for (int p = 0; p < PARTS.length; p++) {
                List<float[]> l = new ArrayList<>();
                for (LoraTrainer.Module m : modules) {
                    String k = m.prefix() + "." + PARTS[p];
                    if (!st.has(k)) {
                        throw new IOException(file + ": checkpoint lacks " + k + " (trained for another model?)");
                    }
                    l.add(st.floats(k));
                }
                lists.add(l);
            }
            return new LoraTrainer.State(step, lists.get(0), lists.get(1), lists.get(2), lists.get(3), lists.get(4),
                    lists.get(5));
        }
    }

    public static Map<String, String> metadata(Path file) throws IOException {
        try (SafeTensors st = SafeTensors.open(file)) {
            return st.metadata();
        }
    }
}
