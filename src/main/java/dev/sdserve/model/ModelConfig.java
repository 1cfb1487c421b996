package dev.sdserve.model;

/** The three networks of a Stable Diffusion checkpoint. {@code family} is e.g. "sd1". */
public record ModelConfig(String family, UNetConfig unet, TextEncoderConfig textEncoder, VaeConfig vae) {
}
