package dev.sdserve.train;

import dev.sdserve.model.DType;
import dev.sdserve.model.LdmNames;
import dev.sdserve.model.ModelConfig;
import dev.sdserve.model.SafeTensorsWriter;

import java.io.IOException;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Writes trained LoRA factors as a kohya-format safetensors file: per module {@code lora_unet_<diffusers path>}
 * {@code .lora_down.weight} [r, in], {@code .lora_up.weight} [out, r] and {@code .alpha} (scalar), in fp16 or fp32,
 * written atomically (temp file + atomic move, by {@link SafeTensorsWriter}).
 */
public final class LoraExport {
    private LoraExport() {
    }

    /** LDM weight key → kohya module name (the diffusers-path form, as kohya's trainer writes it). */
    public static Map<String, String> kohyaNames(ModelConfig cfg) {
        Map<String, String> inverse = new HashMap<>();
        // kohyaTargets lists, per weight, the diffusers-path name before the LDM-path alias
        LdmNames.kohyaTargets(cfg).forEach((kohya, ldm) -> inverse.putIfAbsent(ldm, kohya));
        return inverse;
    }

    public static void write(Path target, ModelConfig cfg, List<LoraTrainer.Module> modules, int rank, double alpha,
                             List<float[]> down, List<float[]> up, DType dtype, Map<String, String> metadata)
            throws IOException {
        Map<String, String> names = kohyaNames(cfg);
        SafeTensorsWriter w = new SafeTensorsWriter();
        metadata.forEach(w::metadata);
        w.metadata("ss_network_module", "networks.lora");
        w.metadata("ss_network_dim", Integer.toString(rank));
        w.metadata("ss_network_alpha", Double.toString(alpha));
        for (int i = 0; i < modules.size(); i++) {
            LoraTrainer.Module m = modules.get(i);
            String name = names.get(m.weightKey());
            if (name == null) {
                throw new IllegalStateException("no kohya module name for " + m.weightKey());
            }
            w.add(name + ".lora_down.weight", dtype, new long[]{rank, m.in()}, down.get(i));
            w.add(name + ".lora_up.weight", dtype, new long[]{m.out(), rank}, up.get(i));
            w.add(name + ".alpha", dtype, new long[]{}, new float[]{(float) alpha});
        }
        w.write(target);
    }
}
