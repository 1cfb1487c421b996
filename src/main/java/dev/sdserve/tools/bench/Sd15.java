package dev.sdserve.tools.bench;

import java.util.List;

import dev.sdserve.model.ModelConfig;
import dev.sdserve.model.TextEncoderConfig;
import dev.sdserve.model.UNetConfig;
import dev.sdserve.model.VaeConfig;

/** The Stable Diffusion 1.5 architecture (for the benchmark's random checkpoint and FLOP counts). */
public final class Sd15 {
    private Sd15() {
    }

    public static ModelConfig config() {
        UNetConfig unet = new UNetConfig(4, 4, List.of(320, 640, 1280, 1280), 2,
                List.of(true, true, true, false), List.of(false, true, true, true), true, List.of(8, 8, 8, 8),
                768, false, 1, 32, 1e-5, "epsilon", 64);
        TextEncoderConfig te = new TextEncoderConfig(49408, 768, 3072, 12, 12, 77, "quick_gelu", 1e-5, 49406, 49407,
                49407);
        VaeConfig vae = new VaeConfig(3, 3, 4, List.of(128, 256, 512, 512), 2, 32, 0.18215);
        return new ModelConfig("sd1", unet, te, vae);
    }
}
