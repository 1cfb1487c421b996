package dev.sdserve.model;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;

/**
 * The small built-in SD 1.x-shaped model used when no checkpoint is given: the topology of the golden tiny model
 * (UNet 32/32/64/64, 2 res blocks per level, cross-attention in the first three levels and the middle, 8 heads,
 * context 32; CLIP text encoder width 32, 3 layers, 4 heads; VAE 32/32/64/64, 4 latent channels), with
 * deterministic random weights written at first use by {@link RandomCheckpoint} into a cache directory and reused.
 * Its images are noise: it exists so the whole pipeline runs without a download.
 *
 * <p>Cache directory: system property {@code sdserve.cache-dir}, else env {@code SDSERVE_CACHE_DIR}, else
 * {@code ~/.cache/sd-serve}.
 */
public final class EmbeddedModel {
    public static final String NAME = "embedded-sd1-tiny";
    public static final long SEED = 20240601L;
    public static final DType DTYPE = DType.F32;
    /** File name: changes whenever the config, seed or generator change, so an old file is never reused. */
    public static final String FILE = NAME + "-v1.safetensors";

    /** The embedded architecture (numbers from the sd15-tiny golden set's configs). */
    public static final ModelConfig CONFIG = new ModelConfig("sd1",
            new UNetConfig(4, 4, List.of(32, 32, 64, 64), 2,
                    List.of(true, true, true, false), List.of(false, true, true, true), true,
                    List.of(8, 8, 8, 8), 32, false, 1, 32, 1e-5, "epsilon", 16),
            new TextEncoderConfig(49408, 32, 64, 3, 4, 77, "quick_gelu", 1e-5,
                    ModelConfigs.SD1_BOS, ModelConfigs.SD1_EOS, ModelConfigs.SD1_PAD),
            new VaeConfig(3, 3, 4, List.of(32, 32, 64, 64), 2, 32, ModelConfigs.SD1_SCALING_FACTOR));

    private EmbeddedModel() {
    }

    /** The cache directory used for the embedded model and other generated files. */
    public static Path cacheDir() {
        String prop = System.getProperty("sdserve.cache-dir");
        if (prop != null && !prop.isBlank()) {
            return Path.of(prop);
        }
        String env = System.getenv("SDSERVE_CACHE_DIR");
        if (env != null && !env.isBlank()) {
            return Path.of(env);
        }
        return Path.of(System.getProperty("user.home"), ".cache", "sd-serve");
    }

    /** The checkpoint file in the default cache directory, written on first use. */
    public static Path path() throws IOException {
        return path(cacheDir());
    }

    /** The checkpoint file in {@code dir}, written on first use (its config JSON beside it). Concurrency-safe. */
    public static Path path(Path dir) throws IOException {
        return RandomCheckpoint.ensure(dir.resolve(FILE), CONFIG, DTYPE, SEED);
    }

    /** The config JSON beside the checkpoint. */
    public static Path configPath(Path checkpoint) {
        return RandomCheckpoint.configPath(checkpoint);
    }

    /** Opens the embedded model (creating it if needed). */
    public static Checkpoint open() throws IOException {
        return Checkpoint.open(path());
    }
}
