package dev.sdserve.model;

import java.util.List;

/**
 * The networks of a Stable Diffusion checkpoint: the UNet, one text tower (SD 1.x, SD 2.x) or two (SDXL: CLIP-L,
 * then OpenCLIP-bigG), and the VAE.
 *
 * @param family {@link #SD1}, {@link #SD2} or {@link #SDXL}
 */
public record ModelConfig(String family, UNetConfig unet, List<TextEncoderConfig> textEncoders, VaeConfig vae) {
    public static final String SD1 = "sd1";
    public static final String SD2 = "sd2";
    public static final String SDXL = "sdxl";

    public ModelConfig {
        textEncoders = List.copyOf(textEncoders);
        if (textEncoders.isEmpty()) {
            throw new IllegalArgumentException("a model needs a text encoder");
        }
    }

    /** A model with one text tower. */
    public ModelConfig(String family, UNetConfig unet, TextEncoderConfig textEncoder, VaeConfig vae) {
        this(family, unet, List.of(textEncoder), vae);
    }

    /** The first (SD 1.x/2.x: the only) text tower. */
    public TextEncoderConfig textEncoder() {
        return textEncoders.get(0);
    }

    public boolean sdxl() {
        return SDXL.equals(family);
    }

    /** How listings name the family: "SD 1.x", "SD 2.x", "SDXL". */
    public String familyName() {
        return displayName(family);
    }

    public static String displayName(String family) {
        return switch (family) {
            case SD1 -> "SD 1.x";
            case SD2 -> "SD 2.x";
            case SDXL -> "SDXL";
            default -> family;
        };
    }

    /** This config with another prediction type (and, for SD 2.x, the default size that goes with it). */
    public ModelConfig withPredictionType(String type) {
        UNetConfig u = unet.withPredictionType(type);
        return new ModelConfig(family, u, textEncoders, vae);
    }
}
