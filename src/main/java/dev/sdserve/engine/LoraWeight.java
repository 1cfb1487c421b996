package dev.sdserve.engine;

/** A LoRA applied to a request, by registry name, with its strength. */
public record LoraWeight(String name, double weight) {
}
